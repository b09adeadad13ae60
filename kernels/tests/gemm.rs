//! GEMM: the native path against the f64-accumulating reference over every transpose,
//! α/β and leading-dimension combination, edge sizes, NaN pre-fills, and every check.

mod common;
mod gemm_problem;

use common::{assert_close, cpu_isas, edge_size, on_isa, uniform};
use gemm_problem::{error_bound, problem, problem_with, product_with, transpose, Problem};
use keel_kernels::gemm::{native, reference::sgemm_reference, GemmPath, GemmShape, Transpose};
use keel_kernels::isa::{current_isa, Isa};
use keel_kernels::{sgemm, KernelError};
use proptest::prelude::*;

fn run_native(p: &Problem, c: &mut [f32]) {
    let s = p.shape;
    native::sgemm(&s, p.alpha, &p.a, &p.b, p.beta, c).unwrap();
}

/// Runs the problem on one instruction set.
fn run_on(isa: Isa) -> impl Fn(&Problem, &mut [f32]) {
    move |p, c| {
        let s = p.shape;
        on_isa(isa, || native::sgemm(&s, p.alpha, &p.a, &p.b, p.beta, c)).unwrap();
    }
}

fn check_against_reference(p: &Problem, run: impl Fn(&Problem, &mut [f32])) {
    let mut expected = p.c0.clone();
    sgemm_reference(&p.shape, p.alpha, &p.a, &p.b, p.beta, &mut expected);
    let mut actual = p.c0.clone();
    if p.beta == 0.0 {
        // β = 0: C must not be read, so NaN already there must not leak.
        for row in actual.chunks_mut(p.shape.ldc) {
            row[..p.shape.n].fill(f32::NAN);
        }
    }
    run(p, &mut actual);
    let bound = error_bound(p);
    for (i, ((&got, &want), &tol)) in actual.iter().zip(&expected).zip(&bound).enumerate() {
        let (row, col) = (i / p.shape.ldc, i % p.shape.ldc);
        if col >= p.shape.n {
            // Padding between rows of C is never written.
            assert_eq!(got.to_bits(), p.c0[i].to_bits(), "padding of C written at ({row}, {col})");
        } else {
            assert!((got - want).abs() <= tol, "C[{row}, {col}] = {got}, expected {want} ± {tol} in {p:?}");
        }
    }
}

