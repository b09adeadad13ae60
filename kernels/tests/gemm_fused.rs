//! The fused epilogue `C = act(α·op(A)·op(B) + β·C + bias)`: every instruction set (and the
//! selected path, BLAS with `--features blas`) against the reference GEMM followed by a
//! separate bias and activation, over transposes, α/β, padding, tile and k-block edges;
//! degenerate products, NaN, and every argument check.

mod common;
mod gemm_problem;

use common::{on_isa, uniform};
use gemm_problem::{problem, problem_with, Problem};
use keel_kernels::gemm::{
    reference::{sgemm_fused_reference, sgemm_reference},
    sgemm_fused, Activation, Bias, Epilogue, GemmShape, Transpose,
};
use keel_kernels::isa::{with_isa, Isa};
use keel_kernels::KernelError;
use proptest::prelude::*;

// With `--features blas`, `sgemm_fused` calls `cblas_sgemm`: this test binary is a final
// binary, so it links the provider (the `keel` facade's build script does it for its own).
#[cfg(feature = "blas")]
#[link(name = "openblas")]
extern "C" {}

/// Which bias an epilogue has (its values are drawn from the problem's seed).
#[derive(Debug, Clone, Copy)]
enum BiasKind {
    None,
    PerRow,
    PerColumn,
}

#[derive(Debug, Clone)]
struct Case {
    kind: BiasKind,
    activation: Activation,
    bias: Vec<f32>,
}

impl Case {
    fn epilogue(&self) -> Epilogue<'_> {
        let bias = match self.kind {
            BiasKind::None => Bias::None,
            BiasKind::PerRow => Bias::PerRow(&self.bias),
            BiasKind::PerColumn => Bias::PerColumn(&self.bias),
        };
        Epilogue { bias, activation: self.activation }
    }

    fn bias_at(&self, i: usize, j: usize) -> f32 {
        match self.kind {
            BiasKind::None => 0.0,
            BiasKind::PerRow => self.bias[i],
            BiasKind::PerColumn => self.bias[j],
        }
    }
}

fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::Identity),
        Just(Activation::Relu),
        Just(Activation::LeakyRelu(0.01)),
        (-2.0f32..2.0).prop_map(Activation::LeakyRelu),
    ]
}

fn bias_kind() -> impl Strategy<Value = BiasKind> {
    prop_oneof![Just(BiasKind::None), Just(BiasKind::PerRow), Just(BiasKind::PerColumn)]
}

/// A case for `p`: bias values in [-1, 1) (both signs, so ReLU cuts some elements and not
/// others), as long as the rows or columns of C.
fn case_for(p: &Problem, kind: BiasKind, activation: Activation, seed: u64) -> Case {
    let len = match kind {
        BiasKind::None => 0,
        BiasKind::PerRow => p.shape.m,
        BiasKind::PerColumn => p.shape.n,
    };
    Case { kind, activation, bias: uniform(len, seed, -1.0, 1.0) }
}

/// Runs the fused product one way (an instruction set, or the selected path).
type Run<'a> = &'a dyn Fn(&Problem, &mut [f32], &Epilogue);

fn run_isa(isa: Isa) -> impl Fn(&Problem, &mut [f32], &Epilogue) {
    move |p, c, epilogue| {
        let s = p.shape;
        on_isa(isa, || sgemm_fused(&s, p.alpha, &p.a, &p.b, p.beta, c, epilogue)).unwrap();
    }
}

fn run_selected(p: &Problem, c: &mut [f32], epilogue: &Epilogue) {
    let s = p.shape;
    sgemm_fused(&s, p.alpha, &p.a, &p.b, p.beta, c, epilogue).unwrap();
}

/// Compares one fused run with the reference GEMM followed by the bias and activation.
///
/// Tolerance: the GEMM part is within (k + 2)·ε·(|α|·|A|·|B| + |β|·|C0|) of the exact value
/// (Higham's γ_k, as in `gemm.rs`); adding the bias rounds once more on each side (2·ε of
/// |value| + |bias|); the activations are Lipschitz with constant max(1, |slope|).
fn check(p: &Problem, case: &Case, run: Run) {
    let epilogue = case.epilogue();
    let mut expected = p.c0.clone();
    sgemm_fused_reference(&p.shape, p.alpha, &p.a, &p.b, p.beta, &mut expected, &epilogue);
    let mut actual = p.c0.clone();
    if p.beta == 0.0 {
        // β = 0: C must not be read, so NaN already there must not leak.
        for row in actual.chunks_mut(p.shape.ldc) {
            row[..p.shape.n].fill(f32::NAN);
        }
    }
    run(p, &mut actual, &epilogue);
    let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
    let mut magnitude = abs(&p.c0);
    sgemm_reference(&p.shape, p.alpha.abs(), &abs(&p.a), &abs(&p.b), p.beta.abs(), &mut magnitude);
    let lipschitz = match case.activation {
        Activation::LeakyRelu(slope) => slope.abs().max(1.0),
        _ => 1.0,
    };
    let eps = f32::EPSILON;
    let ldc = p.shape.ldc;
    for (index, (&got, &want)) in actual.iter().zip(&expected).enumerate() {
        let (i, j) = (index / ldc, index % ldc);
        if j >= p.shape.n {
            assert_eq!(got.to_bits(), p.c0[index].to_bits(), "padding of C written at ({i}, {j})");
            continue;
        }
        let bias = case.bias_at(i, j).abs();
        let tol = lipschitz * (magnitude[index] * (p.shape.k as f32 + 4.0) * eps + 2.0 * eps * bias) + 1e-30;
        assert!(
            (got - want).abs() <= tol,
            "C[{i}, {j}] = {got}, expected {want} ± {tol} with {case:?} in {p:?}"
        );
    }
}

