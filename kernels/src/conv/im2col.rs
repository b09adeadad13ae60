//! im2col and col2im: the window unfolding that turns a convolution into a GEMM.
//!
//! For one group of one image `x (c, h, w)` (`c = c_in/groups`), the column matrix is
//! `col (c·kh·kw, out_h·out_w)`: row `(ci·kh + ki)·kw + kj` holds, for every output position
//! `(oy, ox)`, the input tap `x[ci, oy·stride_h + ki·dilation_h - pad_h, ox·stride_w +
//! kj·dilation_w - pad_w]`, or 0 where that falls in the padding. The row order matches the
//! weight layout `(c_out, c, kh, kw)`, so `y = W (c_out, c·kh·kw) × col`.
//!
//! Each row is filled one output row `oy` at a time: the taps that land inside the input
//! form one contiguous range of `ox` (computed once per kernel tap). With stride 1 that range
//! and the zeros of the padding around it are one short row move ([`RowMoves`], masked
//! AVX-512 where the CPU has it), and col2im adds it back with one short row add.

use std::ops::Range;

use rayon::prelude::*;

use super::rows::{Avx512Moves, PortableMoves, RowMoves};
use super::shape::{saturating_product, Conv2dShape};
use crate::error::{check_len, Result};
use crate::isa::{current_isa, Isa};
use crate::parallel::{current_num_threads, MIN_PARALLEL_ELEMENTS};

/// `col = im2col(x)` for one group of one image: row `(ci·kh + ki)·kw + kj`, column
/// `oy·out_w + ox` of `col` holds `x[ci, oy·stride_h + ki·dilation_h - pad_h, ox·stride_w +
/// kj·dilation_w - pad_w]`, or 0 in the padding (so `y = W (c_out, c·kh·kw) × col`).
///
/// `x` is `(c_in/groups, h, w)` (a whole image when `groups = 1`); `col` is
/// `(c_in/groups·kh·kw, out_h·out_w)` and is **overwritten** (never read). `shape.n` is not
/// used. Errors if `shape` fails [`Conv2dShape::check`] or a slice length does not match.
///
/// ```
/// use keel_kernels::conv::{im2col, Conv2dShape};
/// # fn main() -> keel_kernels::Result<()> {
/// // x (1, 3, 3), a 2x2 kernel: col (1·2·2, 2·2), one row per tap, one column per window.
/// let shape = Conv2dShape::new(1, 1, 3, 3, 1, 2, 2);
/// let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
/// let mut col = [0.0; 16];
/// im2col(&shape, &x, &mut col)?;
/// assert_eq!(col, [
///     1.0, 2.0, 4.0, 5.0, // tap (0, 0) of the four windows
///     2.0, 3.0, 5.0, 6.0, // tap (0, 1)
///     4.0, 5.0, 7.0, 8.0, // tap (1, 0)
///     5.0, 6.0, 8.0, 9.0, // tap (1, 1)
/// ]);
/// // With padding 1 the first window's top-left tap falls in the padding: 0.
/// let padded = shape.with_pad(1); // out 4x4
/// let mut col = vec![f32::NAN; padded.col_len()];
/// im2col(&padded, &x, &mut col)?;
/// assert_eq!((col.len(), col[0], col[5]), (4 * 16, 0.0, 1.0));
/// # Ok(())
/// # }
/// ```
pub fn im2col(shape: &Conv2dShape, x: &[f32], col: &mut [f32]) -> Result<()> {
    check_plane_args(shape, x.len(), col.len())?;
    im2col_unchecked(current_isa(), shape, x, col, true);
    Ok(())
}

/// `x = col2im(col)`, the adjoint of [`im2col`]: each column entry is added back to the input
/// position it was copied from, so overlapping windows **sum** their contributions.
///
/// `col` is `(c_in/groups·kh·kw, out_h·out_w)`; `x` is `(c_in/groups, h, w)` and is
/// **overwritten** with the sum (zeroed first, never read). Errors as [`im2col`].
///
/// ```
/// use keel_kernels::conv::{col2im, Conv2dShape};
/// # fn main() -> keel_kernels::Result<()> {
/// // col (1·2·2, 2·2) of ones back onto x (1, 3, 3): each position counts its windows.
/// let shape = Conv2dShape::new(1, 1, 3, 3, 1, 2, 2);
/// let mut x = [f32::NAN; 9];
/// col2im(&shape, &[1.0; 16], &mut x)?;
/// assert_eq!(x, [1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]);
/// # Ok(())
/// # }
/// ```
pub fn col2im(shape: &Conv2dShape, col: &[f32], x: &mut [f32]) -> Result<()> {
    check_plane_args(shape, x.len(), col.len())?;
    col2im_unchecked(current_isa(), shape, col, x, true);
    Ok(())
}

