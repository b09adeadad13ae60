//! The split of a unit's time loop across threads by batch rows: the rows of a batch are
//! independent through time, so each thread runs every step on its own rows (a *part*) with
//! no exchange between steps, where splitting each step's kernels would hand half of every
//! small product to the other thread and back, step after step.
//!
//! A unit's per-step buffers are then laid out **part after part**: part `p` holds its rows
//! of every step, `(seq, rows_p, width)` (states `(seq + 1, rows_p, hidden)`), so that each
//! thread owns one contiguous block of each buffer. One part is the time-major layout
//! `(seq, batch, width)` itself. The products over all steps (the input projection, the
//! weight gradients, `dx`) run on the rows in this order, the layer's input gathered into it
//! and `dx` scattered back ([`Parts::gather`], [`Parts::scatter`]).

use std::ops::Range;

use keel_kernels::parallel::{current_num_threads, serial, MIN_PARALLEL_MULADDS};

use crate::error::Result;

/// How a unit's `batch` rows are split: `count` parts of `rows` rows, the last one shorter
/// when `rows` does not divide the batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Parts {
    count: usize,
    rows: usize,
}

impl Parts {
    /// One part per thread of the pool (at most one per row) when the pass's recurrent
    /// products reach [`MIN_PARALLEL_MULADDS`] (`recurrent_muladds`: `seq·batch·G·H·H`),
    /// else one part.
    pub(super) fn plan(batch: usize, recurrent_muladds: usize) -> Parts {
        let threads = current_num_threads();
        if threads < 2 || batch < 2 || recurrent_muladds < MIN_PARALLEL_MULADDS {
            return Parts { count: 1, rows: batch };
        }
        let rows = batch.div_ceil(threads.min(batch));
        Parts { count: batch.div_ceil(rows), rows }
    }

    /// Number of parts.
    pub(super) fn count(self) -> usize {
        self.count
    }

    /// The batch rows of part `p`.
    pub(super) fn rows_of(self, p: usize, batch: usize) -> Range<usize> {
        p * self.rows..((p + 1) * self.rows).min(batch)
    }

    /// The rows of a time-major `(seq, batch, ·)` matrix, as indices `t·batch + b`, in the
    /// parts' order: part after part, each step's rows of the part.
    fn rows_in_part_order(self, seq: usize, batch: usize) -> impl Iterator<Item = usize> {
        (0..self.count).flat_map(move |p| {
            let rows = self.rows_of(p, batch);
            (0..seq).flat_map(move |t| rows.clone().map(move |b| t * batch + b))
        })
    }

    /// `dst (parts of (seq, rows_p, width))` = the rows of `src (seq, batch, width)`, part
    /// after part.
    pub(super) fn gather(self, src: &[f32], (seq, batch, width): (usize, usize, usize), dst: &mut [f32]) {
        for (row, from) in dst.chunks_exact_mut(width).zip(self.rows_in_part_order(seq, batch)) {
            row.copy_from_slice(&src[from * width..][..width]);
        }
    }

    /// The inverse of [`Parts::gather`]: `dst (seq, batch, width)` = (or, with `accumulate`,
    /// `+=`) the rows of `src`, laid out part after part.
    pub(super) fn scatter(
        self,
        src: &[f32],
        (seq, batch, width): (usize, usize, usize),
        accumulate: bool,
        dst: &mut [f32],
    ) {
        for (row, to) in src.chunks_exact(width).zip(self.rows_in_part_order(seq, batch)) {
            let out = &mut dst[to * width..][..width];
            if accumulate {
                out.iter_mut().zip(row).for_each(|(o, r)| *o += r);
            } else {
                out.copy_from_slice(row);
            }
        }
    }

    /// Runs `body(first_row, part)` on every part of `bufs` (split by [`Split::split`]), the
    /// parts in parallel, each on one thread ([`serial`]) when there are several; a single
    /// part runs as `whole(part)`. Returns the first error of a part.
    pub(super) fn run<B: Split + Send>(
        self,
        bufs: B,
        whole: impl FnOnce(B) -> Result<()>,
        body: &(impl Fn(usize, B) -> Result<()> + Sync),
    ) -> Result<()> {
        if self.count == 1 {
            return whole(bufs);
        }
        self.run_range(0..self.count, bufs, body)
    }

