//! The register blocks of the images-in-lanes convolution: every vector holds one position of
//! a lane group (16 images on AVX-512, 8 on AVX2), so each FMA does a whole vector of useful
//! multiply-adds whatever the plane's width. The code is generic over the [`ConvVector`]; the
//! block sizes are the vector's [`Blocks`].
//!
//! - [`correlate`]: `out[co, oy, ox] = act(bias[co] + Σ_(ci, ki, kj) w[co, ci, ki, kj] ·
//!   inp[ci, oy + ki, ox + kj])`, the forward (and, on the padded output gradient with the
//!   flipped weight, the backward to the input). A block of up to `CHANNELS` output channels
//!   x `POSITIONS` positions of one row is summed in registers; each tap loads `POSITIONS`
//!   input vectors and broadcasts `CHANNELS` weights (AVX-512: 6 x 4 = 24 sums of 32
//!   registers; AVX2: 4 x 3 = 12 of 16).
//! - [`weight_gradient`]: `dw[co, ci, ki, kj] += Σ_(groups, oy, ox, lanes) dy[co, oy, ox] ·
//!   inp[ci, oy + ki, ox + kj]`. A block of up to `GRAD_CHANNELS` output channels x
//!   `GRAD_TAPS` kernel columns of one `(ci, ki)` is summed over every position of every
//!   group in registers (AVX-512: 4 x 5; AVX2: 2 x 5), then across its lanes once.
//!
//! Rows of `inp` outside `live_rows` and columns outside `live_cols` are known to be zero
//! (padding): rows are skipped, and so are kernel columns that read only zero columns for a
//! whole block of positions.

use std::ops::Range;

use crate::conv::vector::ConvVector;
use crate::gemm::Activation;

/// The register blocks of one [`ConvVector`]: within its instruction set's registers, with
/// the loads and broadcasts beside the sums.
pub(super) trait Blocks: ConvVector {
    /// Output channels of a [`correlate`] block.
    const CHANNELS: usize;
    /// Positions (along a row) of a [`correlate`] block.
    const POSITIONS: usize;
    /// Output channels of a [`weight_gradient`] block.
    const GRAD_CHANNELS: usize;
    /// Kernel columns of a [`weight_gradient`] block.
    const GRAD_TAPS: usize;
}

/// The largest [`Blocks::CHANNELS`] of any vector: the size of a block's bias array.
const MAX_CHANNELS: usize = 6;

/// The sizes of one pass: the input `inp (c_in, hp, wp, lanes)` per lane group, with rows
/// outside `live_rows` and columns outside `live_cols` zero; the weight `(c_out, c_in, kh,
/// kw)`; the output (or output gradient) `(c_out, out_h, out_w, lanes)` per lane group,
/// `out_h = hp - kh + 1`, `out_w = wp - kw + 1`; `lanes` the vector's.
pub(super) struct Sizes {
    pub lanes: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub hp: usize,
    pub wp: usize,
    pub kh: usize,
    pub kw: usize,
    pub live_rows: Range<usize>,
    pub live_cols: Range<usize>,
}

impl Sizes {
    pub fn out_h(&self) -> usize {
        self.hp + 1 - self.kh
    }

    pub fn out_w(&self) -> usize {
        self.wp + 1 - self.kw
    }

    /// Floats of one group's input.
    pub fn inp_len(&self) -> usize {
        self.c_in * self.hp * self.wp * self.lanes
    }

    /// Floats of one group's output.
    pub fn out_len(&self) -> usize {
        self.c_out * self.out_h() * self.out_w() * self.lanes
    }

    /// Whether the sizes are consistent for vectors `V`: the kernel fits the padded plane and
    /// the live rows lie inside it.
    fn fit<V: ConvVector>(&self) -> bool {
        self.lanes == V::LANES
            && self.kh <= self.hp
            && self.kw <= self.wp
            && self.live_rows.end <= self.hp
            && self.live_cols.end <= self.wp
    }
}

