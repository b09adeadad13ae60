//! Row-wise softmax and log-softmax on `(rows, cols)` matrices, forward and backward from
//! the saved output, with the row helpers the fused losses share. Rows run in parallel
//! (whole rows per chunk) above [`parallel::MIN_PARALLEL_ELEMENTS`], each chunk on the
//! instruction set of [`current_isa`] through [`dispatch`]; each row is reduced in a fixed
//! order, so results do not depend on the thread count.

use rayon::prelude::*;

use crate::error::{check_len, shape_error, Result};
use crate::isa::current_isa;
use crate::parallel;
use crate::simd::math::exp;
use crate::simd::{dispatch, load_padded, store_partial, to_array, Kernel, SimdF32, MAX_LANES};

/// `rows·cols`, or a shape error if it overflows `usize`.
pub(crate) fn matrix_len(rows_name: &str, rows: usize, cols_name: &str, cols: usize) -> Result<usize> {
    rows.checked_mul(cols).ok_or_else(|| {
        shape_error(
            format!("({rows_name}, {cols_name})"),
            "rows·cols to fit in usize",
            format!("({rows}, {cols})"),
        )
    })
}

/// Checks a `(rows, cols)` matrix argument.
pub(crate) fn check_matrix(
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
#[inline(always)]
fn row_max<V: SimdF32>(x: &[f32]) -> f32 {
    let mut xs = x.chunks_exact(V::LANES);
    let mut acc = V::splat(f32::NEG_INFINITY);
    for x in &mut xs {
        acc = acc.max(V::load(x));
    }
    acc = acc.max(load_padded(xs.remainder(), f32::NEG_INFINITY));
    acc.reduce_max()
}

/// Writes `out[j] = e^{x[j] - m}` and returns `Σ_j out[j]` (lane sums, then the lanes).
#[inline(always)]
fn row_exp_sum_into<V: SimdF32>(x: &[f32], m: f32, out: &mut [f32]) -> f32 {
    let mv = V::splat(m);
    let mut acc = V::splat(0.0);
    let mut xs = x.chunks_exact(V::LANES);
    let mut outs = out.chunks_exact_mut(V::LANES);
    for (x, out) in (&mut xs).zip(&mut outs) {
        let e = exp(V::load(x) - mv);
        acc = acc + e;
        e.store(out);
    }
    let (x, out) = (xs.remainder(), outs.into_remainder());
    if !x.is_empty() {
        // Padding with -inf gives e = 0, which leaves the sum unchanged.
        let e = exp(load_padded::<V>(x, f32::NEG_INFINITY) - mv);
        acc = acc + e;
        store_partial(e, out);
    }
    acc.reduce_add()
}

/// `Σ_j f(a[j], b[j])` with zero padding on the tail (`f(0, 0)` must be 0).
#[inline(always)]
pub(crate) fn row_sum2<V: SimdF32>(a: &[f32], b: &[f32], f: impl Fn(V, V) -> V) -> f32 {
    let mut acc = V::splat(0.0);
    let mut as_ = a.chunks_exact(V::LANES);
    let mut bs = b.chunks_exact(V::LANES);
    for (a, b) in (&mut as_).zip(&mut bs) {
        acc = acc + f(V::load(a), V::load(b));
    }
    let (a, b) = (as_.remainder(), bs.remainder());
    if !a.is_empty() {
        acc = acc + f(load_padded(a, 0.0), load_padded(b, 0.0));
    }
    acc.reduce_add()
}

/// `out[j] = f(a[j], b[j])` over one row.
#[inline(always)]
pub(crate) fn row_map2<V: SimdF32>(a: &[f32], b: &[f32], out: &mut [f32], f: impl Fn(V, V) -> V) {
    let mut as_ = a.chunks_exact(V::LANES);
    let mut bs = b.chunks_exact(V::LANES);
    let mut outs = out.chunks_exact_mut(V::LANES);
    for ((a, b), out) in (&mut as_).zip(&mut bs).zip(&mut outs) {
        f(V::load(a), V::load(b)).store(out);
    }
    let (a, b, out) = (as_.remainder(), bs.remainder(), outs.into_remainder());
    if !out.is_empty() {
        store_partial(f(load_padded(a, 0.0), load_padded(b, 0.0)), out);
    }
}

/// Length of the parallel chunks of a `(rows, cols)` pass: whole rows, and whole groups of
/// [`MAX_LANES`] rows when they are narrow, so that every row takes the same path
/// (transposed or not) at every thread count and the results are the same bits.
pub(crate) fn row_chunk_len(len: usize, cols: usize) -> usize {
    parallel::chunk_len(len, if cols < NARROW_COLS { MAX_LANES * cols } else { cols })
}

/// A row-wise body: `row(a_row, b_row, out_row)` on vectors `V`.
pub(crate) trait RowOp: Sync {
    /// The body on one row.
    fn row<V: SimdF32>(&self, a: &[f32], b: &[f32], out: &mut [f32]);
}

/// The rows of one parallel chunk, as a [`Kernel`].
struct Rows<'o, 'a, 'c, R> {
    op: &'o R,
    cols: usize,
    a: &'a [f32],
    b: &'a [f32],
    out: &'c mut [f32],
}

