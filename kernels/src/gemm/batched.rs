//! Strided-batched GEMM: `C_i = epi(α·op(A_i)·op(B_i) + β·C_i)` for `i < batch`, the
//! matrices of each operand `stride` elements apart in one slice (a stride of 0 shares one
//! matrix, e.g. the weight of a convolution across the images of a batch).
//!
//! Threads: when each product is too small to split (fewer than
//! [`MIN_PARALLEL_MULADDS`] multiply-adds) but the batch together is not, the batch is cut
//! into at most one run of consecutive products per thread, each product on one thread;
//! otherwise the products run one after the other, each split across the pool as a single
//! GEMM. Every product is computed the same way in both cases (the GEMM's bits do not depend
//! on its thread count), so the result does not depend on the thread count.
//!
//! A shared operand is packed again for every product: the packed panels live per block of
//! the loop nest, and a product small enough to be batched packs its operands in a few
//! microseconds next to its own arithmetic.

use rayon::prelude::*;

use super::epilogue::Epilogue;
use super::parts::threads_for;
use super::plan::{execute, plan_native};
use super::{BatchStrides, GemmShape};
use crate::isa::Isa;
use crate::parallel::{current_num_threads, MIN_PARALLEL_MULADDS};

/// The batch on the native path (see the module docs).
///
/// # Safety
/// `shape.check_batched(batch, strides, ...)` must pass for the lengths of `a`, `b`, `c`,
/// `epilogue.check(m, n)` too, `strides.c` must be at least the span of one C when
/// `batch > 1` and C is not empty (so the C_i do not overlap), and the CPU must support `isa`.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn sgemm_batched_unchecked(
    isa: Isa,
    shape: &GemmShape,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
    batch: usize,
    strides: BatchStrides,
    epilogue: &Epilogue,
) {
    if batch == 0 || shape.m == 0 || shape.n == 0 {
        return;
    }
    let path = plan_native(shape, alpha, isa);
    let product_threads = threads_for(shape);
    // One product (over its own threads, or on one): its A, B and C start at `i·stride`.
    let product = |i: usize, c_i: &mut [f32], single_thread: bool| {
        // An empty matrix (k = 0) may have an empty slice, with nothing at i·stride (whose
        // product need not even fit a usize then).
        let a_i = i.checked_mul(strides.a).and_then(|start| a.get(start..)).unwrap_or(&[]);
        let b_i = i.checked_mul(strides.b).and_then(|start| b.get(start..)).unwrap_or(&[]);
        // SAFETY: the caller's checks make the i-th matrix of each operand fit in its slice
        // from i·stride on, and `c_i` starts at C_i; `path` is the native plan on `isa`, which
        // the CPU supports.
        unsafe { execute(path, isa, shape, alpha, a_i, b_i, beta, c_i, epilogue, single_thread) }
    };
    let muladds = shape.m.saturating_mul(shape.n).saturating_mul(shape.k);
    let threads = current_num_threads();
    if batch == 1 {
        product(0, c, false);
    } else if product_threads == 1 && threads > 1 && muladds.saturating_mul(batch) >= MIN_PARALLEL_MULADDS {
        // strides.c >= the span of one C (caller's contract): chunk i holds all of C_i.
        c.par_chunks_mut(strides.c)
            .take(batch)
            .enumerate()
            .with_min_len(batch.div_ceil(threads))
            .for_each(|(i, c_i)| product(i, c_i, true));
    } else {
        for (i, c_i) in c.chunks_mut(strides.c).take(batch).enumerate() {
            product(i, c_i, false);
        }
    }
}
