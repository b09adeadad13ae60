//! Row-wise softmax and log-softmax on `(rows, cols)` matrices, forward and backward from
//! the saved output, with the row helpers the fused losses share. Rows run in parallel
//! (whole rows per chunk) above [`parallel::MIN_PARALLEL_ELEMENTS`]; each row is reduced in
//! a fixed order, so results do not depend on the thread count.

use rayon::prelude::*;
use wide::f32x8;

use crate::error::{check_len, shape_error, Result};
use crate::parallel;
use crate::simd::math::exp;

/// Lanes of the vectors the row kernels use.
pub(super) const LANES: usize = 8;

/// Loads one whole vector; `s` must hold exactly [`LANES`] values (a `chunks_exact` item).
#[inline(always)]
pub(super) fn load(s: &[f32]) -> f32x8 {
    let lanes: [f32; LANES] = s.try_into().expect("a chunk of exactly LANES values");
    f32x8::new(lanes)
}

/// Loads a tail of fewer than [`LANES`] values, padding the missing lanes with `fill` (chosen
/// so the padding cannot change a reduction: 0 for sums, -inf for maxima).
#[inline(always)]
pub(super) fn load_tail(s: &[f32], fill: f32) -> f32x8 {
    let mut lanes = [fill; LANES];
    lanes[..s.len()].copy_from_slice(s);
    f32x8::new(lanes)
}

/// Stores one whole vector into a chunk of exactly [`LANES`] values.
#[inline(always)]
pub(super) fn store(out: &mut [f32], v: f32x8) {
    out.copy_from_slice(v.as_array());
}

/// Stores the first `out.len()` (< [`LANES`]) lanes of `v`; the padding lanes are dropped.
#[inline(always)]
pub(super) fn store_tail(out: &mut [f32], v: f32x8) {
    let n = out.len();
    out.copy_from_slice(&v.as_array()[..n]);
}

/// `rows·cols`, or a shape error if it overflows `usize`.
pub(super) fn matrix_len(rows_name: &str, rows: usize, cols_name: &str, cols: usize) -> Result<usize> {
    rows.checked_mul(cols).ok_or_else(|| {
        shape_error(
            format!("({rows_name}, {cols_name})"),
            "rows·cols to fit in usize",
            format!("({rows}, {cols})"),
        )
    })
}

/// Checks a `(rows, cols)` matrix argument.
pub(super) fn check_matrix(
    what: &str,
    dims: (&str, &str),
    rows: usize,
    cols: usize,
    len: usize,
) -> Result<()> {
    let expected = matrix_len(dims.0, rows, dims.1, cols)?;
    check_len(|| format!("{what} ({}, {}) = ({rows}, {cols})", dims.0, dims.1), expected, len)
}

/// `max_j x[j]` (`-inf` for an empty row). NaN may or may not win; either way the exp pass
/// that follows turns a row holding NaN into NaN.
pub(super) fn row_max(x: &[f32]) -> f32 {
    let mut xs = x.chunks_exact(LANES);
    let mut acc = f32x8::splat(f32::NEG_INFINITY);
    for x in &mut xs {
        acc = acc.fast_max(load(x));
    }
    acc = acc.fast_max(load_tail(xs.remainder(), f32::NEG_INFINITY));
    acc.as_array().iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v))
}

/// Writes `out[j] = e^{x[j] - m}` and returns `Σ_j out[j]` (lane sums, then the lanes in order).
pub(super) fn row_exp_sum_into(x: &[f32], m: f32, out: &mut [f32]) -> f32 {
    let mv = f32x8::splat(m);
    let mut acc = f32x8::ZERO;
    let mut xs = x.chunks_exact(LANES);
    let mut outs = out.chunks_exact_mut(LANES);
    for (x, out) in (&mut xs).zip(&mut outs) {
        let e = exp(load(x) - mv);
        acc += e;
        store(out, e);
    }
    let (x, out) = (xs.remainder(), outs.into_remainder());
    if !x.is_empty() {
        // Padding with -inf gives e = 0, which leaves the sum unchanged.
        let e = exp(load_tail(x, f32::NEG_INFINITY) - mv);
        acc += e;
        store_tail(out, e);
    }
    acc.reduce_add()
}

