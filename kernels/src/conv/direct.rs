//! Direct convolution for stride 1 and dilation 1: the forward on AVX-512F and on AVX2 + FMA
//! (one strip body, generic over the vector, [`ConvVector`]), and the weight gradient on
//! AVX-512F ([`backward_weight_run`]).
//!
//! im2col + GEMM writes every input tap `kh·kw` times into a column matrix and reads it back;
//! for the small channel counts of a network's first layers (LeNet-5: 1 -> 6 channels, 5x5,
//! rows of 28 outputs) that copy costs more than the arithmetic. Here the image (one group)
//! is copied once into a zero-padded scratch `(c, h + 2·pad_h, w + 2·pad_w)`, and each strip
//! of outputs (one vector, or three on AVX-512 and two on AVX2), for a block of output
//! channels, is summed in registers: for every tap `(ci, ki, kj)` one load of the padded
//! input per vector and one FMA per output channel and vector with the broadcast weight.
//!
//! ```text
//! y[co, oy, ox0 + l] = bias[co] + Σ_(ci, ki, kj) w[co, ci, ki, kj] · xpad[ci, oy + ki, ox0 + kj + l]
//! ```
//!
//! - A strip is consecutive positions `q = oy·wp + ox` of the padded grid, within one output
//!   row or, where that computes fewer lanes, across rows ([`Strips`]). Lanes that are not
//!   outputs (the padding columns, or past the plane into [`SLACK`]) are computed from
//!   whatever the scratch holds there and masked off when stored.
//! - The input channels are summed in sweeps over all the strips, each sweep's weights within
//!   [`DIRECT_WEIGHT_BLOCK_FLOATS`] (so they stay in L1), the partial sums kept in the scratch
//!   between sweeps.
//! - On AVX-512 a block's weights are laid out tap by tap, so one pointer serves every
//!   broadcast; AVX2 reads them row by row in place (faster there, `docs/tuning.md`).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::rows::lane_range;
use super::shape::Conv2dShape;
use super::tuning::{
    DIRECT_MIN_OUT_W, DIRECT_MIN_OUT_W_AVX2, DIRECT_WEIGHT_BLOCK_FLOATS, FEW_IN_CHANNELS, GRAD_MAX_CHANNELS,
};
use super::vector::ConvVector;
#[cfg(target_arch = "x86_64")]
use super::vector::{Ymm, Zmm};
use crate::gemm::Activation;
use crate::isa::Isa;

/// Zeros after the padded image: a strip (at most 48 lanes) starting at the last output
/// reads at most 47 floats past the image ([`Strips`]).
const SLACK: usize = 48;

/// Most output channels summed at once, on any instruction set (the bias buffer's length).
const CHANNELS: usize = 16;

/// The register blocks of the strip loops on one instruction set: output channels summed at
/// once for strips of one vector and for wide strips, so that each loaded input vector feeds many
/// FMAs and the sums, the loads and the broadcast weight fit the vector registers.
#[derive(Clone, Copy)]
struct Blocks {
    /// Outputs per vector.
    lanes: usize,
    /// Output channels of a strip of one vector.
    narrow: usize,
    /// Vectors of a wide strip.
    wide_vectors: usize,
    /// Output channels of a wide strip.
    wide: usize,
    /// Narrowest output rows the direct loops take on any channel count.
    min_out_w: usize,
}

impl Blocks {
    /// Lanes of a wide strip.
    fn wide_lanes(self) -> usize {
        self.lanes * self.wide_vectors
    }
}

/// The strip blocks of `isa`, if it has direct loops: AVX-512's 32 zmm registers hold 16 x 1
/// or 8 x 3 sums (3 loads and 8 broadcasts per 24 FMAs), AVX2's 16 ymm registers 12 x 1 or
/// 6 x 2.
fn blocks(isa: Isa) -> Option<Blocks> {
    match isa {
        Isa::Avx512 => Some(Blocks {
            lanes: 16,
            narrow: CHANNELS,
            wide_vectors: 3,
            wide: 8,
            min_out_w: DIRECT_MIN_OUT_W,
        }),
        Isa::Avx2 => {
            Some(Blocks { lanes: 8, narrow: 12, wide_vectors: 2, wide: 6, min_out_w: DIRECT_MIN_OUT_W_AVX2 })
        }
        Isa::Portable => None,
    }
}

