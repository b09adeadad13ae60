//! Direct convolution on AVX-512F, for stride 1 and dilation 1: the forward, and the weight
//! gradient ([`backward_weight_run`]).
//!
//! im2col + GEMM writes every input tap `kh·kw` times into a column matrix and reads it back;
//! for the small channel counts of a network's first layers (LeNet-5: 1 -> 6 channels, 5x5,
//! rows of 28 outputs) that copy costs more than the arithmetic. Here the image (one group)
//! is copied once into a zero-padded scratch `(c, h + 2·pad_h, w + 2·pad_w)`, and each strip
//! of 16 or 32 outputs of one output row, for up to 12 output channels at a time, is summed
//! in registers: for every tap `(ci, ki, kj)` one load of the padded row (shifted by `kj`)
//! and one FMA per output channel with the broadcast weight.
//!
//! ```text
//! y[co, oy, ox0 + l] = bias[co] + Σ_(ci, ki, kj) w[co, ci, ki, kj] · xpad[ci, oy + ki, ox0 + kj + l]
//! ```
//!
//! Lanes past `out_w` are computed from whatever follows in the scratch (the next padded row,
//! or [`SLACK`] floats at the end) and masked off when stored.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::rows::lane_range;
use super::shape::Conv2dShape;
use super::tuning::{DIRECT_MIN_OUT_W, FEW_IN_CHANNELS, GRAD_MAX_CHANNELS};
#[cfg(target_arch = "x86_64")]
use crate::gemm::activate_avx512;
use crate::gemm::Activation;
use crate::isa::Isa;

/// Floats after the padded image, so that the widest strip (32 lanes) starting at the last
/// output column still reads inside the scratch.
const SLACK: usize = 32;

/// Output channels summed at once: 16 rows of one vector, or 12 rows of two vectors (24 of
/// the 32 zmm registers), so each loaded input vector feeds many FMAs.
const CHANNELS: usize = 16;

/// [`CHANNELS`] for strips of two vectors.
const CHANNELS_WIDE: usize = 12;

/// Whether [`forward_group`] computes the forward of `shape` on `isa`: AVX-512 and
/// [`computes`].
pub(super) fn applies(shape: &Conv2dShape, isa: Isa) -> bool {
    isa == Isa::Avx512 && computes(shape)
}

/// Whether the direct loops can run `shape` at all: stride 1, dilation 1, not a pointwise
/// convolution (those are a plain GEMM).
fn loops_fit(shape: &Conv2dShape) -> bool {
    shape.stride_h == 1
        && shape.stride_w == 1
        && shape.dilation_h == 1
        && shape.dilation_w == 1
        && !shape.is_pointwise()
}

/// Whether the direct loops compute the forward of `shape` (on a CPU with AVX-512F): where
/// [`loops_fit`], and either output rows wider than [`DIRECT_MIN_OUT_W`] (strips of two
/// vectors: 24 sums per pair of loaded vectors) or at most [`FEW_IN_CHANNELS`] input
/// channels per group (a first layer, where im2col's copies cost more than its arithmetic).
/// Narrower rows of more channels take im2col + GEMM: one vector per strip, re-reading a
/// weight block that leaves L1, is slower there.
fn computes(shape: &Conv2dShape) -> bool {
    loops_fit(shape)
        && (shape.out_w() >= DIRECT_MIN_OUT_W || shape.c_in / shape.groups.max(1) <= FEW_IN_CHANNELS)
}

/// Whether [`backward_weight_run`] computes the weight gradient of `shape` on `isa`:
/// AVX-512 and [`computes_weight_gradient`].
pub(super) fn weight_gradient_applies(shape: &Conv2dShape, isa: Isa) -> bool {
    isa == Isa::Avx512 && computes_weight_gradient(shape)
}

/// Whether the direct loops compute the weight gradient of `shape` (on a CPU with AVX-512F):
/// where [`loops_fit`], with at most [`GRAD_MAX_CHANNELS`] output and [`FEW_IN_CHANNELS`]
/// input channels per group. There the weight gradient is a thin GEMM (`m = c_out/groups`)
/// that im2col and the transposed packing of the columns dominate; past it, the direct
/// loops' re-reading of every output gradient once per `(ci, ki)` costs more.
fn computes_weight_gradient(shape: &Conv2dShape) -> bool {
    let groups = shape.groups.max(1);
    loops_fit(shape) && shape.c_out / groups <= GRAD_MAX_CHANNELS && shape.c_in / groups <= FEW_IN_CHANNELS
}