/// Checks the shape and the lengths of one group's `x (c_in/groups, h, w)` and `col`.
pub(super) fn check_plane_args(shape: &Conv2dShape, x_len: usize, col_len: usize) -> Result<()> {
    shape.check()?;
    let (c, h, w) = (shape.c_in / shape.groups, shape.h, shape.w);
    // Saturating: a batch of 0 images passes the shape check with any plane size.
    check_len(|| format!("x (c_in/groups, h, w) = ({c}, {h}, {w})"), saturating_product(&[c, h, w]), x_len)?;
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
    #[inline(always)]
    fn inside(&self, k: usize) -> (usize, usize, usize) {
        let off = k * self.dilation;
        if self.stride == 1 {
            // The same bounds without the divisions, which cost more than a whole short row
            // move when im2col runs once per tap.
            let lo = self.pad.saturating_sub(off).min(self.out);
            let hi = (self.size + self.pad).saturating_sub(off).clamp(lo, self.out);
            return (lo, hi, if lo < hi { lo + off - self.pad } else { 0 });
        }
        let lo = if self.pad > off { (self.pad - off).div_ceil(self.stride) } else { 0 }.min(self.out);
        let end = self.size + self.pad;
        let hi = if end > off { (end - off).div_ceil(self.stride) } else { 0 }.clamp(lo, self.out);
        // When lo < hi the index of lo is in 0..size, so this does not underflow.
        let first = if lo < hi { lo * self.stride + off - self.pad } else { 0 };
        (lo, hi, first)
    }
}

/// The output rows `lo..hi` (input row of `lo`: `first`, then one every `stride`) as seen from
/// the band of output rows `band`: the rows of the band inside `lo..hi`, counted from the
/// band's start, and the input row of the first.
#[inline(always)]
fn within(band: Range<usize>, lo: usize, hi: usize, first: usize, stride: usize) -> (usize, usize, usize) {
    let (from, to) = (lo.max(band.start), hi.min(band.end));
    if from >= to {
        return (0, 0, 0);
    }
    (from - band.start, to - band.start, first + (from - lo) * stride)
}

/// Whether a plane operation of `len` column elements should split its channels across
/// the pool (`allowed` is false when the caller already runs images in parallel).
fn split_channels(allowed: bool, len: usize) -> bool {
    allowed && len >= MIN_PARALLEL_ELEMENTS && current_num_threads() > 1
}

/// [`im2col`] without the checks, on `isa`: `x` and `col` must have the lengths it checks. Channels
/// are independent (each fills its own `kh·kw` rows), so they run in parallel when
/// `parallel` is set and the matrix is big enough.
pub(super) fn im2col_unchecked(isa: Isa, shape: &Conv2dShape, x: &[f32], col: &mut [f32], parallel: bool) {
    im2col_band_unchecked(isa, shape, x, 0..shape.out_h(), col, parallel);
}

/// The columns of the output rows `band` of [`im2col`], without the checks: `col` is
/// `(c_in/groups·kh·kw, band.len()·out_w)` (row `r` of the full matrix, columns
/// `band.start·out_w..band.end·out_w`), **overwritten**; `x` as [`im2col`] checks it, `band`
/// within `0..out_h`.
pub(super) fn im2col_band_unchecked(
    isa: Isa,
    shape: &Conv2dShape,
    x: &[f32],
    band: Range<usize>,
    col: &mut [f32],
    parallel: bool,
) {
    let rows_per_channel = shape.kh * shape.kw * band.len() * shape.out_w();
    let plane = shape.h * shape.w;
    let (ay, ax) = (Axis::rows(shape), Axis::cols(shape));
    let avx512 = Avx512Moves::new(isa);
    let fill = |(rows, xc): (&mut [f32], &[f32])| match avx512 {
        // SAFETY: an `Avx512Moves` exists only when the CPU has AVX-512F.
        Some(moves) => unsafe { im2col_channel_avx512(shape, ay, ax, band.clone(), moves, xc, rows) },
        None => im2col_channel(shape, ay, ax, band.clone(), PortableMoves, xc, rows),
    };
    if split_channels(parallel, col.len()) {
        col.par_chunks_mut(rows_per_channel).zip(x.par_chunks(plane)).for_each(fill);
    } else {
        col.chunks_mut(rows_per_channel).zip(x.chunks(plane)).for_each(fill);
    }
}