fn check_every_path(p: &Problem, case: &Case) {
    for isa in Isa::available() {
        check(p, case, &run_isa(isa));
    }
    check(p, case, &run_selected);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_path_matches_reference_then_epilogue(
        p in problem(70), kind in bias_kind(), activation in activation(), seed in any::<u64>()
    ) {
        check_every_path(&p, &case_for(&p, kind, activation, seed));
    }

    /// Every row count of an edge tile and every column count over a few tiles (AVX-512's
    /// masked last vectors and per-column bias loads, the AVX2 and portable scratch tiles).
    #[test]
    fn every_path_matches_reference_on_every_tile_edge(
        p in problem_with((1usize..=40, 1usize..=70, 1usize..=20)),
        kind in bias_kind(),
        activation in activation(),
        seed in any::<u64>(),
    ) {
        check_every_path(&p, &case_for(&p, kind, activation, seed));
    }
}

/// Across the KC (256) and NC (1024) block edges, with B read in place and packed: the
/// epilogue must apply once, after the last block of k (a ReLU applied to a partial sum
/// would cut values the later blocks bring back above zero).
#[test]
fn the_epilogue_applies_once_after_the_last_k_block() {
    for &(m, n, k) in &[(37, 33, 600), (200, 70, 513), (13, 1030, 257), (30, 40, 1200)] {
        for (transa, transb) in [(Transpose::No, Transpose::No), (Transpose::Yes, Transpose::Yes)] {
            for (kind, activation) in [
                (BiasKind::PerRow, Activation::Relu),
                (BiasKind::PerColumn, Activation::LeakyRelu(0.1)),
                (BiasKind::None, Activation::Relu),
            ] {
                let lda = if transa == Transpose::No { k } else { m };
                let ldb = if transb == Transpose::No { n } else { k };
                let shape = GemmShape { transa, transb, m, n, k, lda, ldb, ldc: n };
                let p = Problem {
                    shape,
                    alpha: 1.5,
                    beta: -0.5,
                    a: uniform(m * k, 31, -1.0, 1.0),
                    b: uniform(k * n, 32, -1.0, 1.0),
                    c0: uniform(m * n, 33, -1.0, 1.0),
                };
                check_every_path(&p, &case_for(&p, kind, activation, 34));
            }
        }
    }
}

