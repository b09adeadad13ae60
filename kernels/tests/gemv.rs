//! Matrix-vector products (C of one row or one column), which the GEMM computes without its
//! packed loop nest: every form and layout against the reference on every instruction set,
//! and the same bits at every thread count.

mod common;
mod gemm_problem;

use common::{edge_size, on_isa, uniform};
use gemm_problem::{error_bound, problem_with, Problem};
use keel_kernels::gemm::{native, reference::sgemm_reference, GemmShape, Transpose};
use keel_kernels::isa::Isa;
use proptest::prelude::*;

/// Shapes with m = 1 or n = 1 (or both): outputs up to 700, past two blocks of the rows
/// form (128 floats with AVX-512) and the parallel split, k up to 300.
fn gemv_dims() -> impl Strategy<Value = (usize, usize, usize)> {
    prop_oneof![
        (edge_size(700), edge_size(300)).prop_map(|(n, k)| (1, n, k)),
        (edge_size(700), edge_size(300)).prop_map(|(m, k)| (m, 1, k)),
        edge_size(300).prop_map(|k| (1, 1, k)),
    ]
}

fn run_on(isa: Isa, p: &Problem, c: &mut [f32]) {
    let s = p.shape;
    on_isa(isa, || native::sgemm(&s, p.alpha, &p.a, &p.b, p.beta, c)).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Tolerance: the f32 error bound of each dot product (`error_bound`, Higham's γ_k).
    #[test]
    fn every_isa_matches_reference(p in problem_with(gemv_dims())) {
        let mut expected = p.c0.clone();
        sgemm_reference(&p.shape, p.alpha, &p.a, &p.b, p.beta, &mut expected);
        let bound = error_bound(&p);
        for isa in Isa::available() {
            let mut actual = p.c0.clone();
            if p.beta == 0.0 {
                // β = 0: C is not read, so NaN there must not leak.
                for row in actual.chunks_mut(p.shape.ldc) {
                    row[..p.shape.n].fill(f32::NAN);
                }
            }
            run_on(isa, &p, &mut actual);
            for (i, ((&got, &want), &tol)) in actual.iter().zip(&expected).zip(&bound).enumerate() {
                let (row, col) = (i / p.shape.ldc, i % p.shape.ldc);
                if col >= p.shape.n {
                    prop_assert_eq!(got.to_bits(), p.c0[i].to_bits(), "padding of C written at ({}, {})", row, col);
                } else {
                    prop_assert!((got - want).abs() <= tol, "{:?}: C[{}, {}] = {}, expected {} ± {} in {:?}", isa, row, col, got, want, tol, p);
                }
            }
        }
    }
}

/// Products big enough to be split across threads (m·n·k ≥ 2²⁰), in every form: the same
/// bits on 1, 2 and 3 threads, on every instruction set.
#[test]
fn split_products_match_one_thread() {
    let pools: Vec<_> = [1, 2, 3]
        .into_iter()
        .map(|t| rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap())
        .collect();
    let transposes = [Transpose::No, Transpose::Yes];
    // 600 outputs: streamed rows on one thread, register blocks on two and three.
    for (m, n, k) in [(1, 3001, 701), (2999, 1, 703), (1, 600, 1800), (600, 1, 1800)] {
        for (transa, transb) in transposes.into_iter().flat_map(|ta| transposes.map(|tb| (ta, tb))) {
            let shape = GemmShape {
                transa,
                transb,
                m,
                n,
                k,
                lda: if transa == Transpose::No { k } else { m },
                ldb: if transb == Transpose::No { n } else { k },
                ldc: n,
            };
            let p = Problem {
                shape,
                alpha: 0.75,
                beta: 0.5,
                a: uniform(m * k, 1, -1.0, 1.0),
                b: uniform(k * n, 2, -1.0, 1.0),
                c0: uniform(m * n, 3, -1.0, 1.0),
            };
            for isa in Isa::available() {
                let bits: Vec<Vec<u32>> = pools
                    .iter()
                    .map(|pool| {
                        let mut c = p.c0.clone();
                        pool.install(|| run_on(isa, &p, &mut c));
                        c.iter().map(|x| x.to_bits()).collect()
                    })
                    .collect();
                assert!(
                    bits.iter().all(|b| *b == bits[0]),
                    "{isa:?} {m}x{n}x{k} {transa:?}/{transb:?}: bits differ across thread counts"
                );
            }
        }
    }
}