/// [`im2col_channel`] compiled for AVX-512F, so its row moves inline.
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
unsafe fn im2col_channel_avx512(
    shape: &Conv2dShape,
    ay: Axis,
    ax: Axis,
    band: Range<usize>,
    moves: Avx512Moves,
    xc: &[f32],
    rows: &mut [f32],
) {
    im2col_channel(shape, ay, ax, band, moves, xc, rows);
}

/// The `kh·kw` rows of one input channel `xc (h, w)`, for the output rows `band`.
#[inline(always)]
fn im2col_channel<M: RowMoves>(
    shape: &Conv2dShape,
    ay: Axis,
    ax: Axis,
    band: Range<usize>,
    moves: M,
    xc: &[f32],
    rows: &mut [f32],
) {
    let (w, ow) = (shape.w, ax.out);
    // Row `tap = ki·kw + kj` of this channel: output rows `ylo..yhi` of the band read input
    // rows `iy0, iy0 + stride_h, ...`; the output rows above and below lie in the padding.
    for (tap, row) in rows.chunks_exact_mut(band.len() * ow).enumerate() {
        let (ylo, yhi, iy0) = ay.inside(tap / shape.kw);
        let (ylo, yhi, iy0) = within(band.clone(), ylo, yhi, iy0, ay.stride);
        let (xlo, xhi, ix0) = ax.inside(tap % shape.kw);
        let (above, rest) = row.split_at_mut(ylo * ow);
        let (inside, below) = rest.split_at_mut((yhi - ylo) * ow);
        if !above.is_empty() {
            above.fill(0.0);
        }
        if !below.is_empty() {
            below.fill(0.0);
        }
        if ax.stride == 1 {
            let src = if xlo < xhi { &xc[iy0 * w + ix0..] } else { &[] };
            moves.copy_rows_padded(inside, ow, src, ay.stride * w, xlo, xhi);
            continue;
        }
        for (r, seg) in inside.chunks_exact_mut(ow).enumerate() {
            let xrow = &xc[(iy0 + r * ay.stride) * w..];
            seg[..xlo].fill(0.0);
            seg[xhi..].fill(0.0);
            for (dst, &src) in seg[xlo..xhi].iter_mut().zip(xrow[ix0..].iter().step_by(ax.stride)) {
                *dst = src;
            }
        }
    }
}

/// [`col2im`] without the checks, on `isa`: `col` and `x` must have the lengths it checks. Each input
/// channel receives only its own `kh·kw` rows, so channels run in parallel when `parallel`
/// is set and the matrix is big enough; within a channel the sum runs in a fixed order
/// (taps, then output rows), whatever the thread count.
pub(super) fn col2im_unchecked(isa: Isa, shape: &Conv2dShape, col: &[f32], x: &mut [f32], parallel: bool) {
    let rows_per_channel = shape.kh * shape.kw * shape.col_cols();
    let plane = shape.h * shape.w;
    let (ay, ax) = (Axis::rows(shape), Axis::cols(shape));
    let avx512 = Avx512Moves::new(isa);
    let add = |(xc, rows): (&mut [f32], &[f32])| match avx512 {
        // SAFETY: an `Avx512Moves` exists only when the CPU has AVX-512F.
        Some(moves) => unsafe { col2im_channel_avx512(shape, ay, ax, moves, rows, xc) },
        None => col2im_channel(shape, ay, ax, PortableMoves, rows, xc),
    };
    if split_channels(parallel, col.len()) {
        x.par_chunks_mut(plane).zip(col.par_chunks(rows_per_channel)).for_each(add);
    } else {
        x.chunks_mut(plane).zip(col.chunks(rows_per_channel)).for_each(add);
    }
}

