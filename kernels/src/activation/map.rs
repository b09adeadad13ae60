//! Slice drivers: apply a vector function over whole [`LANES`]-wide vectors and the padded
//! tail, split into [`parallel::chunk_len`] chunks across the rayon pool above the threshold.
//!
//! The tail goes through the same vector function (padded with zeros, padding dropped on
//! store), so every element gets the same math wherever it falls. Chunks are multiples of
//! [`LANES`], so the vector/tail split is the same at every thread count and results are
//! bit-identical across pools.

use rayon::prelude::*;
use wide::f32x8;

use super::simd_math::{load, load_tail, store, store_tail, LANES};
use crate::parallel;

/// `y[i] = f(x[i])`; `x` and `y` have the same length (checked by the caller).
pub(crate) fn map_unary<F>(x: &[f32], y: &mut [f32], f: F)
where
    F: Fn(f32x8) -> f32x8 + Sync,
{
    debug_assert_eq!(x.len(), y.len());
    let chunk = parallel::chunk_len(x.len(), LANES);
    if chunk >= x.len() {
        map_unary_serial(x, y, &f);
    } else {
        y.par_chunks_mut(chunk).zip(x.par_chunks(chunk)).for_each(|(y, x)| map_unary_serial(x, y, &f));
    }
}

fn map_unary_serial<F: Fn(f32x8) -> f32x8>(x: &[f32], y: &mut [f32], f: &F) {
    let mut xs = x.chunks_exact(LANES);
    let mut ys = y.chunks_exact_mut(LANES);
    for (x, y) in (&mut xs).zip(&mut ys) {
        store(y, f(load(x)));
    }
    let (x, y) = (xs.remainder(), ys.into_remainder());
    if !x.is_empty() {
        store_tail(y, f(load_tail(x, 0.0)));
    }
}

/// `x[i] = f(x[i])` in place.
pub(crate) fn map_inplace<F>(x: &mut [f32], f: F)
where
    F: Fn(f32x8) -> f32x8 + Sync,
{
    let chunk = parallel::chunk_len(x.len(), LANES);
    if chunk >= x.len() {
        map_inplace_serial(x, &f);
    } else {
        x.par_chunks_mut(chunk).for_each(|x| map_inplace_serial(x, &f));
    }
}

fn map_inplace_serial<F: Fn(f32x8) -> f32x8>(x: &mut [f32], f: &F) {
    let mut xs = x.chunks_exact_mut(LANES);
    for x in &mut xs {
        store(x, f(load(x)));
    }
    let x = xs.into_remainder();
    if !x.is_empty() {
        store_tail(x, f(load_tail(x, 0.0)));
    }
}

/// `out[i] = f(a[i], b[i])`; the three slices have the same length (checked by the caller).
pub(crate) fn map_binary<F>(a: &[f32], b: &[f32], out: &mut [f32], f: F)
where
    F: Fn(f32x8, f32x8) -> f32x8 + Sync,
{
    debug_assert!(a.len() == out.len() && b.len() == out.len());
    let chunk = parallel::chunk_len(out.len(), LANES);
    if chunk >= out.len() {
        map_binary_serial(a, b, out, &f);
    } else {
        out.par_chunks_mut(chunk)
            .zip(a.par_chunks(chunk))
            .zip(b.par_chunks(chunk))
            .for_each(|((out, a), b)| map_binary_serial(a, b, out, &f));
    }
}

fn map_binary_serial<F: Fn(f32x8, f32x8) -> f32x8>(a: &[f32], b: &[f32], out: &mut [f32], f: &F) {
    let mut as_ = a.chunks_exact(LANES);
    let mut bs = b.chunks_exact(LANES);
    let mut outs = out.chunks_exact_mut(LANES);
    for ((a, b), out) in (&mut as_).zip(&mut bs).zip(&mut outs) {
        store(out, f(load(a), load(b)));
    }
    let (a, b, out) = (as_.remainder(), bs.remainder(), outs.into_remainder());
    if !out.is_empty() {
        store_tail(out, f(load_tail(a, 0.0), load_tail(b, 0.0)));
    }
}

/// Runs `f(first_item, out_chunk)` over `out` (items of `width` values) cut into chunks of
/// `chunk` values (a multiple of `width`), and sums what the calls return.
///
/// The chunks are summed in a fixed binary tree: each level splits the chunk list in half
/// and joins the halves with `rayon::join`. Chunk boundaries and split points depend only on
/// the length and `chunk` (which depends on the thread count), never on scheduling, so the
/// total is deterministic for a given thread count, unlike a rayon `sum()`.
pub(crate) fn sum_over_chunks<F>(out: &mut [f32], width: usize, chunk: usize, first_item: usize, f: &F) -> f64
where
    F: Fn(usize, &mut [f32]) -> f64 + Sync,
{
    if out.len() <= chunk {
        return f(first_item, out);
    }
    let mid = out.len().div_ceil(chunk) / 2 * chunk;
    let (left, right) = out.split_at_mut(mid);
    let (a, b) = rayon::join(
        || sum_over_chunks(left, width, chunk, first_item, f),
        || sum_over_chunks(right, width, chunk, first_item + mid / width, f),
    );
    a + b
}
