//! The register blocks of the images-in-lanes convolution: every vector holds one position of
//! 16 images, so each FMA does 16 useful multiply-adds whatever the plane's width.
//!
//! - [`correlate`]: `out[co, oy, ox] = act(bias[co] + Σ_(ci, ki, kj) w[co, ci, ki, kj] ·
//!   inp[ci, oy + ki, ox + kj])`, the forward (and, on the padded output gradient with the
//!   flipped weight, the backward to the input). A block of up to 6 output channels x 4
//!   positions of one row is summed in 24 registers; each tap loads 4 input vectors and
//!   broadcasts 6 weights for 24 FMAs.
//! - [`weight_gradient`]: `dw[co, ci, ki, kj] += Σ_(groups, oy, ox, lanes) dy[co, oy, ox] ·
//!   inp[ci, oy + ki, ox + kj]`. A block of up to 4 output channels x 5 kernel columns of one
//!   `(ci, ki)` is summed over every position of every group in 20 registers (4 + 5 loads per
//!   20 FMAs), then across its lanes once.
//!
//! Rows of `inp` outside `live_rows` and columns outside `live_cols` are known to be zero
//! (padding): rows are skipped, and so are kernel columns that read only zero columns for a
//! whole block of positions.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use std::ops::Range;

use super::layout::LANES;
#[cfg(target_arch = "x86_64")]
use crate::gemm::activate_avx512;
use crate::gemm::Activation;

/// Output channels of a [`correlate`] block.
const CHANNELS: usize = 6;
/// Positions (along a row) of a [`correlate`] block.
const POSITIONS: usize = 4;
/// Output channels of a [`weight_gradient`] block.
const GRAD_CHANNELS: usize = 4;
/// Kernel columns of a [`weight_gradient`] block.
const GRAD_TAPS: usize = 5;

