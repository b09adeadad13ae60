//! Plumbing shared by the cell passes: how many batch rows one task takes, and loading and
//! storing up to eight lanes of a row.

use wide::f32x8;

use crate::parallel::chunk_len;

/// Lanes of the SIMD vectors the cells compute on.
pub(super) const LANES: usize = 8;

/// Batch rows per parallel task for a pass over `batch` rows of `row_work` gate elements:
/// all rows (one task, on the calling thread) below the crate's element-wise threshold or
/// on one thread, otherwise about four tasks per thread. Requires `row_work > 0`.
pub(super) fn rows_per_task(batch: usize, row_work: usize) -> usize {
    (chunk_len(batch * row_work, row_work) / row_work).max(1)
}

/// Loads `src` (at most [`LANES`] values) into a vector, zero-padding the missing lanes.
/// Called with a length-8 slice in the body loops, where it compiles to one vector load.
#[inline(always)]
pub(super) fn load(src: &[f32]) -> f32x8 {
    let mut lanes = [0.0f32; LANES];
    lanes[..src.len()].copy_from_slice(src);
    f32x8::from(lanes)
}

/// Stores the first `dst.len()` (at most [`LANES`]) lanes of `value` into `dst`.
#[inline(always)]
pub(super) fn store(value: f32x8, dst: &mut [f32]) {
    let len = dst.len();
    dst.copy_from_slice(&value.to_array()[..len]);
}

/// Calls `body(j, w)` for the lane blocks `j..j + w` covering `0..len`: full blocks of
/// [`LANES`] first, then one shorter tail block. The literal `LANES` at the first call site
/// lets the inlined body use whole-vector loads and stores.
#[inline(always)]
pub(super) fn for_lane_blocks(len: usize, mut body: impl FnMut(usize, usize)) {
    let full = len / LANES * LANES;
    let mut j = 0;
    while j < full {
        body(j, LANES);
        j += LANES;
    }
    if full < len {
        body(full, len - full);
    }
}
