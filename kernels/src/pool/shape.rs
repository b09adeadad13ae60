//! The pooling shape, its checks, and the per-axis window geometry every kernel shares.

use super::LANES;
use crate::error::{check_len, shape_error, Result};

/// The dimensions of one 2-D pooling call over an NCHW tensor (PyTorch's `MaxPool2d` /
/// `AvgPool2d` arguments, without dilation).
///
/// Window `(oh, ow)` covers the padded rows `oh·stride_h .. oh·stride_h + kh` (and likewise
/// columns), i.e. input rows `oh·stride_h - pad_h ..` of length `kh`; the parts that fall in
/// the padding are never read. The output is `(n, c, out_h, out_w)` with
/// `out = floor((size + 2·pad - kernel) / stride) + 1`, or with `ceil_mode` the ceiling
/// instead of the floor, minus one when the last window would start past the input and its
/// left padding (PyTorch's rule, so every window holds at least one input element).
///
/// ```
/// use keel_kernels::pool::Pool2dShape;
///
/// // 2x2 windows, stride 2, over a batch of 4 images of 16 channels, 5x5.
/// let shape = Pool2dShape::square(4, 16, 5, 5, 2, 2, 0);
/// assert!(shape.check().is_ok());
/// assert_eq!((shape.out_h(), shape.out_w()), (2, 2)); // floor((5 - 2) / 2) + 1
/// assert_eq!((shape.in_len(), shape.out_len()), (4 * 16 * 5 * 5, 4 * 16 * 2 * 2));
/// // With ceil_mode a third, clipped window covers the last row and column.
/// assert_eq!(shape.with_ceil_mode(true).out_h(), 3);
/// // Padding may be at most half the window.
/// assert!(Pool2dShape::square(4, 16, 5, 5, 2, 2, 2).check().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pool2dShape {
    /// Batch size (may be 0: every kernel is then a no-op).
    pub n: usize,
    /// Channels (may be 0: every kernel is then a no-op).
    pub c: usize,
    /// Input height (>= 1).
    pub h: usize,
    /// Input width (>= 1).
    pub w: usize,
    /// Window height (>= 1).
    pub kh: usize,
    /// Window width (>= 1).
    pub kw: usize,
    /// Vertical step between windows (>= 1).
    pub stride_h: usize,
    /// Horizontal step between windows (>= 1).
    pub stride_w: usize,
    /// Implicit padding on the top and bottom (<= kh / 2).
    pub pad_h: usize,
    /// Implicit padding on the left and right (<= kw / 2).
    pub pad_w: usize,
    /// Round the output size up instead of down (PyTorch's `ceil_mode`).
    pub ceil_mode: bool,
}

impl Pool2dShape {
    /// A square window `kernel x kernel` with the same stride and padding on both axes,
    /// `ceil_mode` off (PyTorch's `MaxPool2d(kernel, stride, pad)`).
    pub fn square(n: usize, c: usize, h: usize, w: usize, kernel: usize, stride: usize, pad: usize) -> Self {
        Self {
            n,
            c,
            h,
            w,
            kh: kernel,
            kw: kernel,
            stride_h: stride,
            stride_w: stride,
            pad_h: pad,
            pad_w: pad,
            ceil_mode: false,
        }
    }

    /// The same shape with `ceil_mode` set.
    pub fn with_ceil_mode(self, ceil_mode: bool) -> Self {
        Self { ceil_mode, ..self }
    }

