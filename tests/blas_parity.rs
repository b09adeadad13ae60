//! With `--features blas`, `sgemm` runs the system BLAS: it must agree with keel's native
//! path on every transpose, α/β and leading-dimension combination.
#![cfg(feature = "blas")]

use keel::kernels::gemm::{native, sgemm, GemmShape, Transpose};

/// Deterministic values in [-1, 1) with both signs.
fn values(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| ((i as u32 ^ seed).wrapping_mul(2_654_435_761) >> 8) as f32 / (1u32 << 23) as f32 - 1.0)
        .collect()
}

#[test]
fn blas_agrees_with_native() {
    let sizes = [1usize, 2, 7, 8, 9, 16, 17, 33, 64, 65, 130];
    let mut checked = 0;
    for (index, &m) in sizes.iter().enumerate() {
        let n = sizes[(index * 3 + 1) % sizes.len()];
        let k = sizes[(index * 7 + 2) % sizes.len()];
        for transa in [Transpose::No, Transpose::Yes] {
            for transb in [Transpose::No, Transpose::Yes] {
                for (alpha, beta) in [(1.0f32, 0.0f32), (-0.5, 1.0), (2.0, -0.25)] {
                    let pad = 3;
                    let lda = if transa == Transpose::No { k } else { m } + pad;
                    let ldb = if transb == Transpose::No { n } else { k } + pad;
                    let ldc = n + pad;
                    let a_rows = if transa == Transpose::No { m } else { k };
                    let b_rows = if transb == Transpose::No { k } else { n };
                    let a = values(a_rows * lda, 1);
                    let b = values(b_rows * ldb, 2);
                    let c0 = values(m * ldc, 3);
                    let mut native = c0.clone();
                    let mut blas = c0.clone();
                    if beta == 0.0 {
                        blas.fill(f32::NAN); // β = 0: C is not read
                        native.fill(f32::NAN);
                    }
                    native::sgemm(
                        &GemmShape { transa, transb, m, n, k, lda, ldb, ldc },
                        alpha,
                        &a,
                        &b,
                        beta,
                        &mut native,
                    )
                    .unwrap();
                    sgemm(
                        &GemmShape { transa, transb, m, n, k, lda, ldb, ldc },
                        alpha,
                        &a,
                        &b,
                        beta,
                        &mut blas,
                    )
                    .unwrap();
                    for i in 0..m {
                        for j in 0..n {
                            let (x, y) = (native[i * ldc + j], blas[i * ldc + j]);
                            // Both are f32 sums of k products of values in [-1, 1): they may
                            // differ by the two paths' rounding, at most 2·k·ε·k in magnitude.
                            let tol = 2.0 * (k as f32) * (k as f32) * f32::EPSILON * alpha.abs() + 1e-6;
                            assert!(
                                (x - y).abs() <= tol,
                                "{m}x{n}x{k} {transa:?}{transb:?} C[{i},{j}]: native {x}, blas {y}"
                            );
                        }
                    }
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, sizes.len() * 12);
}