/// The sizes of one pass: the input `inp (c_in, hp, wp, 16)` per lane group, with rows
/// outside `live_rows` and columns outside `live_cols` zero; the weight `(c_out, c_in, kh, kw)`; the output (or output
/// gradient) `(c_out, out_h, out_w, 16)` per lane group, `out_h = hp - kh + 1`,
/// `out_w = wp - kw + 1`.
pub(super) struct Sizes {
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
        self.c_in * self.hp * self.wp * LANES
    }

    /// Floats of one group's output.
    pub fn out_len(&self) -> usize {
        self.c_out * self.out_h() * self.out_w() * LANES
    }

    /// Whether the sizes are consistent: the kernel fits the padded plane and the live rows
    /// lie inside it.
    fn fit(&self) -> bool {
        self.kh <= self.hp
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
/// Panics unless the sizes fit and the slices have their lengths (`bias`: `c_out`).
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn correlate(
    g: &Sizes,
    activation: Activation,
    inp: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    assert!(
        g.fit()
            && inp.len() == g.inp_len()
            && weight.len() == g.c_out * g.c_in * g.kh * g.kw
            && bias.is_none_or(|b| b.len() == g.c_out)
            && out.len() == g.out_len(),
        "correlate: slices do not match the sizes"
    );
    let taps = g.c_in * g.kh * g.kw;
    for channels in even_blocks(g.c_out, CHANNELS) {
        let mut block_bias = [0.0f32; CHANNELS];
        if let Some(bias) = bias {
            block_bias[..channels.len()].copy_from_slice(&bias[channels.clone()]);
        }
        let w_block = &weight[channels.start * taps..channels.end * taps];
        let out_block = &mut out
            [channels.start * g.out_h() * g.out_w() * LANES..channels.end * g.out_h() * g.out_w() * LANES];
        for positions in even_blocks(g.out_w(), POSITIONS) {
            macro_rules! by_size {
                ($(($r:literal, $p:literal))*) => {
                    match (channels.len(), positions.len()) {
                        // SAFETY: the CPU has AVX-512F (this function's contract); the block's
                        // channels and positions lie inside the sizes asserted above.
                        $(($r, $p) => unsafe {
                            correlate_block::<$r, $p>(g, activation, inp, w_block, &block_bias, out_block, positions.start)
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

#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn correlate(
    _: &Sizes,
    _: Activation,
    _: &[f32],
    _: &[f32],
    _: Option<&[f32]>,
    _: &mut [f32],
) {
    unreachable!("AVX-512 is never selected off x86_64")
}

/// One column of blocks: `R` output channels (the rows of `weight` and planes of `out`
/// given) x `P` positions from `ox0`, for every output row.
///
/// # Safety
/// The CPU has AVX-512F; `weight` holds `R` rows of `c_in·kh·kw` taps, `out` `R` planes of
/// `out_h x out_w x 16`, `ox0 + P <= out_w`, and `inp` is as [`correlate`] asserts.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn correlate_block<const R: usize, const P: usize>(
    g: &Sizes,
    activation: Activation,
    inp: &[f32],
    weight: &[f32],
    bias: &[f32; CHANNELS],
    out: &mut [f32],
    ox0: usize,
) {
    let (out_h, out_w) = (g.out_h(), g.out_w());
    let taps = g.c_in * g.kh * g.kw;
    let (ip, wt, op) = (inp.as_ptr(), weight.as_ptr(), out.as_mut_ptr());
    // Kernel columns for which some position `ox0 + p + kj` of the block may be non-zero.
    let kj_range =
        g.live_cols.start.saturating_sub(ox0 + P - 1)..g.kw.min(g.live_cols.end.saturating_sub(ox0));
    for oy in 0..out_h {
        // Kernel rows whose input row `oy + ki` may be non-zero.
        let ki_range = g.live_rows.start.saturating_sub(oy)..g.kh.min(g.live_rows.end.saturating_sub(oy));
        let mut acc = [[_mm512_setzero_ps(); P]; R];
        for (r, acc_row) in acc.iter_mut().enumerate() {
            *acc_row = [_mm512_set1_ps(bias[r]); P];
        }
        for ci in 0..g.c_in {
            for ki in ki_range.clone() {
                let row = ((ci * g.hp + oy + ki) * g.wp + ox0) * LANES;
                let w_row = (ci * g.kh + ki) * g.kw;
                for kj in kj_range.clone() {
                    // SAFETY: input position `(ci, oy + ki, ox0 + kj + p)` has
                    // `oy + ki < out_h + kh - 1 = hp` and `ox0 + kj + p < out_w + kw - 1 = wp`,
                    // so its 16 lanes lie inside `inp`; weight `r·taps + w_row + kj < R·taps`.
                    unsafe {
                        let mut x = [_mm512_setzero_ps(); P];
                        for (p, x_p) in x.iter_mut().enumerate() {
                            *x_p = _mm512_loadu_ps(ip.add(row + (kj + p) * LANES));
                        }
                        for (r, acc_row) in acc.iter_mut().enumerate() {
                            let w = _mm512_set1_ps(*wt.add(r * taps + w_row + kj));
                            for (a, &x_p) in acc_row.iter_mut().zip(&x) {
                                *a = _mm512_fmadd_ps(w, x_p, *a);
                            }
                        }
                    }
                }
            }
        }
        for (r, acc_row) in acc.iter().enumerate() {
            for (p, &a) in acc_row.iter().enumerate() {
                // SAFETY: plane r < R, row oy < out_h, position ox0 + p < out_w: inside `out`.
                unsafe {
                    let at = op.add(((r * out_h + oy) * out_w + ox0 + p) * LANES);
                    _mm512_storeu_ps(at, activate_avx512(a, activation));
                }
            }
        }
    }
}

/// `dweight` **accumulated** (`+=`) with the gradient of every group in `groups`: each group
/// is `inp_len` floats of input followed by `out_len` floats of output gradient (see
/// [`Sizes`]). Each weight gets one sum over all groups, positions and lanes, added
/// once: a fixed order.
///
/// Panics unless `kh <= hp`, `kw <= wp`, `groups` holds whole groups and `dweight` the
/// weight.
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn weight_gradient(g: &Sizes, groups: &[f32], dweight: &mut [f32]) {
    let group_len = g.inp_len() + g.out_len();
    assert!(
        g.fit() && groups.len().is_multiple_of(group_len) && dweight.len() == g.c_out * g.c_in * g.kh * g.kw,
        "weight_gradient: slices do not match the sizes"
    );
    for ci in 0..g.c_in {
        for ki in 0..g.kh {
            for channels in even_blocks(g.c_out, GRAD_CHANNELS) {
                for kj in even_blocks(g.kw, GRAD_TAPS) {
                    let block = GradBlock { ci, ki, co0: channels.start, kj0: kj.start };
                    macro_rules! by_size {
                        ($(($r:literal, $t:literal))*) => {
                            match (channels.len(), kj.len()) {
                                // SAFETY: the CPU has AVX-512F (this function's contract); the
                                // block lies inside the sizes asserted above.
                                $(($r, $t) => unsafe { grad_block::<$r, $t>(g, groups, dweight, &block) },)*
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

#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn weight_gradient(_: &Sizes, _: &[f32], _: &mut [f32]) {
    unreachable!("AVX-512 is never selected off x86_64")
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
/// The CPU has AVX-512F; `co0 + R <= c_out`, `kj0 + T <= kw`, and the slices as
/// [`weight_gradient`] asserts.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn grad_block<const R: usize, const T: usize>(
    g: &Sizes,
    groups: &[f32],
    dweight: &mut [f32],
    b: &GradBlock,
) {
    let (out_h, out_w) = (g.out_h(), g.out_w());
    let (inp_len, group_len) = (g.inp_len(), g.inp_len() + g.out_len());
    // Output rows whose input row `oy + ki` may be non-zero.
    let rows = g.live_rows.start.saturating_sub(b.ki)..out_h.min(g.live_rows.end.saturating_sub(b.ki));
    let mut acc = [[_mm512_setzero_ps(); T]; R];
    for group in groups.chunks_exact(group_len) {
        let (ip, dp) = (group.as_ptr(), group[inp_len..].as_ptr());
        for oy in rows.clone() {
            let x_row = ((b.ci * g.hp + oy + b.ki) * g.wp + b.kj0) * LANES;
            for ox in 0..out_w {
                // SAFETY: dy position `(co0 + r, oy, ox)` lies inside the group's dy
                // (co0 + r < c_out, oy < out_h, ox < out_w); input position
                // `(ci, oy + ki, ox + kj0 + t)` has `oy + ki < hp` and
                // `ox + kj0 + t < out_w + kw - 1 = wp`, inside the group's input.
                unsafe {
                    let mut d = [_mm512_setzero_ps(); R];
                    for (r, d_r) in d.iter_mut().enumerate() {
                        *d_r = _mm512_loadu_ps(dp.add((((b.co0 + r) * out_h + oy) * out_w + ox) * LANES));
                    }
                    for t in 0..T {
                        let x = _mm512_loadu_ps(ip.add(x_row + (ox + t) * LANES));
                        for (acc_row, &d_r) in acc.iter_mut().zip(&d) {
                            acc_row[t] = _mm512_fmadd_ps(d_r, x, acc_row[t]);
                        }
                    }
                }
            }
        }
    }
    for (r, acc_row) in acc.iter().enumerate() {
        for (t, &a) in acc_row.iter().enumerate() {
            dweight[(((b.co0 + r) * g.c_in + b.ci) * g.kh + b.ki) * g.kw + b.kj0 + t] +=
                _mm512_reduce_add_ps(a);
        }
    }
}