/// Block sizes `(size, count)` that cut `total` into `count` near-equal blocks of at most
/// `most` (16 = 6 + 5 + 5, not 6 + 6 + 4: the thinnest block sets the pace).
fn even_blocks(total: usize, most: usize) -> impl Iterator<Item = Range<usize>> {
    let count = total.div_ceil(most).max(1);
    (0..count).map(move |b| (b * total / count)..((b + 1) * total / count))
}

/// `out` **overwritten** with the correlation of `inp` with `weight` (plus `bias`, then
/// `activation`), as the module docs say, for one lane group of sizes `g`.
///
/// Panics unless the sizes fit `V` and the slices have their lengths (`bias`: `c_out`).
///
/// # Safety
/// The CPU has the instruction set of `V`; the caller is a `#[target_feature]` function of it.
#[inline(always)]
pub(super) unsafe fn correlate<V: Blocks>(
    g: &Sizes,
    activation: Activation,
    inp: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    assert!(
        g.fit::<V>()
            && inp.len() == g.inp_len()
            && weight.len() == g.c_out * g.c_in * g.kh * g.kw
            && bias.is_none_or(|b| b.len() == g.c_out)
            && out.len() == g.out_len(),
        "correlate: slices do not match the sizes"
    );
    let taps = g.c_in * g.kh * g.kw;
    let plane = g.out_h() * g.out_w() * V::LANES;
    for channels in even_blocks(g.c_out, V::CHANNELS) {
        let mut block_bias = [0.0f32; MAX_CHANNELS];
        if let Some(bias) = bias {
            block_bias[..channels.len()].copy_from_slice(&bias[channels.clone()]);
        }
        let w_block = &weight[channels.start * taps..channels.end * taps];
        let out_block = &mut out[channels.start * plane..channels.end * plane];
        for positions in even_blocks(g.out_w(), V::POSITIONS) {
            macro_rules! by_size {
                ($(($r:literal, $p:literal))*) => {
                    match (channels.len(), positions.len()) {
                        // SAFETY: the CPU has `V`'s instruction set (this function's
                        // contract); the block's channels and positions lie inside the sizes
                        // asserted above. Arms past `V`'s blocks are never taken (the guard
                        // is a constant), and so compiled away.
                        $(($r, $p) if $r <= V::CHANNELS && $p <= V::POSITIONS => unsafe {
                            correlate_block::<V, $r, $p>(g, activation, inp, w_block, &block_bias, out_block, positions.start)
                        },)*
                        (r, p) => unreachable!("block of {r} channels x {p} positions"),
                    }
                };
            }
            by_size!((1, 1)(1, 2)(1, 3)(1, 4)(2, 1)(2, 2)(2, 3)(2, 4)(3, 1)(3, 2)(3, 3)(3, 4)(4, 1)(4, 2)(
                4, 3
            )(4, 4)(5, 1)(5, 2)(5, 3)(5, 4)(6, 1)(6, 2)(6, 3)(6, 4));
        }
    }
}

