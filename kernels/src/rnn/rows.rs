//! The one driver of the cell passes: [`run_rows`] splits the batch rows of a [`CellRow`]
//! pass into parallel tasks, runs each on the instruction set of [`current_isa`], and runs
//! rows narrower than a vector on padded copies; plus the lane blocks of a row. Lane counts
//! are those of the vector type `V: SimdF32` the pass runs on (8 or 16).

use crate::isa::current_isa;
use crate::isa::Isa;
use crate::parallel::chunk_len;
use crate::simd::{dispatch, Kernel, SimdF32, MAX_LANES};

/// Most gate-sized blocks in one row of any cell buffer (the LSTM cache: i, f, g, o, tanh(c')).
const MAX_BLOCKS: usize = 5;

/// A row of up to [`MAX_BLOCKS`] blocks of `hidden < lanes` values, each block zero-padded
/// to `lanes <= MAX_LANES` values, so that the row reads as one with `hidden = lanes`.
type WideRow = [f32; MAX_BLOCKS * MAX_LANES];

/// An all-zero [`WideRow`].
const WIDE_ZEROS: WideRow = [0.0; MAX_BLOCKS * MAX_LANES];

/// Batch rows per parallel task for a pass over `batch` rows of `row_work` work units:
/// all rows (one task, on the calling thread) below the crate's element-wise threshold or
/// on one thread, otherwise about four tasks per thread. Requires `row_work > 0`.
fn rows_per_task(batch: usize, row_work: usize) -> usize {
    (chunk_len(batch * row_work, row_work) / row_work).max(1)
}

/// The starts `j` of the vector blocks `j..j + lanes` covering `0..len` (`len >= lanes`):
/// the full blocks, then, if `len` is not a multiple of `lanes`, one block ending at `len`
/// that overlaps the one before. Every lane is computed on its own from the same inputs, and
/// outputs never alias inputs, so the overlapped lanes are recomputed with the same values.
/// An iterator rather than a loop taking a closure body: a closure would be compiled without
/// the instruction set of the dispatched body and could not inline its intrinsics.
#[inline(always)]
pub(super) fn lane_blocks(len: usize, lanes: usize) -> impl Iterator<Item = usize> {
    debug_assert!(len >= lanes);
    (0..len).step_by(lanes).map(move |j| j.min(len - lanes))
}

/// Copies a row of `src.len() / hidden` blocks of `hidden < lanes` values into a
/// [`WideRow`] of blocks of `lanes` values.
fn widen(src: &[f32], hidden: usize, lanes: usize) -> WideRow {
    let mut wide = WIDE_ZEROS;
    for (dst, src) in wide.chunks_exact_mut(lanes).zip(src.chunks_exact(hidden)) {
        dst[..hidden].copy_from_slice(src);
    }
    wide
}

/// The inverse of [`widen`]: copies the first `hidden` values of each `lanes`-block of
/// `wide` back into the `dst.len() / hidden` blocks of `dst`.
fn narrow(wide: &WideRow, hidden: usize, lanes: usize, dst: &mut [f32]) {
    for (dst, src) in dst.chunks_exact_mut(hidden).zip(wide.chunks_exact(lanes)) {
        dst.copy_from_slice(&src[..hidden]);
    }
}

/// One row of a cell pass, written once for every vector type: reads `I` row slices and
/// overwrites `O` (never reading them, so NaN in them does not leak).
pub(super) trait CellRow<const I: usize, const O: usize>: Sync {
    /// One batch row with `hidden >= V::LANES`: each slice holds its blocks of `hidden`
    /// values (an optional input may be empty: the body must not touch it then).
    fn row<V: SimdF32>(&self, hidden: usize, inputs: [&[f32]; I], outputs: [&mut [f32]; O]);
}

/// A matrix argument of a cell pass: `(batch, width·hidden)` values, `width` in blocks of
/// `hidden`; an optional input is empty.
type Rows<'a> = (&'a [f32], usize);
/// The output counterpart of [`Rows`].
type RowsMut<'a> = (&'a mut [f32], usize);

/// One task's rows, as a [`Kernel`].
struct Task<'c, 'a, 'o, C, const I: usize, const O: usize> {
    cell: &'c C,
    hidden: usize,
    rows: usize,
    inputs: [Rows<'a>; I],
    outputs: [RowsMut<'o>; O],
}

impl<C: CellRow<I, O>, const I: usize, const O: usize> Kernel for Task<'_, '_, '_, C, I, O> {
    type Output = ();
    #[inline(always)]
    fn run<V: SimdF32>(self) {
        let Self { cell, hidden, rows, inputs, outputs } = self;
        let in_widths = inputs.map(|(_, width)| width);
        let out_widths = outputs.each_ref().map(|(_, width)| *width);
        let mut rest = outputs.map(|(s, _)| s);
        for r in 0..rows {
            let row_inputs = inputs.map(|(s, width)| {
                let len = width * hidden;
                if s.is_empty() {
                    s
                } else {
                    &s[r * len..(r + 1) * len]
                }
            });
            let row_outputs: [&mut [f32]; O] = core::array::from_fn(|k| {
                let (row, tail) = core::mem::take(&mut rest[k]).split_at_mut(out_widths[k] * hidden);
                rest[k] = tail;
                row
            });
            row::<V, C, I, O>(cell, hidden, (row_inputs, &in_widths), (row_outputs, &out_widths));
        }
    }
}