    /// Checks the shape: non-zero image, kernel and stride; `pad <= kernel / 2` (PyTorch's
    /// rule); padded sizes `size + 2·pad <= 2^32`; a window that fits the padded input
    /// (output >= 1 on each axis); planes of at most 2^32 elements (argmax indices are `u32`);
    /// element counts that fit `usize`.
    pub fn check(&self) -> Result<()> {
        for (name, value) in [
            ("h", self.h),
            ("w", self.w),
            ("kh", self.kh),
            ("kw", self.kw),
            ("stride_h", self.stride_h),
            ("stride_w", self.stride_w),
        ] {
            if value == 0 {
                return Err(shape_error(name, format!("{name} >= 1"), value));
            }
        }
        for (name, pad, kernel) in [("pad_h", self.pad_h, self.kh), ("pad_w", self.pad_w, self.kw)] {
            if pad > kernel / 2 {
                return Err(shape_error(name, format!("{name} <= kernel / 2 = {}", kernel / 2), pad));
            }
        }
        for (name, kernel, size, size_name, pad, pad_name) in [
            ("kh", self.kh, self.h, "h", self.pad_h, "pad_h"),
            ("kw", self.kw, self.w, "w", self.pad_w, "pad_w"),
        ] {
            // A padded size of at most 2^32 bounds the kernel and the padding too (a window fits
            // the padded input), so window arithmetic never overflows. `2·pad` cannot overflow:
            // pad <= kernel / 2.
            let padded = size.checked_add(2 * pad).filter(|&padded| padded as u64 <= 1 << 32);
            let Some(padded) = padded else {
                return Err(shape_error(
                    format!("{size_name} + 2·{pad_name}"),
                    "a padded size <= 2^32",
                    format!("{size} + 2·{pad}"),
                ));
            };
            if kernel > padded {
                return Err(shape_error(
                    name,
                    format!("{name} <= padded input size {padded} (output >= 1)"),
                    kernel,
                ));
            }
        }
        let plane = self.h.checked_mul(self.w);
        if plane.is_none_or(|plane| plane as u64 > 1 << 32) {
            return Err(shape_error(
                "plane h·w",
                "h·w <= 2^32 (argmax indices are u32)",
                format!("{}·{}", self.h, self.w),
            ));
        }
        if self.checked_len(self.h, self.w).is_none() {
            return Err(shape_error(
                "x (n, c, h, w)",
                "an element count that fits usize",
                format!("({}, {}, {}, {})", self.n, self.c, self.h, self.w),
            ));
        }
        if self.checked_len(self.out_h(), self.out_w()).is_none() {
            return Err(shape_error(
                "y (n, c, out_h, out_w)",
                "an element count that fits usize",
                format!("({}, {}, {}, {})", self.n, self.c, self.out_h(), self.out_w()),
            ));
        }
        Ok(())
    }

    /// Output height (meaningful once [`check`](Self::check) passed).
    pub fn out_h(&self) -> usize {
        Axis::new(self.h, self.kh, self.stride_h, self.pad_h, self.ceil_mode).out
    }

    /// Output width (meaningful once [`check`](Self::check) passed).
    pub fn out_w(&self) -> usize {
        Axis::new(self.w, self.kw, self.stride_w, self.pad_w, self.ceil_mode).out
    }

    /// Elements of `x` and `dx`: `n·c·h·w` (saturating; exact once checked).
    pub fn in_len(&self) -> usize {
        self.checked_len(self.h, self.w).unwrap_or(usize::MAX)
    }

    /// Elements of `y`, `dy` and `argmax`: `n·c·out_h·out_w` (saturating; exact once checked).
    pub fn out_len(&self) -> usize {
        self.checked_len(self.out_h(), self.out_w()).unwrap_or(usize::MAX)
    }

    fn checked_len(&self, h: usize, w: usize) -> Option<usize> {
        self.n.checked_mul(self.c)?.checked_mul(h)?.checked_mul(w)
    }

    /// Checks that an input-shaped slice (`x`, `dx`) has `n·c·h·w` elements.
    pub(crate) fn check_in_len(&self, name: &str, len: usize) -> Result<()> {
        check_len(
            || format!("{name} (n, c, h, w) = ({}, {}, {}, {})", self.n, self.c, self.h, self.w),
            self.in_len(),
            len,
        )
    }

    /// Checks that an output-shaped slice (`y`, `dy`, `argmax`) has `n·c·out_h·out_w` elements.
    pub(crate) fn check_out_len(&self, name: &str, len: usize) -> Result<()> {
        check_len(
            || {
                let (n, c, oh, ow) = (self.n, self.c, self.out_h(), self.out_w());
                format!("{name} (n, c, out_h, out_w) = ({n}, {c}, {oh}, {ow})")
            },
            self.out_len(),
            len,
        )
    }

    /// The geometry the fast paths iterate over (call after [`check`](Self::check)).
    pub(crate) fn geometry(&self) -> Geometry {
        Geometry {
            rows: Axis::new(self.h, self.kh, self.stride_h, self.pad_h, self.ceil_mode),
            cols: Axis::new(self.w, self.kw, self.stride_w, self.pad_w, self.ceil_mode),
            planes: self.n * self.c,
        }
    }
}

/// One axis of the pooling geometry: input size, kernel, stride, padding, output size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Axis {
    pub size: usize,
    pub k: usize,
    pub s: usize,
    pub p: usize,
    pub out: usize,
}