/// One column of blocks: `R` output channels (the rows of `weight` and planes of `out`
/// given) x `P` positions from `ox0`, for every output row.
///
/// # Safety
/// As [`correlate`]; `weight` holds `R` rows of `c_in·kh·kw` taps, `out` `R` planes of
/// `out_h x out_w x LANES`, `ox0 + P <= out_w`, and `inp` is as [`correlate`] asserts.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn correlate_block<V: ConvVector, const R: usize, const P: usize>(
    g: &Sizes,
    activation: Activation,
    inp: &[f32],
    weight: &[f32],
    bias: &[f32; MAX_CHANNELS],
    out: &mut [f32],
    ox0: usize,
) {
    let lanes = V::LANES;
    let (out_h, out_w) = (g.out_h(), g.out_w());
    let taps = g.c_in * g.kh * g.kw;
    let (ip, wt, op) = (inp.as_ptr(), weight.as_ptr(), out.as_mut_ptr());
    // Kernel columns for which some position `ox0 + p + kj` of the block may be non-zero.
    let kj_range =
        g.live_cols.start.saturating_sub(ox0 + P - 1)..g.kw.min(g.live_cols.end.saturating_sub(ox0));
    for oy in 0..out_h {
        // Kernel rows whose input row `oy + ki` may be non-zero.
        let ki_range = g.live_rows.start.saturating_sub(oy)..g.kh.min(g.live_rows.end.saturating_sub(oy));
        let mut acc: [[V; P]; R] = std::array::from_fn(|r| [V::splat(bias[r]); P]);
        for ci in 0..g.c_in {
            for ki in ki_range.clone() {
                let row = ((ci * g.hp + oy + ki) * g.wp + ox0) * lanes;
                let w_row = (ci * g.kh + ki) * g.kw;
                for kj in kj_range.clone() {
                    // SAFETY: input position `(ci, oy + ki, ox0 + kj + p)` has
                    // `oy + ki < out_h + kh - 1 = hp` and `ox0 + kj + p < out_w + kw - 1 = wp`,
                    // so its lanes lie inside `inp`; weight `r·taps + w_row + kj < R·taps`.
                    unsafe {
                        let x: [V; P] = std::array::from_fn(|p| V::load(ip.add(row + (kj + p) * lanes)));
                        for (r, acc_row) in acc.iter_mut().enumerate() {
                            let w = V::splat(*wt.add(r * taps + w_row + kj));
                            for (a, &x_p) in acc_row.iter_mut().zip(&x) {
                                *a = w.mul_add(x_p, *a);
                            }
                        }
                    }
                }
            }
        }
        for (r, acc_row) in acc.iter().enumerate() {
            for (p, &a) in acc_row.iter().enumerate() {
                // SAFETY: plane r < R, row oy < out_h, position ox0 + p < out_w: inside `out`.
                unsafe { a.store(op.add(((r * out_h + oy) * out_w + ox0 + p) * lanes), activation) };
            }
        }
    }
}

/// `dweight` **accumulated** (`+=`) with the gradient of every group in `groups`: each group
/// is `inp_len` floats of input followed by `out_len` floats of output gradient (see
/// [`Sizes`]). Each weight gets one sum over all groups, positions and lanes, added
/// once: a fixed order.
///
/// Panics unless the sizes fit `V`, `groups` holds whole groups and `dweight` the weight.
///
/// # Safety
/// The CPU has the instruction set of `V`; the caller is a `#[target_feature]` function of it.
#[inline(always)]
pub(super) unsafe fn weight_gradient<V: Blocks>(g: &Sizes, groups: &[f32], dweight: &mut [f32]) {
    let group_len = g.inp_len() + g.out_len();
    assert!(
        g.fit::<V>()
            && groups.len().is_multiple_of(group_len)
            && dweight.len() == g.c_out * g.c_in * g.kh * g.kw,
        "weight_gradient: slices do not match the sizes"
    );
    for ci in 0..g.c_in {
        for ki in 0..g.kh {
            for channels in even_blocks(g.c_out, V::GRAD_CHANNELS) {
                for kj in even_blocks(g.kw, V::GRAD_TAPS) {
                    let block = GradBlock { ci, ki, co0: channels.start, kj0: kj.start };
                    macro_rules! by_size {
                        ($(($r:literal, $t:literal))*) => {
                            match (channels.len(), kj.len()) {
                                // SAFETY: the CPU has `V`'s instruction set (this function's
                                // contract); the block lies inside the sizes asserted above.
                                // Arms past `V`'s blocks are never taken (constant guards).
                                $(($r, $t) if $r <= V::GRAD_CHANNELS && $t <= V::GRAD_TAPS => unsafe {
                                    grad_block::<V, $r, $t>(g, groups, dweight, &block)
                                },)*
                                (r, t) => unreachable!("block of {r} channels x {t} taps"),
                            }
                        };
                    }
                    by_size!((1, 1)(1, 2)(1, 3)(1, 4)(1, 5)(2, 1)(2, 2)(2, 3)(2, 4)(2, 5)(3, 1)(3, 2)(3, 3)(
                        3, 4
                    )(3, 5)(4, 1)(4, 2)(4, 3)(4, 4)(4, 5));
                }
            }
        }
    }
}

