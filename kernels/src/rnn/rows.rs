//! Plumbing shared by the cell passes: how many batch rows one task takes, the lane blocks
//! of a row, and the padded copies that let rows narrower than a vector run through the
//! same vector body. Lane counts are those of the vector type `V: SimdF32` the pass runs on
//! (8 or 16).

use crate::parallel::chunk_len;
use crate::simd::MAX_LANES;

/// Most gate-sized blocks in one row of any cell buffer (the LSTM cache: i, f, g, o, tanh(c')).
const MAX_BLOCKS: usize = 5;

/// A row of up to [`MAX_BLOCKS`] blocks of `hidden < lanes` values, each block zero-padded
/// to `lanes <= MAX_LANES` values, so that the row reads as one with `hidden = lanes`.
pub(super) type WideRow = [f32; MAX_BLOCKS * MAX_LANES];

/// An all-zero [`WideRow`].
pub(super) const WIDE_ZEROS: WideRow = [0.0; MAX_BLOCKS * MAX_LANES];

/// Cost of one gate element of a forward cell pass (an `exp`, a division and about fifteen
/// multiply-adds) in units of the memory-speed element the thresholds of
/// [`crate::parallel`] count: measured at about 2 ns against 0.5 ns. Backward passes are
/// plain arithmetic at memory speed and count 1.
pub(super) const FORWARD_COST: usize = 4;

/// Batch rows per parallel task for a pass over `batch` rows of `row_work` work units:
/// all rows (one task, on the calling thread) below the crate's element-wise threshold or
/// on one thread, otherwise about four tasks per thread. Requires `row_work > 0`.
pub(super) fn rows_per_task(batch: usize, row_work: usize) -> usize {
    (chunk_len(batch * row_work, row_work) / row_work).max(1)
}

/// Calls `body(j)` for vector blocks `j..j + lanes` covering `0..len` (`len >= lanes`):
/// the full blocks, then, if `len` is not a multiple of `lanes`, one block ending at `len`
/// that overlaps the one before. Every lane is computed on its own from the same inputs, and
/// outputs never alias inputs, so the overlapped lanes are recomputed with the same values.
/// `body` has a single call site, so it is inlined into the loop.
#[inline(always)]
pub(super) fn for_lane_blocks(len: usize, lanes: usize, mut body: impl FnMut(usize)) {
    debug_assert!(len >= lanes);
    let last = len - lanes;
    let mut j = 0;
    loop {
        body(j.min(last));
        if j >= last {
            break;
        }
        j += lanes;
    }
}

/// Copies a row of `src.len() / hidden` blocks of `hidden < lanes` values into a
/// [`WideRow`] of blocks of `lanes` values.
pub(super) fn widen(src: &[f32], hidden: usize, lanes: usize) -> WideRow {
    let mut wide = WIDE_ZEROS;
    for (dst, src) in wide.chunks_exact_mut(lanes).zip(src.chunks_exact(hidden)) {
        dst[..hidden].copy_from_slice(src);
    }
    wide
}

/// The inverse of [`widen`]: copies the first `hidden` values of each `lanes`-block of
/// `wide` back into the `dst.len() / hidden` blocks of `dst`.
pub(super) fn narrow(wide: &WideRow, hidden: usize, lanes: usize, dst: &mut [f32]) {
    for (dst, src) in dst.chunks_exact_mut(hidden).zip(wide.chunks_exact(lanes)) {
        dst.copy_from_slice(&src[..hidden]);
    }
}