/// Checks `p` (with `b` for its B) against the reference on every instruction set of the
/// CPU, after asserting that AVX-512 plans `path` for it: the path the test `test` exists
/// for, which runs where the CPU has AVX-512F and is reported skipped by name elsewhere (the
/// other instruction sets still run their ordinary paths on the same product).
fn check_path_on_every_isa(test: &str, path: GemmPath, p: &Problem, b: &[f32]) {
    assert_eq!(native::plan(&p.shape, p.alpha, Isa::Avx512), path, "{test}: {p:?}");
    Isa::Avx512.supported_or_skip(test);
    for isa in cpu_isas() {
        check_against_reference(p, |p, c| {
            let s = p.shape;
            on_isa(isa, || native::sgemm(&s, p.alpha, &p.a, b, p.beta, c)).unwrap();
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_isa_matches_reference_on_edge_sizes(p in problem(70)) {
        for isa in Isa::available() {
            check_against_reference(&p, run_on(isa));
        }
    }

    /// Every row count of an edge tile (1..=12 for AVX-512's kernel instances, and the
    /// scratch tiles of the others), every column count over a few 32-wide tiles (n <= 16:
    /// AVX-512's one-vector tiles; masked last vectors; 1..=32 lines of a gathered Bᵀ panel).
    #[test]
    fn every_isa_matches_reference_on_every_tile_edge(p in problem_with((1usize..=40, 1usize..=70, 1usize..=20))) {
        for isa in Isa::available() {
            check_against_reference(&p, run_on(isa));
        }
    }

    #[test]
    fn every_isa_matches_reference_across_blocks(p in problem(300)) {
        for isa in Isa::available() {
            check_against_reference(&p, run_on(isa));
        }
    }

    /// 13 to 16 rows of C, B as stored: the AVX-512 path with the vector along the rows
    /// (`gemm/rows_in_lanes.rs`), across its tiles of 24 columns and their ragged last tile.
    #[test]
    fn every_isa_matches_reference_with_13_to_16_rows(
        p in product_with((13usize..=16, 48usize..=200, 32usize..=300), (transpose(), Just(Transpose::No))),
    ) {
        let test = "gemm::every_isa_matches_reference_with_13_to_16_rows";
        check_path_on_every_isa(test, GemmPath::FewRows, &p, &p.b);
    }

    /// 13 to 16 rows with B's first element anywhere in a 32-byte line and its rows a
    /// multiple of 8 floats apart: the few-rows path then narrows its first tile so that the
    /// others start on a line boundary.
    #[test]
    fn every_isa_matches_reference_with_13_to_16_rows_and_b_anywhere_in_a_line(
        p in product_with((13usize..=16, 48usize..=200, 32usize..=100), (transpose(), Just(Transpose::No))),
        offset in 0usize..8,
    ) {
        let mut p = p;
        p.shape.ldb = p.shape.n.next_multiple_of(8);
        p.b = uniform(p.shape.k * p.shape.ldb, 7, -1.0, 1.0);
        let mut storage = vec![0.0f32; p.b.len() + 8];
        let start = (offset + 8 - (storage.as_ptr() as usize / size_of::<f32>()) % 8) % 8;
        storage[start..start + p.b.len()].copy_from_slice(&p.b);
        let b = &storage[start..start + p.b.len()];
        let test = "gemm::every_isa_matches_reference_with_13_to_16_rows_and_b_anywhere_in_a_line";
        check_path_on_every_isa(test, GemmPath::FewRows, &p, b);
    }

    /// 2 to 12 columns of C, k from 16 to 128: the AVX-512 path with two vectors of rows per
    /// tile (`gemm/rows_in_lanes.rs`), both transposes, ragged last panels of 32 rows. (One
    /// column is a matrix-vector product, `gemv.rs`.)
    #[test]
    fn every_isa_matches_reference_with_at_most_12_columns(
        p in product_with((32usize..=300, 2usize..=12, 16usize..=128), (transpose(), transpose())),
    ) {
        let test = "gemm::every_isa_matches_reference_with_at_most_12_columns";
        check_path_on_every_isa(test, GemmPath::FewColumns, &p, &p.b);
    }

    #[test]
    fn native_is_deterministic(p in problem(200)) {
        let mut first = p.c0.clone();
        let mut second = p.c0.clone();
        run_native(&p, &mut first);
        run_native(&p, &mut second);
        prop_assert_eq!(first.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), second.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// More than one block of NC = 1024 columns (the outer loop of the packed loop nest, and
    /// the column blocks of B read in place): random row counts (one row, few rows, a few
    /// tiles), depths on both sides of KC = 256, both transposes, padding, α and β, on every
    /// instruction set. Fewer cases than above: each product is up to 40x1300x300.
    #[test]
    fn every_isa_matches_reference_across_column_blocks(
        p in problem_with((edge_size(40), 1025usize..=1300, edge_size(300))),
    ) {
        for isa in Isa::available() {
            check_against_reference(&p, run_on(isa));
        }
    }
}

/// Large products on the pool's threads: compare `C·t` with `α·A·(B·t) + β·C0·t` for a
/// random vector t (BLIS's cheap check), in f64, relative to the norm of |A|·(|B|·|t|).
#[test]
fn large_products_pass_the_random_vector_check() {
    for &(m, n, k, transa, transb) in &[
        (512, 512, 512, Transpose::No, Transpose::No),
        (300, 1100, 257, Transpose::Yes, Transpose::No),
        (1030, 70, 600, Transpose::No, Transpose::Yes),
        (16, 6400, 150, Transpose::Yes, Transpose::Yes),
    ] {
        let (alpha, beta) = (0.75f32, -0.5f32);
        let a = uniform(m * k, 11, -1.0, 1.0);
        let b = uniform(k * n, 12, -1.0, 1.0);
        let c0 = uniform(m * n, 13, -1.0, 1.0);
        let t: Vec<f64> = uniform(n, 14, -1.0, 1.0).into_iter().map(f64::from).collect();
        let lda = if transa == Transpose::No { k } else { m };
        let ldb = if transb == Transpose::No { n } else { k };
        let mut c = c0.clone();
        native::sgemm(&GemmShape { transa, transb, m, n, k, lda, ldb, ldc: n }, alpha, &a, &b, beta, &mut c)
            .unwrap();
        let a_at = |i: usize, p: usize| {
            f64::from(if transa == Transpose::No { a[i * lda + p] } else { a[p * lda + i] })
        };
        let b_at = |p: usize, j: usize| {
            f64::from(if transb == Transpose::No { b[p * ldb + j] } else { b[j * ldb + p] })
        };
        let bt: Vec<f64> = (0..k).map(|p| (0..n).map(|j| b_at(p, j) * t[j]).sum()).collect();
        let babs_t: Vec<f64> = (0..k).map(|p| (0..n).map(|j| (b_at(p, j) * t[j]).abs()).sum()).collect();
        for i in 0..m {
            let ct: f64 = (0..n).map(|j| f64::from(c[i * n + j]) * t[j]).sum();
            let abt: f64 = (0..k).map(|p| a_at(i, p) * bt[p]).sum();
            let c0t: f64 = (0..n).map(|j| f64::from(c0[i * n + j]) * t[j]).sum();
            let expected = f64::from(alpha) * abt + f64::from(beta) * c0t;
            let scale: f64 = (0..k).map(|p| a_at(i, p).abs() * babs_t[p]).sum::<f64>() + n as f64;
            // f32 accumulation over k terms: relative error well under k·ε of the abs sums.
            let tol = scale * k as f64 * f64::from(f32::EPSILON);
            assert!(
                (ct - expected).abs() <= tol,
                "{m}x{n}x{k} row {i}: C·t = {ct}, expected {expected} ± {tol}"
            );
        }
    }
}

/// Across the KC and NC block edges (k > 256 adds into C with β = 1 after the first block;
/// n > 1024 runs several column blocks), with B read in place (few rows of C, rows of B
/// close; or one row of tiles, rows of B far apart but a block's rows spanning at most
/// 1 Mi floats: 4x1030x300, 2x5000x300) and packed (many rows of C, or rows of B far apart:
/// 1x9000x260 spans 130 rows of 9000), on every instruction set.
#[test]
fn every_isa_matches_reference_across_cache_blocks() {
    for &(m, n, k) in &[
        (13, 4100, 3),
        (37, 33, 600),
        (200, 70, 513),
        (30, 1030, 40),
        (260, 40, 300),
        (4, 1030, 300),
        (2, 5000, 300),
        (1, 9000, 260),
    ] {
        for isa in Isa::available() {
            for (transa, transb) in [
                (Transpose::No, Transpose::No),
                (Transpose::Yes, Transpose::Yes),
                (Transpose::No, Transpose::Yes),
                (Transpose::Yes, Transpose::No),
            ] {
                let lda = if transa == Transpose::No { k } else { m };
                let ldb = if transb == Transpose::No { n } else { k };
                let shape = GemmShape { transa, transb, m, n, k, lda, ldb, ldc: n };
                let p = Problem {
                    shape,
                    alpha: 1.5,
                    beta: -0.5,
                    a: uniform(m * k, 21, -1.0, 1.0),
                    b: uniform(k * n, 22, -1.0, 1.0),
                    c0: uniform(m * n, 23, -1.0, 1.0),
                };
                check_against_reference(&p, run_on(isa));
            }
        }
    }
}

/// The selected instruction set is the one `KEEL_ISA` forces, or the best the CPU has; and on
/// a CPU with AVX-512F (checked independently of keel's detection) that best is AVX-512, so
/// the tests above cannot silently skip the widest path.
#[test]
fn the_best_isa_is_selected_and_tested() {
    let available = Isa::available();
    match std::env::var("KEEL_ISA") {
        Ok(name) => assert_eq!(current_isa().name(), name.trim(), "KEEL_ISA={name} was not honoured"),
        Err(_) => assert_eq!(current_isa(), available[0]),
    }
    assert!(available.contains(&Isa::Portable));
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            assert_eq!(available[0], Isa::Avx512);
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            assert!(available.contains(&Isa::Avx2));
        }
    }
}

#[test]
fn empty_and_degenerate_products() {
    // m = 0 or n = 0: nothing to do, C untouched.
    let mut c = vec![7.0f32; 4];
    sgemm(
        &GemmShape { transa: Transpose::No, transb: Transpose::No, m: 0, n: 4, k: 3, lda: 3, ldb: 4, ldc: 4 },
        1.0,
        &[],
        &[0.0; 12],
        0.0,
        &mut c,
    )
    .unwrap();
    assert_eq!(c, [7.0; 4]);
    // k = 0: C = β·C, and with β = 0 zeros without reading C (NaN does not leak).
    let mut c = vec![f32::NAN, 2.0, f32::NAN, 4.0];
    sgemm(
        &GemmShape { transa: Transpose::No, transb: Transpose::No, m: 2, n: 2, k: 0, lda: 1, ldb: 2, ldc: 2 },
        1.0,
        &[],
        &[],
        0.0,
        &mut c,
    )
    .unwrap();
    assert_eq!(c, [0.0; 4]);
    let mut c = vec![1.0f32, 2.0, 3.0, 4.0];
    sgemm(
        &GemmShape { transa: Transpose::No, transb: Transpose::No, m: 2, n: 2, k: 0, lda: 1, ldb: 2, ldc: 2 },
        1.0,
        &[],
        &[],
        0.5,
        &mut c,
    )
    .unwrap();
    assert_eq!(c, [0.5, 1.0, 1.5, 2.0]);
    // α = 0 with β = 0 is zeros even when A or B hold NaN (BLAS convention: A, B not used).
    let mut c = vec![f32::NAN; 4];
    sgemm(
        &GemmShape { transa: Transpose::No, transb: Transpose::No, m: 2, n: 2, k: 1, lda: 1, ldb: 2, ldc: 2 },
        0.0,
        &[f32::NAN; 2],
        &[1.0; 2],
        0.0,
        &mut c,
    )
    .unwrap();
    assert_eq!(c, [0.0; 4]);
}

#[test]
fn nan_in_operands_propagates() {
    let a = [1.0f32, f32::NAN, 3.0, 4.0];
    let b = [1.0f32, 0.0, 0.0, 1.0];
    let mut c = [0.0f32; 4];
    sgemm(
        &GemmShape { transa: Transpose::No, transb: Transpose::No, m: 2, n: 2, k: 2, lda: 2, ldb: 2, ldc: 2 },
        1.0,
        &a,
        &b,
        0.0,
        &mut c,
    )
    .unwrap();
    assert!(c[0].is_nan() && c[1].is_nan(), "row 0 touches the NaN: {c:?}");
    assert_close("row 1", &c[2..], &[3.0, 4.0], 0.0, 0.0);
}

fn expect_length_error(result: keel_kernels::Result<()>, what_starts: &str, expected: usize, actual: usize) {
    match result {
        Err(KernelError::Length { what, expected: e, actual: a }) => {
            assert!(what.starts_with(what_starts), "error names {what:?}, wanted {what_starts:?}");
            assert_eq!((e, a), (expected, actual));
        }
        other => panic!("expected a length error on {what_starts}, got {other:?}"),
    }
}

fn expect_shape_error(result: keel_kernels::Result<()>, name: &str) {
    match result {
        Err(KernelError::Shape { what, .. }) => assert_eq!(what, name),
        other => panic!("expected a shape error on {name}, got {other:?}"),
    }
}

#[test]
fn bad_input_is_rejected_with_named_errors() {
    let (a, b, mut c) = (vec![0.0f32; 6], vec![0.0f32; 12], vec![0.0f32; 8]);
    let no = Transpose::No;
    // (2x3)·(3x4) fits exactly.
    sgemm(
        &GemmShape { transa: no, transb: no, m: 2, n: 4, k: 3, lda: 3, ldb: 4, ldc: 4 },
        1.0,
        &a,
        &b,
        0.0,
        &mut c,
    )
    .unwrap();
    expect_length_error(
        sgemm(
            &GemmShape { transa: no, transb: no, m: 2, n: 4, k: 3, lda: 3, ldb: 4, ldc: 4 },
            1.0,
            &a[..5],
            &b,
            0.0,
            &mut c,
        ),
        "a",
        6,
        5,
    );
    expect_length_error(
        sgemm(
            &GemmShape { transa: no, transb: no, m: 2, n: 4, k: 3, lda: 3, ldb: 4, ldc: 4 },
            1.0,
            &a,
            &b[..11],
            0.0,
            &mut c,
        ),
        "b",
        12,
        11,
    );
    expect_length_error(
        sgemm(
            &GemmShape { transa: no, transb: no, m: 2, n: 4, k: 3, lda: 3, ldb: 4, ldc: 4 },
            1.0,
            &a,
            &b,
            0.0,
            &mut c[..7],
        ),
        "c",
        8,
        7,
    );
    // Transposed A is stored (k, m) = (3, 2): lda must be >= 2, the slice (3-1)·lda + 2 long.
    expect_length_error(
        sgemm(
            &GemmShape { transa: Transpose::Yes, transb: no, m: 2, n: 4, k: 3, lda: 3, ldb: 4, ldc: 4 },
            1.0,
            &a,
            &b,
            0.0,
            &mut c,
        ),
        "a",
        8,
        6,
    );
    expect_shape_error(
        sgemm(
            &GemmShape { transa: no, transb: no, m: 2, n: 4, k: 3, lda: 2, ldb: 4, ldc: 4 },
            1.0,
            &a,
            &b,
            0.0,
            &mut c,
        ),
        "lda",
    );
    expect_shape_error(
        sgemm(
            &GemmShape { transa: no, transb: Transpose::Yes, m: 2, n: 4, k: 3, lda: 3, ldb: 2, ldc: 4 },
            1.0,
            &a,
            &b,
            0.0,
            &mut c,
        ),
        "ldb",
    );
    expect_shape_error(
        sgemm(
            &GemmShape { transa: no, transb: no, m: 2, n: 4, k: 3, lda: 3, ldb: 4, ldc: 3 },
            1.0,
            &a,
            &b,
            0.0,
            &mut c,
        ),
        "ldc",
    );
    // The message says what was expected and what came.
    let message = sgemm(
        &GemmShape { transa: no, transb: no, m: 2, n: 4, k: 3, lda: 3, ldb: 4, ldc: 3 },
        1.0,
        &a,
        &b,
        0.0,
        &mut c,
    )
    .unwrap_err()
    .to_string();
    assert!(message.contains("ldc >= max(1, 4)") && message.contains("got 3"), "{message}");
}

/// Row parts share one packed B̃ and column parts one packed Ã, each panel packed by the
/// first part that needs it (`gemm/shared.rs`). Many such calls at once, from inside rayon
/// tasks on 2 and 3 threads (so parts of one call also run one after the other on one
/// thread, or wait on a panel another part is packing), give the bits of one thread.
#[test]
fn parts_sharing_a_packed_operand_match_one_thread() {
    let pool = |threads| rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    // (m, n, k): cut by rows (B̃ shared; parts of 300 rows pack B), then by columns (Ã
    // shared; parts 15 tiles wide), both over three blocks of k.
    for &(m, n, k) in &[(600, 64, 700), (40, 900, 700)] {
        let a = uniform(m * k, 11, -1.0, 1.0);
        let b = uniform(k * n, 12, -1.0, 1.0);
        let product = || {
            let mut c = vec![f32::NAN; m * n];
            native::sgemm(&GemmShape::new(m, n, k), 1.0, &a, &b, 0.0, &mut c).unwrap();
            c.iter().map(|x| x.to_bits()).collect::<Vec<u32>>()
        };
        let one_thread = pool(1).install(product);
        for threads in [2, 3] {
            use rayon::prelude::*;
            let results: Vec<Vec<u32>> =
                pool(threads).install(|| (0..6).into_par_iter().map(|_| product()).collect());
            for bits in results {
                assert!(bits == one_thread, "{m}x{n}x{k} on {threads} threads differs from one thread");
            }
        }
    }
}

/// The paths with C's rows in lanes (`gemm/rows_in_lanes.rs`) split C across threads in whole
/// tiles (columns for 16 rows, panels of 32 rows for 10 columns): 2 and 3 threads give the
/// bits of one. AVX-512 only: reported skipped by name on a CPU without it.
#[test]
fn products_with_rows_in_lanes_match_one_thread() {
    let test = "gemm::products_with_rows_in_lanes_match_one_thread";
    for (m, n, k, path) in [(16, 6400, 150, GemmPath::FewRows), (3000, 10, 128, GemmPath::FewColumns)] {
        assert_eq!(native::plan(&GemmShape::new(m, n, k), 0.5, Isa::Avx512), path, "{m}x{n}x{k}");
        if Isa::Avx512.supported_or_skip(test) {
            rows_in_lanes_match_one_thread(m, n, k);
        }
    }
}

/// The product `m x n x k` on AVX-512 on 2 and 3 threads, bit for bit against one thread.
fn rows_in_lanes_match_one_thread(m: usize, n: usize, k: usize) {
    let pool = |threads| rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let a = uniform(m * k, 21, -1.0, 1.0);
    let b = uniform(k * n, 22, -1.0, 1.0);
    // Forced inside the pool's closure: `with_isa` holds for the thread that runs it.
    let product = || {
        let mut c = uniform(m * n, 23, -1.0, 1.0);
        on_isa(Isa::Avx512, || native::sgemm(&GemmShape::new(m, n, k), 0.5, &a, &b, 0.25, &mut c)).unwrap();
        c.iter().map(|x| x.to_bits()).collect::<Vec<u32>>()
    };
    let one_thread = pool(1).install(product);
    for threads in [2, 3] {
        assert!(
            pool(threads).install(product) == one_thread,
            "{m}x{n}x{k} on {threads} threads differs from one thread"
        );
    }
}