/// `k = 0` and `α = 0`: nothing to multiply, C = act(β·C + bias) (with β = 0, C is not read).
#[test]
fn degenerate_products_still_apply_the_epilogue() {
    let no = Transpose::No;
    let bias = [1.0f32, -2.0];
    let relu_row = Epilogue { bias: Bias::PerRow(&bias), activation: Activation::Relu };
    let mut c = vec![f32::NAN; 6];
    sgemm_fused(
        &GemmShape { transa: no, transb: no, m: 2, n: 3, k: 0, lda: 1, ldb: 3, ldc: 3 },
        1.0,
        &[],
        &[],
        0.0,
        &mut c,
        &relu_row,
    )
    .unwrap();
    assert_eq!(c, [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
    let mut c = vec![1.0f32, -1.0, 4.0, 3.0, 2.0, 1.0];
    let leaky_col =
        Epilogue { bias: Bias::PerColumn(&[0.5, 0.5, -10.0]), activation: Activation::LeakyRelu(0.5) };
    for isa in Isa::available() {
        let mut out = c.clone();
        // α = 0: A and B are not used (NaN there does not matter).
        on_isa(isa, || {
            sgemm_fused(
                &GemmShape { transa: no, transb: no, m: 2, n: 3, k: 1, lda: 1, ldb: 3, ldc: 3 },
                0.0,
                &[f32::NAN; 2],
                &[f32::NAN; 3],
                2.0,
                &mut out,
                &leaky_col,
            )
        })
        .unwrap();
        assert_eq!(out, [2.5, -0.75, -1.0, 6.5, 4.5, -4.0], "{isa:?}");
    }
    // m = 0: nothing at all, and an empty per-row bias fits.
    sgemm_fused(
        &GemmShape { transa: no, transb: no, m: 0, n: 3, k: 2, lda: 2, ldb: 3, ldc: 3 },
        1.0,
        &[],
        &[0.0; 6],
        0.0,
        &mut c,
        &Epilogue { bias: Bias::PerRow(&[]), activation: Activation::Relu },
    )
    .unwrap();
    assert_eq!(c[0], 1.0);
}

/// NaN propagates through every activation (ReLU included, as in PyTorch), from A and from
/// the bias, on every path; other elements stay finite.
#[test]
fn nan_propagates_through_the_epilogue() {
    let no = Transpose::No;
    let a = [1.0f32, f32::NAN, -3.0, -4.0]; // row 0 touches the NaN
    let b = [1.0f32, 0.0, 0.0, 1.0];
    let bias = [0.0f32, f32::NAN];
    for activation in [Activation::Identity, Activation::Relu, Activation::LeakyRelu(0.2)] {
        let epilogue = Epilogue { bias: Bias::PerColumn(&bias), activation };
        for isa in Isa::available() {
            let mut c = [0.0f32; 4];
            on_isa(isa, || {
                sgemm_fused(
                    &GemmShape { transa: no, transb: no, m: 2, n: 2, k: 2, lda: 2, ldb: 2, ldc: 2 },
                    1.0,
                    &a,
                    &b,
                    0.0,
                    &mut c,
                    &epilogue,
                )
            })
            .unwrap();
            assert!(c[0].is_nan() && c[1].is_nan() && c[3].is_nan(), "{isa:?} {activation:?}: {c:?}");
            let expected = activation_of(activation, -3.0);
            assert_eq!(c[2], expected, "{isa:?} {activation:?}");
        }
    }
}

fn activation_of(activation: Activation, x: f32) -> f32 {
    match activation {
        Activation::Identity => x,
        Activation::Relu => x.max(0.0),
        Activation::LeakyRelu(slope) => {
            if x < 0.0 {
                slope * x
            } else {
                x
            }
        }
    }
}

#[test]
fn bad_epilogues_are_rejected_with_named_errors() {
    let no = Transpose::No;
    let (a, b, mut c) = (vec![0.0f32; 6], vec![0.0f32; 12], vec![0.0f32; 8]);
    let run = |epilogue: &Epilogue, c: &mut [f32]| {
        sgemm_fused(
            &GemmShape { transa: no, transb: no, m: 2, n: 4, k: 3, lda: 3, ldb: 4, ldc: 4 },
            1.0,
            &a,
            &b,
            0.0,
            c,
            epilogue,
        )
    };
    let expect_bias_error =
        |result: keel_kernels::Result<()>, names: &str, expected: usize, actual: usize| match result {
            Err(KernelError::Length { what, expected: e, actual: got }) => {
                assert!(what.starts_with("bias") && what.contains(names), "error names {what:?}");
                assert_eq!((e, got), (expected, actual));
            }
            other => panic!("expected a bias length error, got {other:?}"),
        };
    let per_row = |bias| Epilogue { bias: Bias::PerRow(bias), activation: Activation::Relu };
    let per_column = |bias| Epilogue { bias: Bias::PerColumn(bias), activation: Activation::Identity };
    run(&per_row(&[0.0; 2]), &mut c).unwrap();
    run(&per_column(&[0.0; 4]), &mut c).unwrap();
    expect_bias_error(run(&per_row(&[0.0; 4]), &mut c), "per row of C, m = 2", 2, 4);
    expect_bias_error(run(&per_column(&[0.0; 2]), &mut c), "per column of C, n = 4", 4, 2);
    for slope in [f32::NAN, f32::INFINITY] {
        let leaky = Epilogue { bias: Bias::None, activation: Activation::LeakyRelu(slope) };
        match run(&leaky, &mut c) {
            Err(KernelError::Argument { what, .. }) => assert_eq!(what, "negative_slope"),
            other => panic!("expected an argument error on the slope, got {other:?}"),
        }
    }
    // The GEMM checks still come first and name their argument.
    match sgemm_fused(
        &GemmShape { transa: no, transb: no, m: 2, n: 4, k: 3, lda: 2, ldb: 4, ldc: 4 },
        1.0,
        &a,
        &b,
        0.0,
        &mut c,
        &per_row(&[0.0; 2]),
    ) {
        Err(KernelError::Shape { what, .. }) => assert_eq!(what, "lda"),
        other => panic!("expected a shape error on lda, got {other:?}"),
    }
    // An instruction set the CPU lacks cannot be forced for the fused entry point either.
    if !Isa::Avx512.is_supported() {
        assert!(with_isa(Isa::Avx512, || sgemm_fused(
            &GemmShape { transa: no, transb: no, m: 2, n: 4, k: 3, lda: 3, ldb: 4, ldc: 4 },
            1.0,
            &a,
            &b,
            0.0,
            &mut c,
            &Epilogue::NONE
        ))
        .is_err());
    }
}