/// Scratch floats [`forward_group`] needs: one zero-padded group image plus [`SLACK`].
pub(super) fn scratch_len(shape: &Conv2dShape) -> usize {
    let (hp, wp) = shape.padded_dims();
    (shape.c_in / shape.groups.max(1)).saturating_mul(hp).saturating_mul(wp).saturating_add(SLACK)
}

/// Workspace floats of one image's forward slot on the direct path: the padded image, and
/// at least a column buffer (so the slot layout is the im2col path's).
pub(super) fn forward_slot_len(shape: &Conv2dShape) -> usize {
    shape.col_len().max(scratch_len(shape))
}

/// Forward of one group of one image: `y (c_out/groups, out_h, out_w)` **overwritten** with
/// `activation(weight (c_out/groups, c_in/groups·kh·kw) × taps(x) + bias)`, for
/// `x (c_in/groups, h, w)`; the activation is applied in registers before the store.
/// `scratch` holds at least [`scratch_len`] floats (contents ignored).
///
/// Panics on slices of other lengths (the caller checked the shape and the slices), and
/// unless [`applies`] holds for `shape` on AVX-512 and the CPU has it.
pub(super) fn forward_group(
    shape: &Conv2dShape,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
    y: &mut [f32],
    scratch: &mut [f32],
) {
    assert!(
        computes(shape) && Isa::Avx512.is_supported(),
        "direct convolution on an unsupported shape or CPU"
    );
    let (cg, cog) = (shape.c_in / shape.groups, shape.c_out / shape.groups);
    let (hp, wp) = shape.padded_dims();
    let (out_h, out_w) = (shape.out_h(), shape.out_w());
    let taps = cg * shape.kh * shape.kw;
    assert!(
        x.len() == cg * shape.h * shape.w
            && weight.len() == cog * taps
            && bias.is_none_or(|b| b.len() == cog)
            && y.len() == cog * out_h * out_w
            && scratch.len() >= scratch_len(shape),
        "direct convolution slices do not match the shape"
    );
    // Stride 1 and dilation 1: the padded image is exactly as tall and wide as the windows
    // sweep, `hp = out_h + kh - 1` and `wp = out_w + kw - 1`, which the bounds below rely on.
    debug_assert!(hp == out_h + shape.kh - 1 && wp == out_w + shape.kw - 1);
    let padded = &mut scratch[..cg * hp * wp + SLACK];
    pad_image(shape, x, padded, hp, wp);
    let geometry = Geometry { plane: hp * wp, wp, cg, kh: shape.kh, kw: shape.kw, out_h, out_w, activation };
    // Blocks of equal size (16 channels as one block, not 12 + 4: a thin block would be
    // bound by its loads).
    let most = if out_w <= 16 { CHANNELS } else { CHANNELS_WIDE };
    let per_block = cog.div_ceil(cog.div_ceil(most));
    for co0 in (0..cog).step_by(per_block) {
        let rows = per_block.min(cog - co0);
        let mut row_bias = [0.0f32; CHANNELS];
        if let Some(bias) = bias {
            row_bias[..rows].copy_from_slice(&bias[co0..co0 + rows]);
        }
        let w_block = &weight[co0 * taps..(co0 + rows) * taps];
        let y_block = &mut y[co0 * out_h * out_w..(co0 + rows) * out_h * out_w];
        // SAFETY: the CPU has AVX-512F (asserted above); the slices have the lengths
        // asserted above, which is what `channels_avx512` relies on.
        unsafe { channels_avx512(&geometry, padded, w_block, &row_bias, y_block, rows) };
    }
}

/// `dst (c, hp, wp)` = `x (c, h, w)` surrounded by `pad` zeros, then [`SLACK`] zeros.
fn pad_image(shape: &Conv2dShape, x: &[f32], dst: &mut [f32], hp: usize, wp: usize) {
    let (h, w, ph, pw) = (shape.h, shape.w, shape.pad_h, shape.pad_w);
    let (image, slack) = dst.split_at_mut(dst.len() - SLACK);
    slack.fill(0.0);
    if ph == 0 && pw == 0 {
        image.copy_from_slice(x);
        return;
    }
    for (plane, xc) in image.chunks_exact_mut(hp * wp).zip(x.chunks_exact(h * w)) {
        plane[..ph * wp].fill(0.0);
        plane[(ph + h) * wp..].fill(0.0);
        for (row, xrow) in plane[ph * wp..(ph + h) * wp].chunks_exact_mut(wp).zip(xc.chunks_exact(w)) {
            row[..pw].fill(0.0);
            row[pw..pw + w].copy_from_slice(xrow);
            row[pw + w..].fill(0.0);
        }
    }
}