/// Whether [`forward_group`] computes the forward of `shape` on `isa`: an instruction set
/// with direct loops, and [`computes`].
pub(super) fn applies(shape: &Conv2dShape, isa: Isa) -> bool {
    blocks(isa).is_some_and(|blocks| computes(shape, blocks))
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

/// Whether the direct loops with `blocks` compute the forward of `shape`: where
/// [`loops_fit`], and either output rows wider than one vector (wide strips:
/// [`DIRECT_MIN_OUT_W`] on AVX-512, [`DIRECT_MIN_OUT_W_AVX2`] on AVX2) or at most
/// [`FEW_IN_CHANNELS`] input channels per group (a first layer, where im2col's copies cost
/// more than its arithmetic). Narrower rows of more channels take im2col + GEMM: one vector
/// per strip, re-reading a weight block that leaves L1, is slower there.
fn computes(shape: &Conv2dShape, blocks: Blocks) -> bool {
    loops_fit(shape)
        && (shape.out_w() >= blocks.min_out_w || shape.c_in / shape.groups.max(1) <= FEW_IN_CHANNELS)
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

/// Scratch floats [`forward_group`] needs: one zero-padded group image plus [`SLACK`], one
/// register block's weights tap by tap ([`taps_len`]), then the [`partial_len`] sums.
pub(super) fn scratch_len(shape: &Conv2dShape) -> usize {
    padded_len(shape).saturating_add(taps_len(shape)).saturating_add(partial_len(shape))
}

/// Floats of one register block's weights laid out tap by tap: `(c_in/groups·kh·kw,`
/// [`CHANNELS`]`)`.
fn taps_len(shape: &Conv2dShape) -> usize {
    (shape.c_in / shape.groups.max(1))
        .saturating_mul(shape.kh)
        .saturating_mul(shape.kw)
        .saturating_mul(CHANNELS)
}

/// Floats of one zero-padded group image and its [`SLACK`].
fn padded_len(shape: &Conv2dShape) -> usize {
    let (hp, wp) = shape.padded_dims();
    (shape.c_in / shape.groups.max(1)).saturating_mul(hp).saturating_mul(wp).saturating_add(SLACK)
}

/// Input channels summed per sweep over the strips: as many as keep one register block's
/// weights (at most [`CHANNELS`] output channels) within [`DIRECT_WEIGHT_BLOCK_FLOATS`], so
/// that they stay in L1 beside the strips' input rows.
fn channel_block(shape: &Conv2dShape) -> usize {
    (DIRECT_WEIGHT_BLOCK_FLOATS / (CHANNELS * shape.kh * shape.kw).max(1)).max(1)
}

/// Floats of the partial sums kept between sweeps when the input channels take more than
/// one ([`channel_block`]): [`CHANNELS`] rows of every strip's lanes (at most
/// `out_h·max(wp, out_w + 31) + 31`, see [`Strips`]); none otherwise.
fn partial_len(shape: &Conv2dShape) -> usize {
    if shape.c_in / shape.groups.max(1) <= channel_block(shape) {
        return 0;
    }
    let (_, wp) = shape.padded_dims();
    let per_channel =
        shape.out_h().saturating_mul(wp.max(shape.out_w().saturating_add(31))).saturating_add(31);
    per_channel.saturating_mul(CHANNELS)
}

/// Workspace floats of one image's forward slot on the direct path: the padded image, and
/// at least a column buffer (so the slot layout is the im2col path's).
pub(super) fn forward_slot_len(shape: &Conv2dShape) -> usize {
    shape.col_len().max(scratch_len(shape))
}

/// Forward of one group of one image on `isa`: `y (c_out/groups, out_h, out_w)`
/// **overwritten** with `activation(weight (c_out/groups, c_in/groups·kh·kw) × taps(x) +
/// bias)`, for `x (c_in/groups, h, w)`; the activation is applied in registers before the
/// store. `scratch` holds at least [`scratch_len`] floats (contents ignored).
///
/// Panics on slices of other lengths (the caller checked the shape and the slices), and
/// unless [`applies`] holds for `shape` on `isa` and the CPU has `isa`.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward_group(
    shape: &Conv2dShape,
    isa: Isa,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
    y: &mut [f32],
    scratch: &mut [f32],
) {
    let blocks = blocks(isa).filter(|&blocks| computes(shape, blocks) && isa.is_supported());
    let Some(blocks) = blocks else { panic!("direct convolution on an unsupported shape or CPU") };
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
    let (padded, rest) = scratch.split_at_mut(padded_len(shape));
    let (tap_weights, rest) = rest.split_at_mut(taps_len(shape));
    let partial = &mut rest[..partial_len(shape)];
    pad_image(shape, x, padded, hp, wp);
    let flat = flat_computes_fewer(out_h, out_w, wp, blocks);
    let narrow = !flat && out_w <= blocks.lanes;
    let (kh, kw, channel_block) = (shape.kh, shape.kw, channel_block(shape));
    let geometry =
        Geometry { plane: hp * wp, wp, cg, kh, kw, out_h, out_w, flat, narrow, channel_block, activation };
    // Blocks of equal size (16 channels as one block, not 12 + 4: a thin block would be
    // bound by its loads).
    let most = if narrow { blocks.narrow } else { blocks.wide };
    let per_block = cog.div_ceil(cog.div_ceil(most));
    for co0 in (0..cog).step_by(per_block) {
        let rows = per_block.min(cog - co0);
        let mut row_bias = [0.0f32; CHANNELS];
        if let Some(bias) = bias {
            row_bias[..rows].copy_from_slice(&bias[co0..co0 + rows]);
        }
        // On AVX-512 the block's weights go tap by tap, `(taps, rows)`, so that the strips
        // broadcast one tap's weights from one pointer (one pointer per row would not fit
        // the general registers beside the loop's); AVX2 reads the rows in place.
        let rows_weight = &weight[co0 * taps..(co0 + rows) * taps];
        let w_block = if isa == Isa::Avx512 {
            let by_tap = &mut tap_weights[..taps * rows];
            for (r, w_row) in rows_weight.chunks_exact(taps).enumerate() {
                for (tap, &w) in w_row.iter().enumerate() {
                    by_tap[tap * rows + r] = w;
                }
            }
            &by_tap[..]
        } else {
            rows_weight
        };
        let y_block = &mut y[co0 * out_h * out_w..(co0 + rows) * out_h * out_w];
        // SAFETY: the CPU has `isa` (asserted above), one with direct loops; the slices
        // have the lengths asserted above, which is what `channels_*` rely on.
        unsafe {
            match isa {
                Isa::Avx512 => channels_avx512(&geometry, padded, w_block, &row_bias, y_block, partial, rows),
                _ => channels_avx2(&geometry, padded, w_block, &row_bias, y_block, partial, rows),
            }
        };
    }
}

/// Whether wide strips across rows ([`Strips`]' flat order) compute fewer lanes than strips
/// per output row (one vector for rows up to one vector wide, wide strips otherwise) for an
/// `out_h x out_w` output on the padded grid of width `wp`.
fn flat_computes_fewer(out_h: usize, out_w: usize, wp: usize, blocks: Blocks) -> bool {
    let per_row = if out_w <= blocks.lanes { blocks.lanes } else { blocks.wide_lanes() };
    let rows = out_h * out_w.div_ceil(per_row) * per_row;
    let flat = ((out_h.max(1) - 1) * wp + out_w).div_ceil(blocks.wide_lanes()) * blocks.wide_lanes();
    flat < rows
}

/// `dst (c, hp, wp)` = `x (c, h, w)` surrounded by `pad` zeros, then zeros to its end.
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
    /// Strips run across rows ([`Strips`]).
    flat: bool,
    /// Strips of one vector (rows up to one vector wide, not flat).
    narrow: bool,
    /// Input channels per sweep ([`channel_block`]).
    channel_block: usize,
    /// Applied to each strip before it is stored.
    activation: Activation,
}

