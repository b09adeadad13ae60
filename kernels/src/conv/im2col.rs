//! im2col and col2im: the window unfolding that turns a convolution into a GEMM.
//!
//! For one group of one image `x (c, h, w)` (`c = c_in/groups`), the column matrix is
//! `col (c·kh·kw, out_h·out_w)`: row `(ci·kh + ki)·kw + kj` holds, for every output position
//! `(oy, ox)`, the input tap `x[ci, oy·stride_h + ki·dilation_h - pad_h, ox·stride_w +
//! kj·dilation_w - pad_w]`, or 0 where that falls in the padding. The row order matches the
//! weight layout `(c_out, c, kh, kw)`, so `y = W (c_out, c·kh·kw) × col`.
//!
//! Each row is filled one output row `oy` at a time: the taps that land inside the input
//! form one contiguous range of `ox` (computed once per kernel tap), copied with a slice
//! copy when the stride is 1; the zeros of the padding around it are filled separately.

use rayon::prelude::*;

use super::shape::Conv2dShape;
use crate::error::{check_len, Result};
use crate::parallel::{current_num_threads, MIN_PARALLEL_ELEMENTS};

/// `col = im2col(x)` for one group of one image: row `(ci·kh + ki)·kw + kj`, column
/// `oy·out_w + ox` of `col` holds `x[ci, oy·stride_h + ki·dilation_h - pad_h, ox·stride_w +
/// kj·dilation_w - pad_w]`, or 0 in the padding (so `y = W (c_out, c·kh·kw) × col`).
///
/// `x` is `(c_in/groups, h, w)` (a whole image when `groups = 1`); `col` is
/// `(c_in/groups·kh·kw, out_h·out_w)` and is **overwritten** (never read). `shape.n` is not
/// used. Errors if `shape` fails [`Conv2dShape::check`] or a slice length does not match.
pub fn im2col(shape: &Conv2dShape, x: &[f32], col: &mut [f32]) -> Result<()> {
    check_plane_args(shape, x.len(), col.len())?;
    im2col_unchecked(shape, x, col, true);
    Ok(())
}

/// `x = col2im(col)`, the adjoint of [`im2col`]: each column entry is added back to the input
/// position it was copied from, so overlapping windows **sum** their contributions.
///
/// `col` is `(c_in/groups·kh·kw, out_h·out_w)`; `x` is `(c_in/groups, h, w)` and is
/// **overwritten** with the sum (zeroed first, never read). Errors as [`im2col`].
pub fn col2im(shape: &Conv2dShape, col: &[f32], x: &mut [f32]) -> Result<()> {
    check_plane_args(shape, x.len(), col.len())?;
    col2im_unchecked(shape, col, x, true);
    Ok(())
}

/// Checks the shape and the lengths of one group's `x (c_in/groups, h, w)` and `col`.
pub(super) fn check_plane_args(shape: &Conv2dShape, x_len: usize, col_len: usize) -> Result<()> {
    shape.check()?;
    let (c, h, w) = (shape.c_in / shape.groups, shape.h, shape.w);
    check_len(|| format!("x (c_in/groups, h, w) = ({c}, {h}, {w})"), c * h * w, x_len)?;
    let (rows, cols) = (shape.col_rows(), shape.col_cols());
    check_len(|| format!("col (c_in/groups·kh·kw, out_h·out_w) = ({rows}, {cols})"), shape.col_len(), col_len)
}

/// One spatial axis of the window scan.
#[derive(Clone, Copy)]
struct Axis {
    size: usize,
    out: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
}

impl Axis {
    fn rows(shape: &Conv2dShape) -> Self {
        Self {
            size: shape.h,
            out: shape.out_h(),
            stride: shape.stride_h,
            pad: shape.pad_h,
            dilation: shape.dilation_h,
        }
    }

    fn cols(shape: &Conv2dShape) -> Self {
        Self {
            size: shape.w,
            out: shape.out_w(),
            stride: shape.stride_w,
            pad: shape.pad_w,
            dilation: shape.dilation_w,
        }
    }

    /// The output positions `lo..hi` whose input index `o·stride + k·dilation - pad` for tap
    /// `k` lies in `0..size`, and the input index of `lo` (meaningful when `lo < hi`).
    ///
    /// `o·stride + off >= pad` holds from `o = ceil((pad - off)/stride)` on, and
    /// `o·stride + off < size + pad` up to `o < ceil((size + pad - off)/stride)`.
    fn inside(&self, k: usize) -> (usize, usize, usize) {
        let off = k * self.dilation;
        let lo = if self.pad > off { (self.pad - off).div_ceil(self.stride) } else { 0 }.min(self.out);
        let end = self.size + self.pad;
        let hi = if end > off { (end - off).div_ceil(self.stride) } else { 0 }.clamp(lo, self.out);
        // When lo < hi the index of lo is in 0..size, so this does not underflow.
        let first = if lo < hi { lo * self.stride + off - self.pad } else { 0 };
        (lo, hi, first)
    }
}