/// `Σ_j f(a[j], b[j])` with zero padding on the tail (`f(0, 0)` must be 0).
pub(super) fn row_sum2(a: &[f32], b: &[f32], f: impl Fn(f32x8, f32x8) -> f32x8) -> f32 {
    let mut acc = f32x8::ZERO;
    let mut as_ = a.chunks_exact(LANES);
    let mut bs = b.chunks_exact(LANES);
    for (a, b) in (&mut as_).zip(&mut bs) {
        acc += f(load(a), load(b));
    }
    let (a, b) = (as_.remainder(), bs.remainder());
    if !a.is_empty() {
        acc += f(load_tail(a, 0.0), load_tail(b, 0.0));
    }
    acc.reduce_add()
}

/// `out[j] = f(a[j], b[j])` over one row.
pub(super) fn row_map2(a: &[f32], b: &[f32], out: &mut [f32], f: impl Fn(f32x8, f32x8) -> f32x8) {
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

/// Length of the parallel chunks of a `(rows, cols)` pass: whole rows, and whole groups of
/// [`LANES`] rows when they are narrow, so that every row takes the same path (transposed or
/// not) at every thread count and the results are the same bits.
pub(super) fn row_chunk_len(len: usize, cols: usize) -> usize {
    parallel::chunk_len(len, if cols < NARROW_COLS { LANES * cols } else { cols })
}

/// Runs `f(a_row, b_row, out_row)` on every row of `(rows, cols)` matrices, whole rows per
/// parallel chunk. `cols >= 1`, lengths checked by the caller.
pub(super) fn for_each_row<F>(a: &[f32], b: &[f32], out: &mut [f32], cols: usize, f: F)
where
    F: Fn(&[f32], &[f32], &mut [f32]) + Sync,
{
    let rows = |a: &[f32], b: &[f32], out: &mut [f32]| {
        for ((a, b), out) in a.chunks_exact(cols).zip(b.chunks_exact(cols)).zip(out.chunks_exact_mut(cols)) {
            f(a, b, out);
        }
    };
    let chunk = row_chunk_len(out.len(), cols);
    if chunk >= out.len() {
        rows(a, b, out);
    } else {
        out.par_chunks_mut(chunk)
            .zip(a.par_chunks(chunk))
            .zip(b.par_chunks(chunk))
            .for_each(|((out, a), b)| rows(a, b, out));
    }
}

/// Softmax of one row into `y`: `y = e^{x - max}/Σ e^{x - max}`; returns `(max, Σ)` for
/// the losses (`ln Σ e^{x} = max + ln Σ`).
fn softmax_row(x: &[f32], y: &mut [f32]) -> (f32, f32) {
    let m = row_max(x);
    let sum = row_exp_sum_into(x, m, y);
    let inv = f32x8::splat(1.0 / sum);
    let mut ys = y.chunks_exact_mut(LANES);
    for y in &mut ys {
        store(y, load(y) * inv);
    }
    let y = ys.into_remainder();
    if !y.is_empty() {
        store_tail(y, load_tail(y, 0.0) * inv);
    }
    (m, sum)
}

/// Rows narrower than this (classifier heads of 10 classes, ...) are done [`LANES`] at a time
/// with one row per lane: a row-wise vector would leave most lanes as padding and spend its
/// time in tails and horizontal reductions.
const NARROW_COLS: usize = 16;

/// Softmax of [`LANES`] rows of `cols` values at once (row `r` in lane `r`), the math of
/// [`softmax_row`] with columns gathered into vectors; returns each row's `(max, Σ)`.
fn softmax_rows_transposed(cols: usize, x: &[f32], y: &mut [f32]) -> ([f32; LANES], [f32; LANES]) {
    let column = |j: usize| f32x8::new(std::array::from_fn(|r| x[r * cols + j]));
    let mut m = f32x8::splat(f32::NEG_INFINITY);
    for j in 0..cols {
        m = m.fast_max(column(j));
    }
    let mut sum = f32x8::ZERO;
    for j in 0..cols {
        let e = exp(column(j) - m);
        sum += e;
        for (r, &e) in e.as_array().iter().enumerate() {
            y[r * cols + j] = e;
        }
    }
    let inv = (f32x8::ONE / sum).to_array();
    for (y, inv) in y.chunks_exact_mut(cols).zip(inv) {
        y.iter_mut().for_each(|v| *v *= inv);
    }
    (m.to_array(), sum.to_array())
}

/// Softmax of every row of `x (rows, cols)` into `y` (`cols >= 1`), calling
/// `row_done(r, max, Σ)` for each row in order (`ln Σ e^{x} = max + ln Σ`, for the losses).
/// Narrow rows go [`LANES`] at a time through [`softmax_rows_transposed`], the rest one by one.
pub(super) fn softmax_rows(cols: usize, x: &[f32], y: &mut [f32], mut row_done: impl FnMut(usize, f32, f32)) {
    let (mut x, mut y, mut r) = (x, y, 0);
    if cols < NARROW_COLS {
        let mut xs = x.chunks_exact(LANES * cols);
        let mut ys = y.chunks_exact_mut(LANES * cols);
        for (xb, yb) in (&mut xs).zip(&mut ys) {
            let (m, sum) = softmax_rows_transposed(cols, xb, yb);
            for (m, sum) in m.into_iter().zip(sum) {
                row_done(r, m, sum);
                r += 1;
            }
        }
        (x, y) = (xs.remainder(), ys.into_remainder());
    }
    for (x, y) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        let (m, sum) = softmax_row(x, y);
        row_done(r, m, sum);
        r += 1;
    }
}