/// [`col2im_channel`] compiled for AVX-512F, so its row adds inline.
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
unsafe fn col2im_channel_avx512(
    shape: &Conv2dShape,
    ay: Axis,
    ax: Axis,
    moves: Avx512Moves,
    rows: &[f32],
    xc: &mut [f32],
) {
    col2im_channel(shape, ay, ax, moves, rows, xc);
}

/// Sums the `kh·kw` rows of one channel into `xc (h, w)` (overwritten).
#[inline(always)]
fn col2im_channel<M: RowMoves>(
    shape: &Conv2dShape,
    ay: Axis,
    ax: Axis,
    moves: M,
    rows: &[f32],
    xc: &mut [f32],
) {
    if ax.stride == 1 {
        col2im_channel_gather(shape, ay, ax, moves, rows, xc);
    } else {
        col2im_channel_scatter(shape, ay, ax, rows, xc);
    }
}

/// col2im of one channel with `stride_w = 1`, as a gather: each 16-wide strip of an input
/// row sums, in registers, the column entries of every tap that lands on it, and is stored
/// once. Adding into memory tap by tap instead would reload each strip right after the
/// previous tap stored it one float to the side, which the CPU cannot forward from its store
/// buffer: that stall dominated col2im. The taps go in order (`ki`, then `kj`) into two
/// partial sums, alternately, so consecutive adds do not wait for each other; the same order
/// on every instruction set.
#[inline(always)]
fn col2im_channel_gather<M: RowMoves>(
    shape: &Conv2dShape,
    ay: Axis,
    ax: Axis,
    moves: M,
    rows: &[f32],
    xc: &mut [f32],
) {
    let (w, ow, p) = (shape.w, ax.out, ay.out * ax.out);
    for (iy, xrow) in xc.chunks_exact_mut(w).enumerate() {
        for q0 in (0..w).step_by(16) {
            let lanes = (w - q0).min(16);
            let (mut sum, mut other) = (moves.zero_strip(), moves.zero_strip());
            for ki in 0..shape.kh {
                // The output row whose tap `ki` reads input row `iy`, if any:
                // `oy·stride_h + ki·dilation_h - pad_h = iy` (no division for stride 1).
                let Some(t) = (iy + ay.pad).checked_sub(ki * ay.dilation) else { continue };
                let oy = match ay.stride {
                    1 => t,
                    stride if t % stride == 0 => t / stride,
                    _ => continue,
                };
                if oy >= ay.out {
                    continue;
                }
                for kj in 0..shape.kw {
                    // Lane `l` is input column `q0 + l`, read by output column
                    // `ox = q0 + l + pad_w - kj·dilation_w`, valid for `0 <= ox < out_w`.
                    let shift = (q0 + ax.pad) as isize - (kj * ax.dilation) as isize;
                    let lo = (-shift).clamp(0, lanes as isize) as usize;
                    let hi = (ow as isize - shift).clamp(lo as isize, lanes as isize) as usize;
                    if lo < hi {
                        let tap_row = &rows[(ki * shape.kw + kj) * p + oy * ow..][..ow];
                        let first = (lo as isize + shift) as usize;
                        (sum, other) = (other, moves.add_to_strip(sum, &tap_row[first..], lo, hi));
                    }
                }
            }
            moves.store_strip(moves.add_strips(sum, other), &mut xrow[q0..q0 + lanes]);
        }
    }
}

/// col2im of one channel for any stride: zero `xc`, then add each tap's rows into the input
/// positions they were copied from, taps in order.
fn col2im_channel_scatter(shape: &Conv2dShape, ay: Axis, ax: Axis, rows: &[f32], xc: &mut [f32]) {
    let (w, ow) = (shape.w, ax.out);
    xc.fill(0.0);
    for (tap, row) in rows.chunks_exact(ay.out * ow).enumerate() {
        let (ylo, yhi, iy0) = ay.inside(tap / shape.kw);
        let (xlo, xhi, ix0) = ax.inside(tap % shape.kw);
        if xlo == xhi {
            continue;
        }
        for (r, seg) in row[ylo * ow..yhi * ow].chunks_exact(ow).enumerate() {
            let xrow = &mut xc[(iy0 + r * ay.stride) * w..];
            for (dst, &src) in xrow[ix0..].iter_mut().step_by(ax.stride).zip(&seg[xlo..xhi]) {
                *dst += src;
            }
        }
    }
}
