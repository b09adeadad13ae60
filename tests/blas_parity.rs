//! With `--features blas`, `sgemm` runs the system BLAS: it must agree with keel's native
//! path on every transpose, α/β and leading-dimension combination. Without the feature the
//! parity cannot run: the file then holds one test, which says so on stderr and checks that
//! `sgemm` plans keel's own paths only.

use keel::kernels::gemm::{native, GemmShape, Transpose};

/// Deterministic values in [-1, 1) with both signs.
#[cfg(feature = "blas")]
fn values(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| ((i as u32 ^ seed).wrapping_mul(2_654_435_761) >> 8) as f32 / (1u32 << 23) as f32 - 1.0)
        .collect()
}

/// The shape of an `m x n x k` product with these transposes, every leading dimension 3
/// floats longer than its rows.
fn padded_shape(m: usize, n: usize, k: usize, transa: Transpose, transb: Transpose) -> GemmShape {
    let pad = 3;
    let lda = if transa == Transpose::No { k } else { m } + pad;
    let ldb = if transb == Transpose::No { n } else { k } + pad;
    GemmShape { transa, transb, m, n, k, lda, ldb, ldc: n + pad }
}

#[cfg(not(feature = "blas"))]
#[test]
fn parity_needs_the_blas_feature() {
    use keel::kernels::gemm::{plan, GemmPath};
    use keel::kernels::isa::Isa;
    use std::io::Write;

    // Past the harness's capture, so that `cargo test` shows it.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: blas_parity needs the blas feature (cargo test --release --features blas --test blas_parity)"
    );
    // Without the feature, `sgemm` is the native GEMM: no shape plans the BLAS path.
    for isa in Isa::available() {
        for (m, n, k) in [(1, 300, 70), (16, 100, 64), (64, 10, 64), (130, 65, 33)] {
            let shape = padded_shape(m, n, k, Transpose::No, Transpose::Yes);
            let path = plan(&shape, 1.0, isa);
            assert_ne!(path, GemmPath::Blas, "{shape:?} on {isa:?}");
            assert_eq!(path, native::plan(&shape, 1.0, isa), "{shape:?} on {isa:?}");
        }
    }
}

/// Tolerance: each of the two results is an f32 sum of k products (in its own order, with or
/// without FMA) scaled by α, plus β·C; each is within `(k + 2)·ε·(|α|·Σ_p |a_ip|·|b_pj| +
/// |β|·|c_ij|)` of the exact value (Higham's γ bound for a dot product, plus the scaling and
/// the add), so they are within twice that of each other. The bound grows like k times the
/// sum of the products' magnitudes, which the test computes from |A|, |B| and |C|.
#[cfg(feature = "blas")]
#[test]
fn blas_agrees_with_native() {
    use keel::kernels::gemm::{plan, reference::sgemm_reference, sgemm, GemmPath};
    use keel::kernels::isa::current_isa;

    let sizes = [1usize, 2, 7, 8, 9, 16, 17, 33, 64, 65, 130, 700];
    let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
    let mut checked = 0;
    for (index, &m) in sizes.iter().enumerate() {
        let n = sizes[(index * 3 + 1) % sizes.len()];
        let k = sizes[(index * 7 + 2) % sizes.len()];
        for transa in [Transpose::No, Transpose::Yes] {
            for transb in [Transpose::No, Transpose::Yes] {
                let shape = padded_shape(m, n, k, transa, transb);
                let a_rows = if transa == Transpose::No { m } else { k };
                let b_rows = if transb == Transpose::No { k } else { n };
                let a = values(a_rows * shape.lda, 1);
                let b = values(b_rows * shape.ldb, 2);
                let c0 = values(m * shape.ldc, 3);
                for (alpha, beta) in [(1.0f32, 0.0f32), (-0.5, 1.0), (2.0, -0.25)] {
                    assert_eq!(plan(&shape, alpha, current_isa()), GemmPath::Blas, "{shape:?}");
                    let mut native = c0.clone();
                    let mut blas = c0.clone();
                    if beta == 0.0 {
                        blas.fill(f32::NAN); // β = 0: C is not read
                        native.fill(f32::NAN);
                    }
                    native::sgemm(&shape, alpha, &a, &b, beta, &mut native).unwrap();
                    sgemm(&shape, alpha, &a, &b, beta, &mut blas).unwrap();
                    // |α|·|A|·|B| + |β|·|C0|, element by element.
                    let mut magnitude = abs(&c0);
                    sgemm_reference(&shape, alpha.abs(), &abs(&a), &abs(&b), beta.abs(), &mut magnitude);
                    let eps = 2.0 * (k as f32 + 2.0) * f32::EPSILON;
                    for i in 0..m {
                        for j in 0..n {
                            let at = i * shape.ldc + j;
                            let (x, y, tol) = (native[at], blas[at], eps * magnitude[at]);
                            assert!(
                                (x - y).abs() <= tol,
                                "{m}x{n}x{k} {transa:?}{transb:?} C[{i},{j}]: native {x}, blas {y} (± {tol})"
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