/// Splits every matrix of `inputs` and `outputs` after its first rows, given as
/// `rows_hidden` = rows·hidden (an empty input stays empty on both sides).
#[allow(clippy::type_complexity)]
fn split<'a, 'o, const I: usize, const O: usize>(
    inputs: [Rows<'a>; I],
    outputs: [RowsMut<'o>; O],
    rows_hidden: usize,
) -> (([Rows<'a>; I], [RowsMut<'o>; O]), ([Rows<'a>; I], [RowsMut<'o>; O])) {
    let at = |width: usize, len: usize| (rows_hidden * width).min(len);
    let in_lo = inputs.map(|(s, width)| (&s[..at(width, s.len())], width));
    let in_hi = inputs.map(|(s, width)| (&s[at(width, s.len())..], width));
    let mut out_lo: [RowsMut<'o>; O] = core::array::from_fn(|_| (<&mut [f32]>::default(), 0));
    let mut out_hi: [RowsMut<'o>; O] = core::array::from_fn(|_| (<&mut [f32]>::default(), 0));
    for ((s, width), (lo, hi)) in outputs.into_iter().zip(out_lo.iter_mut().zip(&mut out_hi)) {
        let (a, b) = s.split_at_mut(at(width, s.len()));
        (*lo, *hi) = ((a, width), (b, width));
    }
    ((in_lo, out_lo), (in_hi, out_hi))
}

/// Halves the `batch` rows at task boundaries down to tasks of `per_task` rows (the last
/// may be shorter), run in parallel.
fn split_rows<C: CellRow<I, O>, const I: usize, const O: usize>(
    isa: Isa,
    cell: &C,
    (hidden, per_task, batch): (usize, usize, usize),
    inputs: [Rows<'_>; I],
    outputs: [RowsMut<'_>; O],
) {
    if batch <= per_task {
        return dispatch(isa, Task { cell, hidden, rows: batch, inputs, outputs });
    }
    let mid = batch.div_ceil(per_task).div_ceil(2) * per_task;
    let ((in_lo, out_lo), (in_hi, out_hi)) = split(inputs, outputs, mid * hidden);
    rayon::join(
        || split_rows(isa, cell, (hidden, per_task, mid), in_lo, out_lo),
        || split_rows(isa, cell, (hidden, per_task, batch - mid), in_hi, out_hi),
    );
}

/// Runs `cell` over the `batch` rows of `inputs` and `outputs` (each `(batch, width·hidden)`,
/// `width` given beside it; an optional input may be empty) on the instruction set of
/// [`current_isa`]: one task on the calling thread below the crate's threshold of
/// `batch·row_work` work units, else tasks of whole rows on the rayon pool. Rows are
/// independent, so the result does not depend on the split. Requires `batch, hidden >= 1`.
pub(super) fn run_rows<C: CellRow<I, O>, const I: usize, const O: usize>(
    cell: &C,
    (batch, hidden, row_work): (usize, usize, usize),
    inputs: [Rows<'_>; I],
    outputs: [RowsMut<'_>; O],
) {
    let per_task = rows_per_task(batch, row_work);
    split_rows(current_isa(), cell, (hidden, per_task, batch), inputs, outputs);
}

/// One row: directly when at least one vector wide, else through copies padded to one
/// vector per block.
#[inline(always)]
fn row<V: SimdF32, C: CellRow<I, O>, const I: usize, const O: usize>(
    cell: &C,
    hidden: usize,
    (inputs, in_widths): ([&[f32]; I], &[usize; I]),
    (outputs, out_widths): ([&mut [f32]; O], &[usize; O]),
) {
    let lanes = V::LANES;
    if hidden >= lanes {
        return cell.row::<V>(hidden, inputs, outputs);
    }
    let wide_inputs = inputs.map(|s| if s.is_empty() { None } else { Some(widen(s, hidden, lanes)) });
    let padded_inputs: [&[f32]; I] = core::array::from_fn(|k| match &wide_inputs[k] {
        Some(wide) => &wide[..in_widths[k] * lanes],
        None => &[][..],
    });
    let mut wide_outputs = [WIDE_ZEROS; O];
    let mut pads = wide_outputs.iter_mut().zip(out_widths);
    let padded_outputs: [&mut [f32]; O] = core::array::from_fn(|_| {
        let (pad, &width) = pads.next().expect("one pad per output");
        &mut pad[..width * lanes]
    });
    cell.row::<V>(lanes, padded_inputs, padded_outputs);
    for (dst, wide) in outputs.into_iter().zip(&wide_outputs) {
        narrow(wide, hidden, lanes, dst);
    }
}
