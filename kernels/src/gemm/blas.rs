//! The `blas` feature: `sgemm` calls the system's `cblas_sgemm`.
//!
//! `cblas-sys` declares the symbol; this crate's `build.rs` links the provider (OpenBLAS
//! unless `KEEL_BLAS_LIB` names another).

use super::{GemmShape, Transpose};

fn cblas_transpose(trans: Transpose) -> cblas_sys::CBLAS_TRANSPOSE {
    match trans {
        Transpose::No => cblas_sys::CBLAS_TRANSPOSE::CblasNoTrans,
        Transpose::Yes => cblas_sys::CBLAS_TRANSPOSE::CblasTrans,
    }
}

/// The dimensions of `shape` as BLAS's 32-bit integers `[m, n, k, lda, ldb, ldc]`, if they
/// all fit.
fn blas_dims(shape: &GemmShape) -> Option<[i32; 6]> {
    let dims = [shape.m, shape.n, shape.k, shape.lda, shape.ldb, shape.ldc].map(i32::try_from);
    let [Ok(m), Ok(n), Ok(k), Ok(lda), Ok(ldb), Ok(ldc)] = dims else {
        return None;
    };
    Some([m, n, k, lda, ldb, ldc])
}

/// Whether `cblas_sgemm` can take the product: every dimension fits a 32-bit integer.
pub(super) fn fits(shape: &GemmShape) -> bool {
    blas_dims(shape).is_some()
}

/// `cblas_sgemm` on a checked shape that [`fits`] (any other does nothing). BLAS needs
/// leading dimensions of at least 1 even for empty matrices, which `GemmShape::check`
/// guarantees.
pub(super) fn sgemm_blas(shape: &GemmShape, alpha: f32, a: &[f32], b: &[f32], beta: f32, c: &mut [f32]) {
    let Some([m, n, k, lda, ldb, ldc]) = blas_dims(shape) else {
        return;
    };
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: `GemmShape::check` verified that each slice covers its strided matrix, which
    // is exactly what cblas_sgemm reads and writes.
    unsafe {
        cblas_sys::cblas_sgemm(
            cblas_sys::CBLAS_LAYOUT::CblasRowMajor,
            cblas_transpose(shape.transa),
            cblas_transpose(shape.transb),
            m,
            n,
            k,
            alpha,
            a.as_ptr(),
            lda,
            b.as_ptr(),
            ldb,
            beta,
            c.as_mut_ptr(),
            ldc,
        );
    }
}