/// Dispatches `rows` output channels to the strip body of the right register block: one
/// vector per strip where [`Geometry::narrow`], the wide strips' `$vectors` otherwise.
macro_rules! by_rows {
    ($vector:ty, $g:expr, $rows:expr, ($padded:expr, $weight:expr, $bias:expr, $y:expr, $partial:expr);
     narrow: $($n:literal)*; wide ($vectors:literal): $($w:literal)*) => {
        match ($rows, $g.narrow) {
            $(($n, true) => strips::<$vector, $n, 1>($g, $padded, $weight, $bias, $y, $partial),)*
            $(($w, false) => strips::<$vector, $w, $vectors>($g, $padded, $weight, $bias, $y, $partial),)*
            (rows, _) => unreachable!("{rows} output channels: more than a register block"),
        }
    };
}

/// All strips of `rows` output channels on AVX-512F: at most 16 for strips of one vector, at
/// most 8 for strips of three.
///
/// # Safety
/// The CPU has AVX-512F; `padded` holds `cg·plane + SLACK` floats laid out as
/// [`pad_image`] writes them, `weight` holds `(cg·kh·kw, rows)` (tap by tap), `y` holds
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
    partial: &mut [f32],
    rows: usize,
) {
    // SAFETY: forwarded from this function's contract; `Zmm` values exist only here.
    unsafe {
        by_rows!(Zmm, g, rows, (padded, weight, bias, y, partial);
            narrow: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; wide (3): 1 2 3 4 5 6 7 8)
    }
}

