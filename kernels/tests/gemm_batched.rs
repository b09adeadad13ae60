//! Strided-batched GEMM: against a loop of reference products (with the shared bias and
//! activation) over shared (stride 0) and padded strides, bit-identical to a loop of single
//! fused GEMMs on both of its paths (parallel over the batch, parallel inside each product)
//! and on 1 and 2 threads; no writes between the C_i; every argument check.

mod common;
mod gemm_problem;

use common::{on_isa, uniform};
use gemm_problem::problem_with;
use keel_kernels::gemm::{
    native,
    reference::{sgemm_fused_reference, sgemm_reference},
    sgemm_strided_batched, Activation, BatchStrides, Bias, Epilogue, GemmShape, Transpose,
};
use keel_kernels::isa::current_isa;
use keel_kernels::KernelError;
use proptest::prelude::*;

/// A batch: the shape of one product, its operands laid out with strides, and a per-row bias.
#[derive(Debug, Clone)]
struct Batch {
    shape: GemmShape,
    alpha: f32,
    beta: f32,
    batch: usize,
    strides: [usize; 3],
    a: Vec<f32>,
    b: Vec<f32>,
    c0: Vec<f32>,
    bias: Vec<f32>,
}

/// Elements a `(rows, cols)` matrix with leading dimension `ld` spans.
fn span(rows: usize, cols: usize, ld: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * ld + cols
    }
}

fn stored(trans: Transpose, rows: usize, cols: usize) -> (usize, usize) {
    if trans == Transpose::No {
        (rows, cols)
    } else {
        (cols, rows)
    }
}

/// The spans of one A, B and C of `shape`.
fn spans(shape: &GemmShape) -> [usize; 3] {
    let (ar, ac) = stored(shape.transa, shape.m, shape.k);
    let (br, bc) = stored(shape.transb, shape.k, shape.n);
    [span(ar, ac, shape.lda), span(br, bc, shape.ldb), span(shape.m, shape.n, shape.ldc)]
}

/// Lays out a batch: A and B shared (stride 0) or `span + gap` apart, C always apart.
/// Leading dimensions below 1 (k = 0 with no padding) are raised to 1, as BLAS requires.
fn batch_of(
    shape: GemmShape,
    alpha: f32,
    beta: f32,
    batch: usize,
    gaps: [Option<usize>; 3],
    seed: u64,
) -> Batch {
    let shape = GemmShape { lda: shape.lda.max(1), ldb: shape.ldb.max(1), ..shape };
    let spans = spans(&shape);
    let strides = [0, 1, 2].map(|o| gaps[o].map_or(0, |gap| spans[o] + gap));
    let len = |o: usize| if batch == 0 { 0 } else { (batch - 1) * strides[o] + spans[o] };
    Batch {
        shape,
        alpha,
        beta,
        batch,
        strides,
        a: uniform(len(0), seed, -1.0, 1.0),
        b: uniform(len(1), seed ^ 1, -1.0, 1.0),
        c0: uniform(len(2), seed ^ 2, -1.0, 1.0),
        bias: uniform(shape.m, seed ^ 3, -1.0, 1.0),
    }
}

fn epilogue(p: &Batch) -> Epilogue<'_> {
    Epilogue { bias: Bias::PerRow(&p.bias), activation: Activation::Relu }
}

fn run_batched(p: &Batch, c: &mut [f32]) {
    let s = p.shape;
    let [sa, sb, sc] = p.strides;
    sgemm_strided_batched(
        &s,
        p.batch,
        BatchStrides { a: sa, b: sb, c: sc },
        p.alpha,
        &p.a,
        &p.b,
        p.beta,
        c,
        &epilogue(p),
    )
    .unwrap();
}

