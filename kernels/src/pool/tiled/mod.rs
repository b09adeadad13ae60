//! The tiled case of max and average pool: square `k x k` windows with stride `k` and no
//! padding, none clipped (`kh = kw = stride_h = stride_w = k`, `pad = 0`, and with
//! `ceil_mode` no window past the input), for `k` = 2 or 3 — LeNet's and most CNNs' pools.
//!
//! The windows then tile the top-left `k·out_h x k·out_w` corner of each plane without
//! overlap: output `(oh, ow)` reads input rows `k·oh + r`, columns `k·ow + c` (`r, c < k`).
//! No per-window clipping is needed, and in the backward passes every input element belongs
//! to at most one window, so the bodies write `dx` once, directly (no zero fill then
//! scatter): the elements under the windows get their gradient (or 0), the uncovered right
//! columns and bottom rows 0.
//!
//! Each kernel gives the bits of [`reference`](super::reference): max pool only compares and
//! copies; average pool adds in window order starting from `0.0` and divides by `k²`, and the
//! backward passes write `0.0 + g` (the reference's zero fill plus one add: `-0.0` becomes
//! `+0.0`).
//!
//! Bodies per path ([`PoolPath`], planned per instruction set): AVX-512F and AVX2 for `k = 2`
//! (16 and 8 outputs per vector, see `Units`), portable Rust for `k = 2, 3` (the
//! compiler's auto-vectorisation for the build target) and for `k = 3` on every ISA; max
//! pool backward without a SIMD body keeps the general zero fill and scatter.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod portable;

use super::path::PoolPath;
use super::Pool2dShape;

/// The geometry of a tiled pool (see the [module docs](self)).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tiles {
    /// Window size and stride on both axes (2 or 3).
    k: usize,
    h: usize,
    w: usize,
    out_h: usize,
    out_w: usize,
}

impl Tiles {
    /// The tiled geometry of a checked `shape`, or `None` when its windows are not square
    /// with stride = size, reach into padding or get clipped, or `k` is not 2 or 3.
    pub(crate) fn new(shape: &Pool2dShape) -> Option<Self> {
        let k = shape.kh;
        let (out_h, out_w) = (shape.out_h(), shape.out_w());
        let tiled = (k == 2 || k == 3)
            && (shape.kw, shape.stride_h, shape.stride_w) == (k, k, k)
            && (shape.pad_h, shape.pad_w) == (0, 0)
            && k * out_h <= shape.h
            && k * out_w <= shape.w;
        tiled.then_some(Self { k, h: shape.h, w: shape.w, out_h, out_w })
    }

    /// Window size and stride (2 or 3).
    pub(crate) fn k(&self) -> usize {
        self.k
    }

    fn in_plane(&self) -> usize {
        self.h * self.w
    }