/// Where one [`grad_block`] sits: input channel, kernel row, first output channel, first
/// kernel column.
struct GradBlock {
    ci: usize,
    ki: usize,
    co0: usize,
    kj0: usize,
}

/// `R` output channels x `T` kernel columns of one `(ci, ki)`.
///
/// # Safety
/// As [`weight_gradient`]; `co0 + R <= c_out`, `kj0 + T <= kw`, and the slices as
/// [`weight_gradient`] asserts.
#[inline(always)]
unsafe fn grad_block<V: ConvVector, const R: usize, const T: usize>(
    g: &Sizes,
    groups: &[f32],
    dweight: &mut [f32],
    b: &GradBlock,
) {
    let lanes = V::LANES;
    let (out_h, out_w) = (g.out_h(), g.out_w());
    let (inp_len, group_len) = (g.inp_len(), g.inp_len() + g.out_len());
    // Output rows whose input row `oy + ki` may be non-zero.
    let rows = g.live_rows.start.saturating_sub(b.ki)..out_h.min(g.live_rows.end.saturating_sub(b.ki));
    let mut acc = [[V::splat(0.0); T]; R];
    for group in groups.chunks_exact(group_len) {
        let (ip, dp) = (group.as_ptr(), group[inp_len..].as_ptr());
        for oy in rows.clone() {
            let x_row = ((b.ci * g.hp + oy + b.ki) * g.wp + b.kj0) * lanes;
            for ox in 0..out_w {
                // SAFETY: dy position `(co0 + r, oy, ox)` lies inside the group's dy
                // (co0 + r < c_out, oy < out_h, ox < out_w); input position
                // `(ci, oy + ki, ox + kj0 + t)` has `oy + ki < hp` and
                // `ox + kj0 + t < out_w + kw - 1 = wp`, inside the group's input.
                unsafe {
                    let d: [V; R] = std::array::from_fn(|r| {
                        V::load(dp.add((((b.co0 + r) * out_h + oy) * out_w + ox) * lanes))
                    });
                    for t in 0..T {
                        let x = V::load(ip.add(x_row + (ox + t) * lanes));
                        for (acc_row, &d_r) in acc.iter_mut().zip(&d) {
                            acc_row[t] = d_r.mul_add(x, acc_row[t]);
                        }
                    }
                }
            }
        }
    }
    for (r, acc_row) in acc.iter().enumerate() {
        for (t, &a) in acc_row.iter().enumerate() {
            dweight[(((b.co0 + r) * g.c_in + b.ci) * g.kh + b.ki) * g.kw + b.kj0 + t] += a.sum();
        }
    }
}

/// AVX-512's blocks: 6 x 4 sums, 4 inputs and a broadcast (29 of 32 registers); 4 x 5 sums,
/// 4 output gradients and an input (25).
#[cfg(target_arch = "x86_64")]
impl Blocks for crate::conv::vector::Zmm {
    const CHANNELS: usize = 6;
    const POSITIONS: usize = 4;
    const GRAD_CHANNELS: usize = 4;
    const GRAD_TAPS: usize = 5;
}

/// AVX2's blocks: 4 x 3 sums, 3 inputs and a broadcast (16 of 16 registers); 2 x 5 sums, 2
/// output gradients and an input (13).
#[cfg(target_arch = "x86_64")]
impl Blocks for crate::conv::vector::Ymm {
    const CHANNELS: usize = 4;
    const POSITIONS: usize = 3;
    const GRAD_CHANNELS: usize = 2;
    const GRAD_TAPS: usize = 5;
}