/// The sizes the strip loops need.
struct Geometry {
    /// `hp·wp`, one padded channel.
    plane: usize,
    wp: usize,
    cg: usize,
    kh: usize,
    kw: usize,
    out_h: usize,
    out_w: usize,
    /// Applied to each strip before it is stored.
    activation: Activation,
}

/// All strips of `rows` output channels: at most [`CHANNELS`] for outputs up to 16 wide (one
/// vector per strip), at most [`CHANNELS_WIDE`] otherwise (two).
///
/// # Safety
/// The CPU has AVX-512F; `padded` holds `cg·plane + SLACK` floats laid out as
/// [`pad_image`] writes them, `weight` holds `rows` rows of `cg·kh·kw` taps and `y` holds
/// `rows` planes of `out_h·out_w`, with `plane = (out_h + kh - 1)·wp` and
/// `wp = out_w + kw - 1`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn channels_avx512(
    g: &Geometry,
    padded: &[f32],
    weight: &[f32],
    bias: &[f32; CHANNELS],
    y: &mut [f32],
    rows: usize,
) {
    macro_rules! by_rows {
        (narrow: $($n:literal)*; wide: $($w:literal)*) => {
            match (rows, g.out_w <= 16) {
                $(($n, true) => strips::<$n, 1>(g, padded, weight, bias, y),)*
                $(($w, false) => strips::<$w, 2>(g, padded, weight, bias, y),)*
                _ => unreachable!("{rows} output channels: at most {CHANNELS} (or {CHANNELS_WIDE}) at once"),
            }
        };
    }
    // SAFETY: forwarded from this function's contract.
    unsafe { by_rows!(narrow: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; wide: 1 2 3 4 5 6 7 8 9 10 11 12) }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn channels_avx512(_: &Geometry, _: &[f32], _: &[f32], _: &[f32; CHANNELS], _: &mut [f32], _: usize) {
    unreachable!("AVX-512 is never selected off x86_64")
}

/// `R` output channels, strips of `V` vectors (16·V outputs of one output row).
///
/// # Safety
/// As [`channels_avx512`], with `rows = R`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn strips<const R: usize, const V: usize>(
    g: &Geometry,
    padded: &[f32],
    weight: &[f32],
    bias: &[f32; CHANNELS],
    y: &mut [f32],
) {
    let taps = g.cg * g.kh * g.kw;
    let out_plane = g.out_h * g.out_w;
    let (xp, wt, yp) = (padded.as_ptr(), weight.as_ptr(), y.as_mut_ptr());
    for oy in 0..g.out_h {
        for ox0 in (0..g.out_w).step_by(16 * V) {
            let mut acc = [[_mm512_setzero_ps(); V]; R];
            for (r, acc_row) in acc.iter_mut().enumerate() {
                *acc_row = [_mm512_set1_ps(bias[r]); V];
            }
            for ci in 0..g.cg {
                for ki in 0..g.kh {
                    let row = ci * g.plane + (oy + ki) * g.wp + ox0;
                    let w_tap = (ci * g.kh + ki) * g.kw;
                    for kj in 0..g.kw {
                        // SAFETY: lanes `l < 16·V` read `padded[row + kj + l]`. With
                        // `oy + ki <= out_h + kh - 2` (the last padded row) and
                        // `ox0 + kj + l <= out_w - 1 + kw - 1 + 16·V - 1 = wp + 16·V - 2`, the
                        // index is below `cg·plane + 16·V - 1 <= cg·plane + SLACK`, the length
                        // of `padded`. Weights: `r·taps + w_tap + kj < R·taps = weight.len()`.
                        unsafe {
                            let mut xv = [_mm512_setzero_ps(); V];
                            for (v, x_v) in xv.iter_mut().enumerate() {
                                *x_v = _mm512_loadu_ps(xp.add(row + kj + 16 * v));
                            }
                            for (r, acc_row) in acc.iter_mut().enumerate() {
                                let wb = _mm512_set1_ps(*wt.add(r * taps + w_tap + kj));
                                for (a, &x_v) in acc_row.iter_mut().zip(&xv) {
                                    *a = _mm512_fmadd_ps(wb, x_v, *a);
                                }
                            }
                        }
                    }
                }
            }
            for (r, acc_row) in acc.iter().enumerate() {
                for (v, &a) in acc_row.iter().enumerate() {
                    let first = ox0 + 16 * v;
                    if first >= g.out_w {
                        break;
                    }
                    let mask = lane_range(0, g.out_w - first);
                    // SAFETY: the mask enables `y[r·out_plane + oy·out_w + first + l]` for
                    // `first + l < out_w`, inside channel r's plane, and `r < R = rows`.
                    unsafe {
                        let out = activate_avx512(a, g.activation);
                        _mm512_mask_storeu_ps(yp.add(r * out_plane + oy * g.out_w + first), mask, out)
                    };
                }
            }
        }
    }
}