/// Whether a plane operation of `len` column elements should split its channels across
/// the pool (`allowed` is false when the caller already runs images in parallel).
fn split_channels(allowed: bool, len: usize) -> bool {
    allowed && len >= MIN_PARALLEL_ELEMENTS && current_num_threads() > 1
}

/// [`im2col`] without the checks: `x` and `col` must have the lengths it checks. Channels
/// are independent (each fills its own `kh·kw` rows), so they run in parallel when
/// `parallel` is set and the matrix is big enough.
pub(super) fn im2col_unchecked(shape: &Conv2dShape, x: &[f32], col: &mut [f32], parallel: bool) {
    let rows_per_channel = shape.kh * shape.kw * shape.col_cols();
    let plane = shape.h * shape.w;
    let (ay, ax) = (Axis::rows(shape), Axis::cols(shape));
    let fill = |(rows, xc): (&mut [f32], &[f32])| im2col_channel(shape, ay, ax, xc, rows);
    if split_channels(parallel, col.len()) {
        col.par_chunks_mut(rows_per_channel).zip(x.par_chunks(plane)).for_each(fill);
    } else {
        col.chunks_mut(rows_per_channel).zip(x.chunks(plane)).for_each(fill);
    }
}

/// The `kh·kw` rows of one input channel `xc (h, w)`.
fn im2col_channel(shape: &Conv2dShape, ay: Axis, ax: Axis, xc: &[f32], rows: &mut [f32]) {
    let (w, ow) = (shape.w, ax.out);
    // Row `tap = ki·kw + kj` of this channel.
    for (tap, row) in rows.chunks_exact_mut(ay.out * ow).enumerate() {
        let (ylo, yhi, iy0) = ay.inside(tap / shape.kw);
        let (xlo, xhi, ix0) = ax.inside(tap % shape.kw);
        for (oy, seg) in row.chunks_exact_mut(ow).enumerate() {
            if oy < ylo || oy >= yhi || xlo == xhi {
                seg.fill(0.0);
                continue;
            }
            let iy = iy0 + (oy - ylo) * ay.stride;
            let xrow = &xc[iy * w..(iy + 1) * w];
            seg[..xlo].fill(0.0);
            seg[xhi..].fill(0.0);
            let inner = &mut seg[xlo..xhi];
            if ax.stride == 1 {
                inner.copy_from_slice(&xrow[ix0..ix0 + inner.len()]);
            } else {
                for (dst, &src) in inner.iter_mut().zip(xrow[ix0..].iter().step_by(ax.stride)) {
                    *dst = src;
                }
            }
        }
    }
}

/// [`col2im`] without the checks: `col` and `x` must have the lengths it checks. Each input
/// channel receives only its own `kh·kw` rows, so channels run in parallel when `parallel`
/// is set and the matrix is big enough; within a channel the sum runs in a fixed order
/// (taps, then output rows), whatever the thread count.
pub(super) fn col2im_unchecked(shape: &Conv2dShape, col: &[f32], x: &mut [f32], parallel: bool) {
    let rows_per_channel = shape.kh * shape.kw * shape.col_cols();
    let plane = shape.h * shape.w;
    let (ay, ax) = (Axis::rows(shape), Axis::cols(shape));
    let add = |(xc, rows): (&mut [f32], &[f32])| col2im_channel(shape, ay, ax, rows, xc);
    if split_channels(parallel, col.len()) {
        x.par_chunks_mut(plane).zip(col.par_chunks(rows_per_channel)).for_each(add);
    } else {
        x.chunks_mut(plane).zip(col.chunks(rows_per_channel)).for_each(add);
    }
}

/// Sums the `kh·kw` rows of one channel into `xc (h, w)`, which is zeroed first.
fn col2im_channel(shape: &Conv2dShape, ay: Axis, ax: Axis, rows: &[f32], xc: &mut [f32]) {
    let (w, ow) = (shape.w, ax.out);
    xc.fill(0.0);
    // Row `tap = ki·kw + kj` of this channel; only its entries inside the input are added.
    for (tap, row) in rows.chunks_exact(ay.out * ow).enumerate() {
        let (ylo, yhi, iy0) = ay.inside(tap / shape.kw);
        let (xlo, xhi, ix0) = ax.inside(tap % shape.kw);
        if xlo == xhi {
            continue;
        }
        for (oy, seg) in row.chunks_exact(ow).enumerate().take(yhi).skip(ylo) {
            let iy = iy0 + (oy - ylo) * ay.stride;
            let xrow = &mut xc[iy * w..(iy + 1) * w];
            let inner = &seg[xlo..xhi];
            if ax.stride == 1 {
                for (dst, &src) in xrow[ix0..ix0 + inner.len()].iter_mut().zip(inner) {
                    *dst += src;
                }
            } else {
                for (dst, &src) in xrow[ix0..].iter_mut().step_by(ax.stride).zip(inner) {
                    *dst += src;
                }
            }
        }
    }
}