impl<R: RowOp> Kernel for Rows<'_, '_, '_, R> {
    type Output = ();
    #[inline(always)]
    fn run<V: SimdF32>(self) {
        let rows = self.a.chunks_exact(self.cols).zip(self.b.chunks_exact(self.cols));
        for ((a, b), out) in rows.zip(self.out.chunks_exact_mut(self.cols)) {
            self.op.row::<V>(a, b, out);
        }
    }
}

/// Runs `op` on every row of `(rows, cols)` matrices, whole rows per parallel chunk.
/// `cols >= 1`, lengths checked by the caller.
pub(crate) fn for_each_row(a: &[f32], b: &[f32], out: &mut [f32], cols: usize, op: &impl RowOp) {
    let isa = current_isa();
    let chunk = row_chunk_len(out.len(), cols);
    if chunk >= out.len() {
        dispatch(isa, Rows { op, cols, a, b, out });
    } else {
        out.par_chunks_mut(chunk)
            .zip(a.par_chunks(chunk))
            .zip(b.par_chunks(chunk))
            .for_each(|((out, a), b)| dispatch(isa, Rows { op, cols, a, b, out }));
    }
}

/// Softmax of one row into `y`: `y = e^{x - max}/Σ e^{x - max}`; returns `(max, Σ)` for
/// the losses (`ln Σ e^{x} = max + ln Σ`).
#[inline(always)]
fn softmax_row<V: SimdF32>(x: &[f32], y: &mut [f32]) -> (f32, f32) {
    let m = row_max::<V>(x);
    let sum = row_exp_sum_into::<V>(x, m, y);
    let inv = V::splat(1.0 / sum);
    let mut ys = y.chunks_exact_mut(V::LANES);
    for y in &mut ys {
        (V::load(y) * inv).store(y);
    }
    let y = ys.into_remainder();
    if !y.is_empty() {
        store_partial(load_padded::<V>(y, 0.0) * inv, y);
    }
    (m, sum)
}

/// Rows narrower than this (classifier heads of 10 classes, ...) are done `V::LANES` at a
/// time with one row per lane: a row-wise vector would leave most lanes as padding and spend
/// its time in tails and horizontal reductions.
const NARROW_COLS: usize = 16;

/// Softmax of `V::LANES` rows of `cols` values at once (row `r` in lane `r`), the math of
/// [`softmax_row`] with columns gathered into vectors; returns each row's `(max, Σ)` in the
/// first `V::LANES` entries.
#[inline(always)]
fn softmax_rows_transposed<V: SimdF32>(
    cols: usize,
    x: &[f32],
    y: &mut [f32],
) -> ([f32; MAX_LANES], [f32; MAX_LANES]) {
    let column = |j: usize| {
        let lanes: [f32; MAX_LANES] =
            std::array::from_fn(|r| if r < V::LANES { x[r * cols + j] } else { 0.0 });
        V::load(&lanes)
    };
    let mut m = V::splat(f32::NEG_INFINITY);
    for j in 0..cols {
        m = m.max(column(j));
    }
    let mut sum = V::splat(0.0);
    for j in 0..cols {
        let e = exp(column(j) - m);
        sum = sum + e;
        for (r, &e) in to_array(e)[..V::LANES].iter().enumerate() {
            y[r * cols + j] = e;
        }
    }
    let inv = to_array(V::splat(1.0) / sum);
    for (y, inv) in y.chunks_exact_mut(cols).zip(inv) {
        y.iter_mut().for_each(|v| *v *= inv);
    }
    (to_array(m), to_array(sum))
}