/// The batch as a loop of keel's own fused GEMMs on the selected instruction set (the
/// batched product runs keel's paths in every build, `blas` included).
fn run_loop(p: &Batch, c: &mut [f32]) {
    let s = p.shape;
    let [sa, sb, sc] = p.strides;
    for i in 0..p.batch {
        on_isa(current_isa(), || {
            native::sgemm_fused(
                &s,
                p.alpha,
                &p.a[i * sa..],
                &p.b[i * sb..],
                p.beta,
                &mut c[i * sc..],
                &epilogue(p),
            )
        })
        .unwrap();
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// C with NaN where β = 0 says it is not read (every C_i), the rest as given.
fn prefilled(p: &Batch) -> Vec<f32> {
    let mut c = p.c0.clone();
    if p.beta == 0.0 {
        for i in 0..p.batch {
            for row in c[i * p.strides[2]..].chunks_mut(p.shape.ldc).take(p.shape.m) {
                row[..p.shape.n].fill(f32::NAN);
            }
        }
    }
    c
}

/// Compares the batch with a loop of reference products. Tolerance as in `gemm_fused.rs`:
/// (k + 4)·ε of |α|·|A_i|·|B_i| + |β|·|C_i| (Higham's γ_k plus the β and bias adds) plus 2·ε of
/// the bias, ReLU being 1-Lipschitz. Elements outside every C_i must keep their bits.
fn check_against_reference(p: &Batch) {
    let mut actual = prefilled(p);
    run_batched(p, &mut actual);
    let s = p.shape;
    let [sa, sb, sc] = p.strides;
    let mut inside = vec![false; actual.len()];
    for i in 0..p.batch {
        let mut expected = p.c0[i * sc..].to_vec();
        sgemm_fused_reference(
            &s,
            p.alpha,
            &p.a[i * sa..],
            &p.b[i * sb..],
            p.beta,
            &mut expected,
            &epilogue(p),
        );
        let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
        let mut magnitude = abs(&p.c0[i * sc..]);
        sgemm_reference(
            &s,
            p.alpha.abs(),
            &abs(&p.a[i * sa..]),
            &abs(&p.b[i * sb..]),
            p.beta.abs(),
            &mut magnitude,
        );
        for r in 0..s.m {
            for j in 0..s.n {
                let (local, global) = (r * s.ldc + j, i * sc + r * s.ldc + j);
                inside[global] = true;
                let eps = f32::EPSILON;
                let tol = magnitude[local] * (s.k as f32 + 4.0) * eps + 2.0 * eps * p.bias[r].abs() + 1e-30;
                let (got, want) = (actual[global], expected[local]);
                assert!(
                    (got - want).abs() <= tol,
                    "C_{i}[{r}, {j}] = {got}, expected {want} ± {tol} in {p:?}"
                );
            }
        }
    }
    for (index, &is_inside) in inside.iter().enumerate() {
        if !is_inside {
            assert_eq!(
                actual[index].to_bits(),
                p.c0[index].to_bits(),
                "C written outside every C_i at {index}"
            );
        }
    }
}

fn gap() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![Just(None), (0usize..3).prop_map(Some)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Random shapes (tile edges included), batches of 0 to 5, A and B shared or apart.
    #[test]
    fn batched_matches_a_loop_of_reference_products(
        p in problem_with((1usize..=30, 1usize..=40, 0usize..=20)),
        batch in 0usize..6,
        (gap_a, gap_b, gap_c) in (gap(), gap(), 0usize..3),
        seed in any::<u64>(),
    ) {
        let batch = batch_of(p.shape, p.alpha, p.beta, batch, [gap_a, gap_b, Some(gap_c)], seed);
        check_against_reference(&batch);
    }
}

/// Both paths, on 1 and 2 threads: small products (a convolution's 6x784x25 per image, one
/// weight for all) run in parallel over the batch, big ones one after the other, each split;
/// either way the bits are those of a loop of single GEMMs, whatever the thread count.
#[test]
fn batched_is_a_loop_of_gemms_bit_for_bit_on_any_thread_count() {
    let no = Transpose::No;
    let cases = [
        // (m, n, k, batch, A shared): parallel over the batch.
        (6, 784, 25, 64, true),
        // Each product big enough to split: one after the other.
        (128, 130, 127, 3, false),
    ];
    for (m, n, k, count, shared_a) in cases {
        let shape = GemmShape { transa: no, transb: no, m, n, k, lda: k, ldb: n, ldc: n };
        let gap_a = if shared_a { None } else { Some(1) };
        let p = batch_of(shape, 1.0, 0.5, count, [gap_a, Some(0), Some(3)], 7);
        let mut expected = p.c0.clone();
        run_loop(&p, &mut expected);
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut actual = p.c0.clone();
            pool.install(|| run_batched(&p, &mut actual));
            assert_eq!(bits(&actual), bits(&expected), "{m}x{n}x{k} x{count} on {threads} threads");
        }
        check_against_reference(&p);
    }
}

fn expect_length_error(result: keel_kernels::Result<()>, starts: &str, expected: usize, actual: usize) {
    match result {
        Err(KernelError::Length { what, expected: e, actual: a }) => {
            assert!(what.starts_with(starts), "error names {what:?}, wanted {starts:?}");
            assert_eq!((e, a), (expected, actual), "{what}");
        }
        other => panic!("expected a length error on {starts}, got {other:?}"),
    }
}

#[test]
fn bad_batches_are_rejected_with_named_errors() {
    let no = Transpose::No;
    let none = &Epilogue::NONE;
    // 3 products of (2x3)·(3x4): A 6 apart, B shared, C 8 apart.
    let (a, b, mut c) = (vec![1.0f32; 18], vec![1.0f32; 12], vec![0.0f32; 24]);
    sgemm_strided_batched(
        &GemmShape { transa: no, transb: no, m: 2, n: 4, k: 3, lda: 3, ldb: 4, ldc: 4 },
        3,
        BatchStrides { a: 6, b: 0, c: 8 },
        1.0,
        &a,
        &b,
        0.0,
        &mut c,
        none,
    )
    .unwrap();
    assert_eq!(c, [3.0; 24]);
    let call = |a: &[f32], stride_a: usize, c: &mut [f32], stride_c: usize| {
        sgemm_strided_batched(
            &GemmShape { transa: no, transb: no, m: 2, n: 4, k: 3, lda: 3, ldb: 4, ldc: 4 },
            3,
            BatchStrides { a: stride_a, b: 0, c: stride_c },
            1.0,
            a,
            &b,
            0.0,
            c,
            none,
        )
    };
    expect_length_error(
        call(&a[..17], 6, &mut c, 8),
        "a (3 matrices stored 2x3, lda = 3, stride_a = 6)",
        18,
        17,
    );
    expect_length_error(call(&a, 7, &mut c, 8), "a (3 matrices", 20, 18);
    expect_length_error(call(&a, 6, &mut c[..23], 8), "c (3 matrices 2x4, ldc = 4, stride_c = 8)", 24, 23);
    // C_i 7 apart would overlap (each spans 8): refused, naming stride_c.
    match call(&a, 6, &mut c, 7) {
        Err(KernelError::Shape { what, expected, .. }) => {
            assert_eq!(what, "stride_c");
            assert!(expected.contains("= 8"), "{expected}");
        }
        other => panic!("expected a shape error on stride_c, got {other:?}"),
    }
    // A huge stride overflows the length it implies: an error, not a panic.
    expect_length_error(call(&a, usize::MAX / 2, &mut c, 8), "a (3 matrices", usize::MAX, 18);
    // The bias is checked as in sgemm_fused.
    let wrong_bias = Epilogue { bias: Bias::PerColumn(&[0.0; 3]), activation: Activation::Identity };
    match sgemm_strided_batched(
        &GemmShape { transa: no, transb: no, m: 2, n: 4, k: 3, lda: 3, ldb: 4, ldc: 4 },
        3,
        BatchStrides { a: 6, b: 0, c: 8 },
        1.0,
        &a,
        &b,
        0.0,
        &mut c,
        &wrong_bias,
    ) {
        Err(KernelError::Length { what, .. }) => assert!(what.starts_with("bias"), "{what}"),
        other => panic!("expected a bias length error, got {other:?}"),
    }
    // batch = 0: a no-op on empty slices; one product may overlap nothing, so stride_c is free.
    sgemm_strided_batched(
        &GemmShape { transa: no, transb: no, m: 2, n: 4, k: 3, lda: 3, ldb: 4, ldc: 4 },
        0,
        BatchStrides { a: 6, b: 0, c: 8 },
        1.0,
        &[],
        &[],
        0.0,
        &mut [],
        none,
    )
    .unwrap();
    let mut one = vec![f32::NAN; 8];
    sgemm_strided_batched(
        &GemmShape { transa: no, transb: no, m: 2, n: 4, k: 3, lda: 3, ldb: 4, ldc: 4 },
        1,
        BatchStrides { a: 0, b: 0, c: 0 },
        1.0,
        &a,
        &b,
        0.0,
        &mut one,
        none,
    )
    .unwrap();
    assert_eq!(one, [3.0; 8]);
    // k = 0 with empty A and B: C_i = β·C_i for every i.
    let mut c = vec![2.0f32; 24];
    sgemm_strided_batched(
        &GemmShape { transa: no, transb: no, m: 2, n: 4, k: 0, lda: 1, ldb: 4, ldc: 4 },
        3,
        BatchStrides { a: 5, b: 5, c: 8 },
        1.0,
        &[],
        &[],
        0.5,
        &mut c,
        none,
    )
    .unwrap();
    assert_eq!(c, [1.0; 24]);
}