/// Output channels and kernel columns of one register block of [`backward_weight_run`]:
/// `4 x 5` partial sums of 16 lanes, fed by 4 + 5 loads per 20 FMAs.
const GRAD_CHANNELS: usize = 4;
const GRAD_TAPS: usize = 5;

/// Weight gradient of a run of images, accumulated: `dweight (c_out, c_in/groups, kh, kw)
/// += Σ_images Σ_(oy, ox) dy[co, oy, ox] · x[ci, oy + ki - pad_h, ox + kj - pad_w]` (zero
/// outside the image), for `x (images, c_in, h, w)` and `dy (images, c_out, out_h, out_w)`.
///
/// For each `(group, ci, ki)`, block of 4 output channels and 5 kernel columns, 20 vectors of
/// 16 partial sums run over every output row of every image of the run (input rows outside
/// the image skipped, input columns outside it masked off the loads), then each is summed
/// across its lanes once and added to `dweight`: a fixed order, so the same bits on every
/// run. No im2col and no scratch.
///
/// Panics unless [`weight_gradient_applies`] holds for `shape` on AVX-512, the CPU has it,
/// and the slices hold whole images.
pub(super) fn backward_weight_run(shape: &Conv2dShape, x: &[f32], dy: &[f32], dweight: &mut [f32]) {
    assert!(
        computes_weight_gradient(shape) && Isa::Avx512.is_supported(),
        "direct weight gradient on an unsupported shape or CPU"
    );
    let (x_image, dy_image) = (shape.c_in * shape.h * shape.w, shape.c_out * shape.out_h() * shape.out_w());
    let images = x.len() / x_image.max(1);
    assert!(
        x.len() == images * x_image && dy.len() == images * dy_image && dweight.len() == shape.weight_len(),
        "direct weight gradient slices do not match the shape"
    );
    // SAFETY: the CPU has AVX-512F (asserted above);
    // the lengths were checked above.
    unsafe { backward_weight_avx512(shape, images, x, dy, dweight) };
}