/// `y[r, j] = e^{x[r, j]} / Σ_k e^{x[r, k]}` per row of `x (rows, cols)`, computed as
/// `e^{x - max}` so no exponent overflows; `y (rows, cols)` **overwritten**. A row holding
/// NaN (or +inf) gives a NaN row; `-inf` entries give 0. Zero rows or columns: no-op.
pub fn softmax_forward(rows: usize, cols: usize, x: &[f32], y: &mut [f32]) -> Result<()> {
    check_matrix("x", ("rows", "cols"), rows, cols, x.len())?;
    check_matrix("y", ("rows", "cols"), rows, cols, y.len())?;
    if y.is_empty() {
        return Ok(());
    }
    let chunk = row_chunk_len(y.len(), cols);
    if chunk >= y.len() {
        softmax_rows(cols, x, y, |_, _, _| {});
    } else {
        y.par_chunks_mut(chunk)
            .zip(x.par_chunks(chunk))
            .for_each(|(y, x)| softmax_rows(cols, x, y, |_, _, _| {}));
    }
    Ok(())
}

/// `y[r, j] = x[r, j] - max_r - ln Σ_k e^{x[r, k] - max_r}` (log-sum-exp with the row max
/// taken out first, so `y` stays exact where `x` is near the max); shapes and NaN as
/// [`softmax_forward`], `y` **overwritten**.
pub fn log_softmax_forward(rows: usize, cols: usize, x: &[f32], y: &mut [f32]) -> Result<()> {
    check_matrix("x", ("rows", "cols"), rows, cols, x.len())?;
    check_matrix("y", ("rows", "cols"), rows, cols, y.len())?;
    if y.is_empty() {
        return Ok(());
    }
    for_each_row(x, x, y, cols, |x, _, y| {
        let m = row_max(x);
        // y holds e^{x - m} for the sum, then is overwritten with the result.
        let ln_sum = f32x8::splat(row_exp_sum_into(x, m, y).ln());
        let mv = f32x8::splat(m);
        row_map2(x, x, y, |x, _| (x - mv) - ln_sum);
    });
    Ok(())
}

/// `dx = y·(dy - Σ_k dy_k·y_k)` per row, from the saved output `y = softmax(x)`;
/// `y`, `dy`, `dx` are `(rows, cols)`, `dx` **overwritten**.
pub fn softmax_backward(rows: usize, cols: usize, y: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<()> {
    check_matrix("y", ("rows", "cols"), rows, cols, y.len())?;
    check_matrix("dy", ("rows", "cols"), rows, cols, dy.len())?;
    check_matrix("dx", ("rows", "cols"), rows, cols, dx.len())?;
    if dx.is_empty() {
        return Ok(());
    }
    for_each_row(y, dy, dx, cols, |y, dy, dx| {
        let dot = f32x8::splat(row_sum2(y, dy, |y, dy| y * dy));
        row_map2(y, dy, dx, |y, dy| y * (dy - dot));
    });
    Ok(())
}

/// `dx = dy - e^{y}·Σ_k dy_k` per row, from the saved output `y = log_softmax(x)`
/// (`e^{y}` is the softmax); `(rows, cols)` each, `dx` **overwritten**.
pub fn log_softmax_backward(rows: usize, cols: usize, y: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<()> {
    check_matrix("y", ("rows", "cols"), rows, cols, y.len())?;
    check_matrix("dy", ("rows", "cols"), rows, cols, dy.len())?;
    check_matrix("dx", ("rows", "cols"), rows, cols, dx.len())?;
    if dx.is_empty() {
        return Ok(());
    }
    for_each_row(y, dy, dx, cols, |y, dy, dx| {
        let sum = f32x8::splat(row_sum2(dy, dy, |dy, _| dy));
        row_map2(y, dy, dx, |y, dy| dy - exp(y) * sum);
    });
    Ok(())
}
