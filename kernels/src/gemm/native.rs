//! The native GEMM path: keel's packed GEMM (`driver.rs`) on the instruction set
//! [`selected_isa`] picks, split across the rayon pool.

use super::driver::{sgemm_isa_unchecked, threads_for};
use super::epilogue::Epilogue;
use super::GemmShape;
use crate::isa::selected_isa;

/// [`super::sgemm_native`] without the argument checks.
///
/// # Safety
/// `shape` must pass [`GemmShape::check`] for the lengths of `a`, `b` and `c`.
pub unsafe fn sgemm_native_unchecked(
    shape: &GemmShape,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
) {
    // SAFETY: forwarded from the caller; `selected_isa` only returns an instruction set the
    // CPU supports.
    unsafe {
        sgemm_isa_unchecked(selected_isa(), shape, alpha, a, b, beta, c, &Epilogue::NONE, threads_for(shape))
    };
}

/// A pointer that may be shared between tasks that write disjoint parts of its target.
#[derive(Clone, Copy)]
pub(super) struct SharedMut(pub(super) *mut f32);
// SAFETY: only used for disjoint writes (the parts of C in `driver.rs`).
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}
impl SharedMut {
    pub(super) fn get(self) -> *mut f32 {
        self.0
    }
}

/// `C = β·C` for the degenerate products (`k = 0` or `α = 0`); `β = 0` writes zeros
/// without reading C.
pub(super) fn scale_c(shape: &GemmShape, beta: f32, c: &mut [f32]) {
    for row in c.chunks_mut(shape.ldc).take(shape.m) {
        let row = &mut row[..shape.n];
        if beta == 0.0 {
            row.fill(0.0);
        } else {
            row.iter_mut().for_each(|x| *x *= beta);
        }
    }
}