impl Axis {
    /// Output size by PyTorch's formula; 0 for shapes `check` rejects (never panics).
    fn new(size: usize, k: usize, s: usize, p: usize, ceil_mode: bool) -> Self {
        let padded = p.checked_mul(2).and_then(|pads| size.checked_add(pads));
        let out = match padded.and_then(|padded| padded.checked_sub(k)) {
            Some(span) if s > 0 && size > 0 => {
                if ceil_mode {
                    // Round up, but drop a last window that would start in the right padding.
                    let out = span.div_ceil(s).saturating_add(1);
                    if (out - 1).saturating_mul(s) >= size.saturating_add(p) {
                        out - 1
                    } else {
                        out
                    }
                } else {
                    (span / s).saturating_add(1)
                }
            }
            _ => 0,
        };
        Self { size, k, s, p, out }
    }

    /// Input range `lo..hi` of window `o`, clipped to the input (never empty on a checked
    /// shape: the window starts before `size` and ends after 0 since `k > p`).
    #[inline]
    pub fn span(&self, o: usize) -> (usize, usize) {
        let start = o * self.s;
        (start.saturating_sub(self.p), (start + self.k - self.p).min(self.size))
    }

    /// Length of window `o` clipped to the padded input (`count_include_pad` divisor factor).
    /// In padded coordinates the window is `o·s .. o·s + k` and the padded input `0 .. size + 2p`.
    #[inline]
    pub fn padded_len(&self, o: usize) -> usize {
        let start = o * self.s;
        (start + self.k).min(self.size + 2 * self.p) - start
    }

    /// Outputs `lo..end` whose windows lie entirely inside the input (no clipping): window
    /// `o` is inside when `o·s >= p` and `o·s - p + k <= size`.
    fn inside(&self) -> (usize, usize) {
        let end = if self.size + self.p >= self.k {
            ((self.size + self.p - self.k) / self.s + 1).min(self.out)
        } else {
            0
        };
        (self.p.div_ceil(self.s).min(end), end)
    }

    /// Outputs `lo..hi` tiled exactly by the SIMD bodies of passes that must compute each
    /// output once (backwards add): `hi - lo` is a multiple of `LANES`, all windows inside
    /// the input. Outputs `0..lo` and `hi..out` (clipped windows, tail) are done one by one.
    pub fn block_range(&self) -> (usize, usize) {
        let (lo, end) = self.inside();
        (lo, lo + (end - lo) / LANES * LANES)
    }

    /// Outputs `lo..hi` covered by the SIMD bodies of passes that may compute an output twice
    /// (forwards: the same value is written again). All inside windows when there are at
    /// least `LANES` of them, else none; [`block_starts`] tiles them.
    pub fn overlapping_block_range(&self) -> (usize, usize) {
        let (lo, end) = self.inside();
        if end - lo >= LANES {
            (lo, end)
        } else {
            (lo, lo)
        }
    }
}

/// Starts of the `LANES`-wide blocks covering `lo..hi` (from
/// [`Axis::overlapping_block_range`]): every `LANES` outputs, the last block shifted left to
/// end at `hi` (overlapping its neighbour) instead of leaving a scalar tail.
pub(crate) fn block_starts(lo: usize, hi: usize) -> impl Iterator<Item = usize> {
    (lo..hi).step_by(LANES).map(move |o| o.min(hi - LANES))
}

/// The checked geometry of a pooling call: both axes and the plane sizes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub rows: Axis,
    pub cols: Axis,
    pub planes: usize,
}

impl Geometry {
    /// Elements of one input plane.
    pub fn in_plane(&self) -> usize {
        self.rows.size * self.cols.size
    }

    /// Elements of one output plane.
    pub fn out_plane(&self) -> usize {
        self.rows.out * self.cols.out
    }

    /// The divisor of average window `(oh, ow)`: the window clipped to the padded input when
    /// `count_include_pad`, otherwise the number of input elements it covers.
    #[inline]
    pub fn divisor(&self, oh: usize, ow: usize, count_include_pad: bool) -> f32 {
        let count = if count_include_pad {
            self.rows.padded_len(oh) * self.cols.padded_len(ow)
        } else {
            let ((r0, r1), (c0, c1)) = (self.rows.span(oh), self.cols.span(ow));
            (r1 - r0) * (c1 - c0)
        };
        count as f32
    }
}