    /// [`Parts::run`] on the parts `parts`, whose rows `bufs` holds.
    fn run_range<B: Split + Send>(
        self,
        parts: Range<usize>,
        bufs: B,
        body: &(impl Fn(usize, B) -> Result<()> + Sync),
    ) -> Result<()> {
        let first_row = parts.start * self.rows;
        if parts.len() == 1 {
            return serial(|| body(first_row, bufs));
        }
        let mid = parts.start + parts.len() / 2;
        let (lo, hi) = bufs.split(mid - parts.start, (mid - parts.start) * self.rows);
        let (lo, hi) = rayon::join(
            || self.run_range(parts.start..mid, lo, body),
            || self.run_range(mid..parts.end, hi, body),
        );
        lo.and(hi)
    }
}

/// The buffers of a pass over some parts, split after the first `parts` parts (`rows` batch
/// rows).
pub(super) trait Split: Sized {
    fn split(self, parts: usize, rows: usize) -> (Self, Self);
}

/// `s`, holding `all` batch rows' blocks of equal size (a part's buffer: whole parts, so
/// whole rows), split after its first `rows` rows; an empty `s` into two empty ones.
pub(super) fn split_rows<T>(s: &mut [T], rows: usize, all: usize) -> (&mut [T], &mut [T]) {
    s.split_at_mut(s.len() / all.max(1) * rows)
}

/// [`split_rows`] for a shared slice.
pub(super) fn split_rows_ref<T>(s: &[T], rows: usize, all: usize) -> (&[T], &[T]) {
    s.split_at(s.len() / all.max(1) * rows)
}

/// [`split_rows_ref`] for an optional slice.
pub(super) fn split_option<T>(s: Option<&[T]>, rows: usize, all: usize) -> (Option<&[T]>, Option<&[T]>) {
    s.map_or((None, None), |s| {
        let (lo, hi) = split_rows_ref(s, rows, all);
        (Some(lo), Some(hi))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parts cover the batch in order, the last one shorter; gather then scatter is the
    /// identity, and scatter with `accumulate` adds.
    #[test]
    fn parts_cover_the_batch_and_gather_inverts_scatter() {
        let parts = Parts { count: 3, rows: 3 };
        let (seq, batch, width) = (2, 7, 2);
        assert_eq!(
            [parts.rows_of(0, batch), parts.rows_of(1, batch), parts.rows_of(2, batch)],
            [0..3, 3..6, 6..7]
        );
        let src: Vec<f32> = (0..seq * batch * width).map(|v| v as f32).collect();
        let mut gathered = vec![0.0; src.len()];
        parts.gather(&src, (seq, batch, width), &mut gathered);
        // Part 0: rows 0..3 of step 0, then of step 1.
        assert_eq!(&gathered[..12], &[0., 1., 2., 3., 4., 5., 14., 15., 16., 17., 18., 19.]);
        let mut back = vec![f32::NAN; src.len()];
        parts.scatter(&gathered, (seq, batch, width), false, &mut back);
        assert_eq!(back, src);
        parts.scatter(&gathered, (seq, batch, width), true, &mut back);
        assert_eq!(back, src.iter().map(|v| 2.0 * v).collect::<Vec<_>>());
    }

    /// One part on one thread, below the threshold or for one row; else one per thread.
    #[test]
    fn the_plan_splits_only_large_enough_passes() {
        let pool = |threads| rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let big = MIN_PARALLEL_MULADDS;
        assert_eq!(pool(1).install(|| Parts::plan(32, big)), Parts { count: 1, rows: 32 });
        assert_eq!(pool(2).install(|| Parts::plan(32, big - 1)), Parts { count: 1, rows: 32 });
        assert_eq!(pool(2).install(|| Parts::plan(1, big)), Parts { count: 1, rows: 1 });
        assert_eq!(pool(2).install(|| Parts::plan(33, big)), Parts { count: 2, rows: 17 });
        assert_eq!(pool(4).install(|| Parts::plan(3, big)), Parts { count: 3, rows: 1 });
    }
}
