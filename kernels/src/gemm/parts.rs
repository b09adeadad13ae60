//! How one GEMM call splits across threads: the parts of C, run on the rayon pool, and the
//! pointer they share to write their disjoint parts of C.

use rayon::prelude::*;

use super::GemmShape;
use crate::parallel::{current_num_threads, MIN_PARALLEL_MULADDS};

/// A pointer that may be shared between tasks that write disjoint parts of its target.
#[derive(Clone, Copy)]
pub(super) struct SharedMut(pub(super) *mut f32);
// SAFETY: only used for disjoint writes (the parts of C of one call).
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}
impl SharedMut {
    pub(super) fn get(self) -> *mut f32 {
        self.0
    }
}

/// The threads a product of `shape` splits over: the effective thread count of the pool
/// (see [`crate::parallel`]), or 1 below [`MIN_PARALLEL_MULADDS`].
pub(crate) fn threads_for(shape: &GemmShape) -> usize {
    let muladds = shape.m.saturating_mul(shape.n).saturating_mul(shape.k);
    if muladds < MIN_PARALLEL_MULADDS {
        1
    } else {
        current_num_threads()
    }
}

/// Runs `run(part)` for every part in `0..parts`: on the calling thread when there is one,
/// else as tasks of the rayon pool.
pub(super) fn run_parts(parts: usize, run: impl Fn(usize) + Sync + Send) {
    if parts == 1 {
        run(0);
    } else {
        (0..parts).into_par_iter().for_each(run);
    }
}