/// Softmax of every row of `x (rows, cols)` into `y` (`cols >= 1`), calling
/// `row_done(r, max, Σ)` for each row in order (`ln Σ e^{x} = max + ln Σ`, for the losses).
/// Narrow rows go `V::LANES` at a time through [`softmax_rows_transposed`], the rest one by
/// one.
#[inline(always)]
pub(crate) fn softmax_rows<V: SimdF32>(
    cols: usize,
    x: &[f32],
    y: &mut [f32],
    mut row_done: impl FnMut(usize, f32, f32),
) {
    let (mut x, mut y, mut r) = (x, y, 0);
    if cols < NARROW_COLS {
        let mut xs = x.chunks_exact(V::LANES * cols);
        let mut ys = y.chunks_exact_mut(V::LANES * cols);
        for (xb, yb) in (&mut xs).zip(&mut ys) {
            let (m, sum) = softmax_rows_transposed::<V>(cols, xb, yb);
            for (&m, &sum) in m[..V::LANES].iter().zip(&sum[..V::LANES]) {
                row_done(r, m, sum);
                r += 1;
            }
        }
        (x, y) = (xs.remainder(), ys.into_remainder());
    }
    for (x, y) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        let (m, sum) = softmax_row::<V>(x, y);
        row_done(r, m, sum);
        r += 1;
    }
}

/// Softmax of the rows of one parallel chunk, as a [`Kernel`].
struct SoftmaxChunk<'a, 'b> {
    cols: usize,
    x: &'a [f32],
    y: &'b mut [f32],
}

impl Kernel for SoftmaxChunk<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn run<V: SimdF32>(self) {
        softmax_rows::<V>(self.cols, self.x, self.y, |_, _, _| {});
    }
}

/// `y = x - max - ln Σ e^{x - max}` per row.
struct LogSoftmax;

impl RowOp for LogSoftmax {
    #[inline(always)]
    fn row<V: SimdF32>(&self, x: &[f32], _: &[f32], y: &mut [f32]) {
        let m = row_max::<V>(x);
        // y holds e^{x - m} for the sum, then is overwritten with the result.
        let ln_sum = V::splat(row_exp_sum_into::<V>(x, m, y).ln());
        let mv = V::splat(m);
        row_map2(x, x, y, |x: V, _| (x - mv) - ln_sum);
    }
}

/// `dx = y·(dy - Σ dy·y)` per row.
struct SoftmaxBackward;

impl RowOp for SoftmaxBackward {
    #[inline(always)]
    fn row<V: SimdF32>(&self, y: &[f32], dy: &[f32], dx: &mut [f32]) {
        let dot = V::splat(row_sum2(y, dy, |y: V, dy| y * dy));
        row_map2(y, dy, dx, |y: V, dy| y * (dy - dot));
    }
}

/// `dx = dy - e^{y}·Σ dy` per row.
struct LogSoftmaxBackward;

impl RowOp for LogSoftmaxBackward {
    #[inline(always)]
    fn row<V: SimdF32>(&self, y: &[f32], dy: &[f32], dx: &mut [f32]) {
        let sum = V::splat(row_sum2(dy, dy, |dy: V, _| dy));
        row_map2(y, dy, dx, |y: V, dy| dy - exp(y) * sum);
    }
}

/// `y[r, j] = e^{x[r, j]} / Σ_k e^{x[r, k]}` per row of `x (rows, cols)`, computed as
/// `e^{x - max}` so no exponent overflows; `y (rows, cols)` **overwritten**. A row holding
/// NaN (or +inf) gives a NaN row; `-inf` entries give 0. Zero rows or columns: no-op.
///
/// ```
/// use keel_kernels::activation::softmax_forward;
/// # fn main() -> keel_kernels::Result<()> {
/// // x, y: (rows 2, cols 3). Huge logits do not overflow.
/// let x = [1.0, 2.0, 3.0, 1000.0, 1000.0, 1000.0];
/// let mut y = [0.0; 6];
/// softmax_forward(2, 3, &x, &mut y)?;
/// for row in y.chunks(3) {
///     assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
/// }
/// let total: f32 = x[..3].iter().map(|v| v.exp()).sum();
/// assert!((y[2] - 3.0f32.exp() / total).abs() < 1e-6);
/// assert!((y[3] - 1.0 / 3.0).abs() < 1e-6);
/// # Ok(())
/// # }
/// ```
pub fn softmax_forward(rows: usize, cols: usize, x: &[f32], y: &mut [f32]) -> Result<()> {
    check_matrix("x", ("rows", "cols"), rows, cols, x.len())?;
    check_matrix("y", ("rows", "cols"), rows, cols, y.len())?;
    if y.is_empty() {
        return Ok(());
    }
    let isa = current_isa();
    let chunk = row_chunk_len(y.len(), cols);
    if chunk >= y.len() {
        dispatch(isa, SoftmaxChunk { cols, x, y });
    } else {
        y.par_chunks_mut(chunk)
            .zip(x.par_chunks(chunk))
            .for_each(|(y, x)| dispatch(isa, SoftmaxChunk { cols, x, y }));
    }
    Ok(())
}