/// All strips of `rows` output channels on AVX2 + FMA: at most 12 for outputs up to 8 wide
/// (one vector per strip), at most 6 otherwise (two).
///
/// # Safety
/// As [`channels_avx512`], on a CPU with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn channels_avx2(
    g: &Geometry,
    padded: &[f32],
    weight: &[f32],
    bias: &[f32; CHANNELS],
    y: &mut [f32],
    partial: &mut [f32],
    rows: usize,
) {
    // SAFETY: forwarded from this function's contract; `Ymm` values exist only here.
    unsafe {
        by_rows!(Ymm, g, rows, (padded, weight, bias, y, partial);
            narrow: 1 2 3 4 5 6 7 8 9 10 11 12; wide (2): 1 2 3 4 5 6)
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn channels_avx512(
    _: &Geometry,
    _: &[f32],
    _: &[f32],
    _: &[f32; CHANNELS],
    _: &mut [f32],
    _: &mut [f32],
    _: usize,
) {
    unreachable!("AVX-512 is never selected off x86_64")
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn channels_avx2(
    _: &Geometry,
    _: &[f32],
    _: &[f32],
    _: &[f32; CHANNELS],
    _: &mut [f32],
    _: &mut [f32],
    _: usize,
) {
    unreachable!("AVX2 is never selected off x86_64")
}

/// `R` output channels, strips of `V` vectors: `S::LANES·V` consecutive positions of the
/// padded grid (see [`Strips`]), their sums in registers, then the lanes that are outputs
/// stored row piece by row piece.
///
/// # Safety
/// As [`channels_avx512`], with `rows = R`, on the instruction set of `S`.
#[inline(always)]
unsafe fn strips<S: ConvVector, const R: usize, const V: usize>(
    g: &Geometry,
    padded: &[f32],
    weight: &[f32],
    bias: &[f32; CHANNELS],
    y: &mut [f32],
    partial: &mut [f32],
) {
    let taps = g.cg * g.kh * g.kw;
    let out_plane = g.out_h * g.out_w;
    let strip = S::LANES * V;
    let (xp, wt, yp) = (padded.as_ptr(), weight.as_ptr(), y.as_mut_ptr());
    // Partial sums of sweeps before the last: row r of strip i at `r·row_len + i·strip`.
    let row_len = Strips::new(g, strip).count() * strip;
    let pp = partial.as_mut_ptr();
    assert!(
        g.cg <= g.channel_block || R * row_len <= partial.len(),
        "direct convolution partial sums outgrow their scratch"
    );
    for c0 in (0..g.cg).step_by(g.channel_block) {
        let c1 = g.cg.min(c0 + g.channel_block);
        for (i, (q0, owned)) in Strips::new(g, strip).enumerate() {
            let mut acc = [[S::splat(0.0); V]; R];
            for (r, acc_row) in acc.iter_mut().enumerate() {
                for (v, a) in acc_row.iter_mut().enumerate() {
                    // SAFETY: a sweep after the first reads what the one before wrote at
                    // `r·row_len + i·strip + LANES·v`, below `R·row_len <= partial.len()`
                    // (asserted above when there is more than one sweep).
                    *a = if c0 == 0 {
                        S::splat(bias[r])
                    } else {
                        unsafe { S::load(pp.add(r * row_len + i * strip + S::LANES * v)) }
                    };
                }
            }
            for ci in c0..c1 {
                for ki in 0..g.kh {
                    let row = ci * g.plane + ki * g.wp + q0;
                    let w_tap = (ci * g.kh + ki) * g.kw;
                    for kj in 0..g.kw {
                        // SAFETY: lanes `l < strip` read `padded[row + kj + l]`, below
                        // `cg·plane + strip - 1 <= cg·plane + SLACK` by [`Strips`]' bound on `q0`
                        // (a strip is at most 48 lanes), the length of `padded`. Weights: both
                        // `(w_tap + kj)·R + r` and `r·taps + w_tap + kj` are below
                        // `taps·R = weight.len()`.
                        unsafe {
                            let mut xv = [S::splat(0.0); V];
                            for (v, x_v) in xv.iter_mut().enumerate() {
                                *x_v = S::load(xp.add(row + kj + S::LANES * v));
                            }
                            for (r, acc_row) in acc.iter_mut().enumerate() {
                                let wb = S::splat(*wt.add(if S::BY_TAP {
                                    (w_tap + kj) * R + r
                                } else {
                                    r * taps + w_tap + kj
                                }));
                                for (a, &x_v) in acc_row.iter_mut().zip(&xv) {
                                    *a = wb.mul_add(x_v, *a);
                                }
                            }
                        }
                    }
                }
            }
            if c1 < g.cg {
                for (r, acc_row) in acc.iter().enumerate() {
                    for (v, &a) in acc_row.iter().enumerate() {
                        // SAFETY: inside `partial`, as asserted above (more than one sweep).
                        unsafe {
                            a.store_lanes(
                                pp.add(r * row_len + i * strip + S::LANES * v),
                                0,
                                S::LANES,
                                Activation::Identity,
                            )
                        };
                    }
                }
                continue;
            }
            // The outputs among the owned positions `q0..q0 + owned`, one output row at a time:
            // position `q = oy·wp + ox` (`ox < out_w`) is output `oy·out_w + ox`.
            let mut q = q0;
            while q < q0 + owned {
                let (oy, ox) = (q / g.wp, q % g.wp);
                let row_end = (oy * g.wp + g.out_w).min(q0 + owned);
                if ox < g.out_w {
                    let (lo, hi) = (q - q0, row_end - q0);
                    let out = oy * g.out_w + ox;
                    for (r, acc_row) in acc.iter().enumerate() {
                        for (v, &a) in acc_row.iter().enumerate() {
                            let first = S::LANES * v;
                            if first >= hi || first + S::LANES <= lo {
                                continue;
                            }
                            let (from, to) = (lo.max(first) - first, hi.min(first + S::LANES) - first);
                            // SAFETY: lane `l` of vector `v` is position `q0 + first + l`; lanes
                            // `from..to` are positions `q..row_end` of output row `oy`, outputs
                            // `out + (first + l - lo)` with `ox + (first + l - lo) < out_w`: inside
                            // channel r's plane (`r < R = rows`). The base pointer may lie before
                            // the plane, where no lane is written.
                            unsafe {
                                let base = yp.wrapping_add(r * out_plane + out + first).wrapping_sub(lo);
                                a.store_lanes(base, from, to, g.activation)
                            };
                        }
                    }
                }
                q = (oy + 1) * g.wp;
            }
        }
    }
}

/// The strips of one pass of [`strips`], as `(q0, owned)`: the strip reads and sums the
/// positions `q0 .. q0 + strip` of the padded grid (`q = oy·wp + ox`, whose input for tap
/// `(ci, ki, kj)` is `padded[ci·plane + ki·wp + kj + q]`) and stores the outputs among
/// `q0 .. q0 + owned`.
///
/// - Rows (`flat` false): strips start at each output row, `owned` up to the row's end, so
///   the lanes past `out_w` are lost in the last strip of each row.
/// - Flat: strips follow each other across rows, `owned = strip` (up to the last output);
///   only the `kw - 1`
///   padding columns between two rows are lost. The better of the two is
///   [`Geometry::flat`]'s choice.
///
/// Every strip starts at `q0 <= (out_h - 1)·wp + out_w - 1`, so the last tap of the last
/// channel reads below `(cg - 1)·plane + (kh - 1)·wp + kw - 1 + q0 + strip
/// <= cg·plane + strip - 1` (`plane = (out_h + kh - 1)·wp`, `wp = out_w + kw - 1`).
struct Strips {
    strip: usize,
    wp: usize,
    out_w: usize,
    /// One past the last output's position, `(out_h - 1)·wp + out_w`.
    end: usize,
    flat: bool,
    next: usize,
}

impl Strips {
    fn new(g: &Geometry, strip: usize) -> Self {
        let end = if g.out_h == 0 { 0 } else { (g.out_h - 1) * g.wp + g.out_w };
        Strips { strip, wp: g.wp, out_w: g.out_w, end, flat: g.flat, next: 0 }
    }
}

impl Iterator for Strips {
    type Item = (usize, usize);

    #[inline(always)]
    fn next(&mut self) -> Option<(usize, usize)> {
        let q0 = self.next;
        if q0 >= self.end {
            return None;
        }
        if self.flat {
            self.next = q0 + self.strip;
            return Some((q0, self.strip.min(self.end - q0)));
        }
        let row_end = q0 - q0 % self.wp + self.out_w;
        let owned = self.strip.min(row_end - q0);
        self.next = if q0 + owned == row_end { row_end + self.wp - self.out_w } else { q0 + owned };
        Some((q0, owned))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Strips run across rows where that computes fewer lanes: ResNet's 56- and 28-wide rows
    /// on AVX-512 (56 of 58 lanes against 56 of 96 per row); not where the rows already fill
    /// their strips (14-wide rows in 16-lane strips on AVX2, 48-wide rows on AVX-512).
    #[test]
    fn strips_run_across_rows_where_fewer_lanes() {
        let (avx512, avx2) = (blocks(Isa::Avx512).unwrap(), blocks(Isa::Avx2).unwrap());
        assert!(flat_computes_fewer(56, 56, 58, avx512));
        assert!(flat_computes_fewer(28, 28, 30, avx512));
        assert!(!flat_computes_fewer(14, 14, 16, avx2));
        assert!(!flat_computes_fewer(48, 48, 50, avx512));
        assert!(blocks(Isa::Portable).is_none());
    }

    /// The partial sums between sweeps need room only where the input channels take more
    /// than one sweep: 28 channels of a 3x3 kernel fit one.
    #[test]
    fn partial_sums_only_for_several_sweeps() {
        assert_eq!(channel_block(&Conv2dShape::new(1, 28, 8, 8, 4, 3, 3)), 28);
        assert_eq!(partial_len(&Conv2dShape::new(1, 28, 8, 8, 4, 3, 3)), 0);
        assert!(partial_len(&Conv2dShape::new(1, 29, 8, 8, 4, 3, 3)) > 0);
    }

    /// The direct weight gradient takes thin GEMMs only: at most `GRAD_MAX_CHANNELS` output
    /// and `FEW_IN_CHANNELS` input channels per group, stride 1, not pointwise.
    #[test]
    fn weight_gradient_only_for_few_channels_per_group() {
        let lenet1 = Conv2dShape::new(64, 1, 28, 28, 6, 5, 5).with_pad(2);
        assert!(computes_weight_gradient(&lenet1));
        assert!(!computes_weight_gradient(&Conv2dShape::new(8, 64, 28, 28, 16, 3, 3)), "64 input channels");
        assert!(!computes_weight_gradient(&Conv2dShape::new(8, 4, 28, 28, 32, 3, 3)), "32 output channels");
        assert!(computes_weight_gradient(&Conv2dShape::new(8, 64, 28, 28, 64, 3, 3).with_groups(8)));
        assert!(!computes_weight_gradient(&Conv2dShape::new(8, 4, 28, 28, 8, 3, 3).with_stride(2)));
        assert!(!computes_weight_gradient(&Conv2dShape::new(8, 4, 28, 28, 8, 1, 1)), "pointwise");
    }
}