    fn out_plane(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Max pool forward on whole planes on `path` (the plan's, a tiled one): `x` is
    /// `(planes, h, w)`, `y` and `argmax` `(planes, out_h, out_w)`, overwritten.
    pub(crate) fn max_forward(&self, path: PoolPath, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
        assert_eq!(argmax.len(), y.len());
        match (path, self.k) {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the plan gives this path only on AVX-512, which the CPU has; `units`
            // asserts that the slices hold the whole planes it covers (and `argmax` is as
            // long as `y`, asserted above).
            (PoolPath::TiledAvx512, 2) => unsafe {
                avx512::max_forward(self.units(x.len(), y.len(), 16), self.w, x, y, argmax)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, for AVX2.
            (PoolPath::TiledAvx2, 2) => unsafe {
                avx2::max_forward(self.units(x.len(), y.len(), 8), self.w, x, y, argmax)
            },
            (_, 2) => portable::max_forward::<2>(self, x, y, argmax),
            _ => portable::max_forward::<3>(self, x, y, argmax),
        }
    }

    /// Max pool backward on whole planes by the SIMD bodies (`k = 2`): `dy`, `argmax` are
    /// `(planes, out_h, out_w)`, `dx` `(planes, h, w)` is overwritten with `dy[o] + 0.0` at
    /// `argmax[o]` and zeros elsewhere, on `path` (the plan's). Returns false when it did
    /// not write `dx`: a path without a body (see [`portable`]), or an index outside its
    /// window (`dx` is then unspecified). The caller then zero fills and scatters, which also adds such indices
    /// where they point.
    #[must_use]
    pub(crate) fn max_backward(&self, path: PoolPath, dy: &[f32], argmax: &[u32], dx: &mut [f32]) -> bool {
        assert_eq!(argmax.len(), dy.len());
        let written = match (path, self.k) {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `max_forward`.
            (PoolPath::TiledAvx512, 2) => unsafe {
                avx512::max_backward(self.units(dx.len(), dy.len(), 16), self.w, dy, argmax, dx)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `max_forward`.
            (PoolPath::TiledAvx2, 2) => unsafe {
                avx2::max_backward(self.units(dx.len(), dy.len(), 8), self.w, dy, argmax, dx)
            },
            _ => false,
        };
        written && {
            self.zero_uncovered(dx);
            true
        }
    }

    /// Average pool forward on whole planes: `x` is `(planes, h, w)`, `y`
    /// `(planes, out_h, out_w)` overwritten with each window's sum (from `0.0`, in window
    /// order) divided by `k²`.
    pub(crate) fn avg_forward(&self, path: PoolPath, x: &[f32], y: &mut [f32]) {
        match (path, self.k) {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `max_forward`.
            (PoolPath::TiledAvx512, 2) => unsafe {
                avx512::avg_forward(self.units(x.len(), y.len(), 16), self.w, x, y)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `max_forward`.
            (PoolPath::TiledAvx2, 2) => unsafe {
                avx2::avg_forward(self.units(x.len(), y.len(), 8), self.w, x, y)
            },
            (_, 2) => portable::avg_forward::<2>(self, x, y),
            _ => portable::avg_forward::<3>(self, x, y),
        }
    }

    /// Average pool backward on whole planes: `dy` is `(planes, out_h, out_w)`, `dx`
    /// `(planes, h, w)` overwritten with `dy[o] / k² + 0.0` over window `o`, zeros elsewhere.
    pub(crate) fn avg_backward(&self, path: PoolPath, dy: &[f32], dx: &mut [f32]) {
        match (path, self.k) {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `max_forward`.
            (PoolPath::TiledAvx512, 2) => unsafe {
                avx512::avg_backward(self.units(dx.len(), dy.len(), 16), self.w, dy, dx)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `max_forward`.
            (PoolPath::TiledAvx2, 2) => unsafe {
                avx2::avg_backward(self.units(dx.len(), dy.len(), 8), self.w, dy, dx)
            },
            (_, 2) => portable::avg_backward::<2>(self, dy, dx),
            _ => portable::avg_backward::<3>(self, dy, dx),
        }
        self.zero_uncovered(dx);
    }

    /// Zeros the input elements no window covers: columns `k·out_w..w` of the covered rows
    /// and rows `k·out_h..h`, in every plane of `dx`.
    fn zero_uncovered(&self, dx: &mut [f32]) {
        let (covered_rows, covered_cols) = (self.k * self.out_h, self.k * self.out_w);
        if (covered_rows, covered_cols) == (self.h, self.w) {
            return;
        }
        for plane in dx.chunks_exact_mut(self.in_plane()) {
            let (top, bottom) = plane.split_at_mut(covered_rows * self.w);
            top.chunks_exact_mut(self.w).for_each(|row| row[covered_cols..].fill(0.0));
            bottom.fill(0.0);
        }
    }

    /// The vectors of outputs for a `k = 2` SIMD body of `lanes` lanes over whole planes:
    /// those of an input-shaped slice of `len` elements, after asserting that it and the
    /// output-shaped `out_len` hold the same whole number of planes (the bounds every body's
    /// `unsafe` relies on; the public kernels checked them).
    #[cfg(target_arch = "x86_64")]
    fn units(&self, len: usize, out_len: usize, lanes: usize) -> Units {
        let planes = len / self.in_plane();
        assert!(self.k == 2 && len == planes * self.in_plane() && out_len == planes * self.out_plane());
        Units {
            lanes,
            h: self.h,
            w: self.w,
            out_h: self.out_h,
            out_w: self.out_w,
            rows_left: planes * self.out_h,
            x_row: 0,
            plane_start: 0,
            oh: 0,
            out: 0,
            col: 0,
        }
    }
}

/// Up to `lanes` consecutive outputs of a 2x2 tiled pool, computed as one vector.
///
/// The lanes are split at a fixed `split` (per call): the lower `split` lanes read their two
/// window rows from `x_lo` (and `x_lo + w`), the upper lanes from `x_hi` (and `x_hi + w`);
/// each part is one vector load per window row (`lo_len`, `hi_len` floats, masked), and a
/// two-source permute sends even columns and odd columns to the output lanes. Two layouts:
/// - rows of more than `lanes / 2` outputs (LeNet's 14): `split = lanes / 2`, a unit is a
///   piece of one output row (`x_hi = x_lo + lanes`), the last piece of a row shorter;
/// - rows of at most `lanes / 2` outputs (LeNet's 5): `split = out_w`, a unit is two
///   consecutive output rows — contiguous in `y` even across planes — the first in the
///   lower lanes and the second (if any) in the upper ones, so the lanes stay mostly full.
///
/// Argmax indices are plane-relative: `base_lo` (`base_hi`) is the flat index of the
/// element at `x_lo` (`x_hi`) in its plane, lane `j`'s window starts at
/// `base + 2·(j - part start)`.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unit {
    x_lo: usize,
    x_hi: usize,
    lo_len: usize,
    hi_len: usize,
    base_lo: u32,
    base_hi: u32,
    /// Offset of the first output in `y`, `dy`, `argmax`.
    out: usize,
    /// Outputs in the unit (`<= lanes`).
    n: usize,
}

/// The [`Unit`]s covering the output rows of whole planes, in output order.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone)]
pub(crate) struct Units {
    lanes: usize,
    h: usize,
    w: usize,
    out_h: usize,
    out_w: usize,
    /// Output rows not yet (fully) covered, the current one included.
    rows_left: usize,
    /// Offset in `x` of the current output row's top input row, and of its plane.
    x_row: usize,
    plane_start: usize,
    /// The current output row within its plane, and its first output's offset.
    oh: usize,
    out: usize,
    /// The next output column of the current row (rows split into pieces).
    col: usize,
}

#[cfg(target_arch = "x86_64")]
impl Units {
    /// The lane where the upper part of every unit starts (see [`Unit`]).
    #[inline]
    fn split(&self) -> usize {
        if self.out_w <= self.lanes / 2 {
            self.out_w
        } else {
            self.lanes / 2
        }
    }

    /// The current output row's top input row (offset in `x`, plane-relative index) and its
    /// first output's offset; moves on to the next row.
    #[inline]
    fn next_row(&mut self) -> (usize, usize, usize) {
        let row = (self.x_row, 2 * self.oh * self.w, self.out);
        self.rows_left -= 1;
        self.out += self.out_w;
        self.oh += 1;
        self.x_row += 2 * self.w;
        if self.oh == self.out_h {
            self.oh = 0;
            self.plane_start += self.h * self.w;
            self.x_row = self.plane_start;
        }
        row
    }
}

#[cfg(target_arch = "x86_64")]
impl Iterator for Units {
    type Item = Unit;

    // Inlined into the SIMD bodies, whose loop it drives.
    #[inline]
    fn next(&mut self) -> Option<Unit> {
        if self.rows_left == 0 {
            return None;
        }
        // Indices fit u32: they are below h·w <= 2^32 (`Pool2dShape::check`).
        if self.out_w <= self.lanes / 2 {
            let (x_lo, base_lo, out) = self.next_row();
            let len = 2 * self.out_w;
            let (x_hi, base_hi, hi_len) = if self.rows_left > 0 {
                let (x_hi, base_hi, _) = self.next_row();
                (x_hi, base_hi, len)
            } else {
                (x_lo, base_lo, 0)
            };
            let n = if hi_len > 0 { 2 * self.out_w } else { self.out_w };
            Some(Unit {
                x_lo,
                x_hi,
                lo_len: len,
                hi_len,
                base_lo: base_lo as u32,
                base_hi: base_hi as u32,
                out,
                n,
            })
        } else {
            let o = self.col;
            let n = (self.out_w - o).min(self.lanes);
            let (x_row, base, out) = (self.x_row + 2 * o, 2 * self.oh * self.w + 2 * o, self.out + o);
            let unit = Unit {
                x_lo: x_row,
                x_hi: x_row + self.lanes,
                lo_len: (2 * n).min(self.lanes),
                hi_len: (2 * n).saturating_sub(self.lanes),
                base_lo: base as u32,
                base_hi: (base + self.lanes) as u32,
                out,
                n,
            };
            self.col += n;
            if self.col == self.out_w {
                self.col = 0;
                self.next_row();
            }
            Some(unit)
        }
    }
}