/// `y[r, j] = x[r, j] - max_r - ln Σ_k e^{x[r, k] - max_r}` (log-sum-exp with the row max
/// taken out first, so `y` stays exact where `x` is near the max); shapes and NaN as
/// [`softmax_forward`], `y` **overwritten**.
///
/// ```
/// use keel_kernels::activation::log_softmax_forward;
/// # fn main() -> keel_kernels::Result<()> {
/// // x, y: (rows 1, cols 2). Equal logits: both ln(1/2).
/// let mut y = [0.0; 2];
/// log_softmax_forward(1, 2, &[5.0, 5.0], &mut y)?;
/// assert!(y.iter().all(|v| (v + 2.0f32.ln()).abs() < 1e-6));
/// # Ok(())
/// # }
/// ```
pub fn log_softmax_forward(rows: usize, cols: usize, x: &[f32], y: &mut [f32]) -> Result<()> {
    check_matrix("x", ("rows", "cols"), rows, cols, x.len())?;
    check_matrix("y", ("rows", "cols"), rows, cols, y.len())?;
    if y.is_empty() {
        return Ok(());
    }
    for_each_row(x, x, y, cols, &LogSoftmax);
    Ok(())
}

/// `dx = y·(dy - Σ_k dy_k·y_k)` per row, from the saved output `y = softmax(x)`;
/// `y`, `dy`, `dx` are `(rows, cols)`, `dx` **overwritten**.
///
/// ```
/// use keel_kernels::activation::softmax_backward;
/// # fn main() -> keel_kernels::Result<()> {
/// // y = softmax([0, 0]) = [0.5, 0.5], dy, dx: (rows 1, cols 2).
/// let y = [0.5, 0.5];
/// let mut dx = [0.0; 2];
/// softmax_backward(1, 2, &y, &[1.0, 0.0], &mut dx)?;
/// assert_eq!(dx, [0.25, -0.25]); // 0.5·(1 - 0.5), 0.5·(0 - 0.5)
/// // Softmax ignores a constant added to a row, so a constant dy has no gradient.
/// softmax_backward(1, 2, &y, &[3.0, 3.0], &mut dx)?;
/// assert_eq!(dx, [0.0, 0.0]);
/// # Ok(())
/// # }
/// ```
pub fn softmax_backward(rows: usize, cols: usize, y: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<()> {
    check_matrix("y", ("rows", "cols"), rows, cols, y.len())?;
    check_matrix("dy", ("rows", "cols"), rows, cols, dy.len())?;
    check_matrix("dx", ("rows", "cols"), rows, cols, dx.len())?;
    if dx.is_empty() {
        return Ok(());
    }
    for_each_row(y, dy, dx, cols, &SoftmaxBackward);
    Ok(())
}

/// `dx = dy - e^{y}·Σ_k dy_k` per row, from the saved output `y = log_softmax(x)`
/// (`e^{y}` is the softmax); `(rows, cols)` each, `dx` **overwritten**.
///
/// ```
/// use keel_kernels::activation::{log_softmax_backward, log_softmax_forward};
/// # fn main() -> keel_kernels::Result<()> {
/// // x, y, dy, dx: (rows 1, cols 2). The negative log-likelihood of class 0 has
/// // dy = [-1, 0], so dx = softmax(x) - onehot(0) = [0.5 - 1, 0.5].
/// let mut y = [0.0; 2];
/// log_softmax_forward(1, 2, &[0.0, 0.0], &mut y)?;
/// let mut dx = [0.0; 2];
/// log_softmax_backward(1, 2, &y, &[-1.0, 0.0], &mut dx)?;
/// assert!((dx[0] + 0.5).abs() < 1e-6 && (dx[1] - 0.5).abs() < 1e-6);
/// # Ok(())
/// # }
/// ```
pub fn log_softmax_backward(rows: usize, cols: usize, y: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<()> {
    check_matrix("y", ("rows", "cols"), rows, cols, y.len())?;
    check_matrix("dy", ("rows", "cols"), rows, cols, dy.len())?;
    check_matrix("dx", ("rows", "cols"), rows, cols, dx.len())?;
    if dx.is_empty() {
        return Ok(());
    }
    for_each_row(y, dy, dx, cols, &LogSoftmaxBackward);
    Ok(())
}