/// # Safety
/// The CPU has AVX-512F; `x` and `dy` hold `images` whole images of `shape`, `dweight` its
/// weight.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn backward_weight_avx512(
    shape: &Conv2dShape,
    images: usize,
    x: &[f32],
    dy: &[f32],
    dweight: &mut [f32],
) {
    let (cg, cog) = (shape.c_in / shape.groups, shape.c_out / shape.groups);
    for g in 0..shape.groups {
        for ci in 0..cg {
            for ki in 0..shape.kh {
                for co0 in (0..cog).step_by(GRAD_CHANNELS) {
                    for kj0 in (0..shape.kw).step_by(GRAD_TAPS) {
                        let block = GradBlock { g, ci: g * cg + ci, ki, co: g * cog + co0, kj: kj0 };
                        let rows = GRAD_CHANNELS.min(cog - co0);
                        let taps = GRAD_TAPS.min(shape.kw - kj0);
                        macro_rules! by_size {
                            ($(($r:literal, $t:literal))*) => {
                                match (rows, taps) {
                                    // SAFETY: forwarded from this function's contract; the block
                                    // lies inside the shape (checked by its construction above).
                                    $(($r, $t) => unsafe {
                                        grad_block::<$r, $t>(shape, images, x, dy, dweight, &block)
                                    },)*
                                    _ => unreachable!("block of {rows} x {taps}"),
                                }
                            };
                        }
                        by_size!((1, 1)(1, 2)(1, 3)(1, 4)(1, 5)(2, 1)(2, 2)(2, 3)(2, 4)(2, 5)(3, 1)(3, 2)(
                            3, 3
                        )(3, 4)(3, 5)(4, 1)(4, 2)(4, 3)(4, 4)(4, 5));
                    }
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn backward_weight_avx512(_: &Conv2dShape, _: usize, _: &[f32], _: &[f32], _: &mut [f32]) {
    unreachable!("AVX-512 is never selected off x86_64")
}

/// Where one register block sits: group `g`, input channel `ci` (absolute), kernel row `ki`,
/// first output channel `co` (absolute) and first kernel column `kj`.
struct GradBlock {
    g: usize,
    ci: usize,
    ki: usize,
    co: usize,
    kj: usize,
}

/// `R` output channels x `T` kernel columns of one `(ci, ki)`.
///
/// # Safety
/// As [`backward_weight_avx512`], with `co + R <= (g + 1)·c_out/groups` and
/// `kj + T <= kw`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn grad_block<const R: usize, const T: usize>(
    shape: &Conv2dShape,
    images: usize,
    x: &[f32],
    dy: &[f32],
    dweight: &mut [f32],
    b: &GradBlock,
) {
    let (h, w, out_h, out_w) = (shape.h, shape.w, shape.out_h(), shape.out_w());
    let (x_image, plane_out) = (shape.c_in * h * w, out_h * out_w);
    let dy_image = shape.c_out * plane_out;
    let mut acc = [[_mm512_setzero_ps(); T]; R];
    for ox0 in (0..out_w).step_by(16) {
        // Lanes `ox0 + l < out_w` of dy; of x, those whose input column
        // `ox0 + l + kj + t - pad_w` lies in `0..w` (the masks do not depend on the row).
        let dy_mask = lane_range(0, out_w - ox0);
        let mut x_masks = [0u16; T];
        for (t, mask) in x_masks.iter_mut().enumerate() {
            let shift = (ox0 + b.kj + t) as isize - shape.pad_w as isize;
            let lo = (-shift).clamp(0, 16) as usize;
            let hi = (w as isize - shift).clamp(0, 16) as usize;
            *mask = lane_range(lo, hi) & dy_mask;
        }
        for image in 0..images {
            for oy in 0..out_h {
                let Some(iy) = (oy + b.ki).checked_sub(shape.pad_h).filter(|&iy| iy < h) else { continue };
                let dy_row = image * dy_image + oy * out_w + ox0;
                // Column `ox0 + kj + t - pad_w` of input row `iy`; may point before the row
                // (only through masked-off lanes): formed with wrapping arithmetic.
                let x_row = image * x_image + (b.ci * h + iy) * w;
                // SAFETY: dy lanes `l` with `ox0 + l < out_w` read dy[image, co + r, oy, ox0 + l]
                // (co + r < c_out). x lanes are enabled only where the input column is in
                // `0..w`, so they read x[image, ci, iy, col] inside the image. Masked-off lanes
                // are neither read nor able to fault.
                unsafe {
                    let mut dyv = [_mm512_setzero_ps(); R];
                    for (r, v) in dyv.iter_mut().enumerate() {
                        *v = _mm512_maskz_loadu_ps(dy_mask, dy.as_ptr().add(dy_row + (b.co + r) * plane_out));
                    }
                    for (t, &mask) in x_masks.iter().enumerate() {
                        let column = (ox0 + b.kj + t) as isize - shape.pad_w as isize;
                        let ptr = x.as_ptr().wrapping_add(x_row).wrapping_offset(column);
                        let xv = _mm512_maskz_loadu_ps(mask, ptr);
                        for (acc_row, &d) in acc.iter_mut().zip(&dyv) {
                            acc_row[t] = _mm512_fmadd_ps(d, xv, acc_row[t]);
                        }
                    }
                }
            }
        }
    }
    let taps = (shape.c_in / shape.groups) * shape.kh * shape.kw;
    let ci_in_group = b.ci - b.g * (shape.c_in / shape.groups);
    for (r, acc_row) in acc.iter().enumerate() {
        for (t, &a) in acc_row.iter().enumerate() {
            let index = (b.co + r) * taps + (ci_in_group * shape.kh + b.ki) * shape.kw + b.kj + t;
            dweight[index] += _mm512_reduce_add_ps(a);
        }
    }
}
