//! Vector math on `wide::f32x8` shared by the activation and loss kernels (and by other
//! modules: the LSTM/GRU gates apply [`sigmoid_f32x8`] and [`tanh_f32x8`] to their blocks),
//! plus the loads and stores the slice loops use for whole vectors and tails.
//!
//! NaN in gives NaN out for every function here; ±inf gives the limit of the function.

use wide::bytemuck::cast;
use wide::{f32x8, i32x8};

/// Lanes of the vector type the kernels use.
pub(crate) const LANES: usize = 8;

/// Loads one whole vector; `s` must hold exactly [`LANES`] values (a `chunks_exact` item).
#[inline(always)]
pub(crate) fn load(s: &[f32]) -> f32x8 {
    let lanes: [f32; LANES] = s.try_into().expect("a chunk of exactly LANES values");
    f32x8::new(lanes)
}

/// Loads a tail of fewer than [`LANES`] values, padding the missing lanes with `fill` (chosen
/// so the padding cannot change a reduction: 0 for sums, -inf for maxima).
#[inline(always)]
pub(crate) fn load_tail(s: &[f32], fill: f32) -> f32x8 {
    let mut lanes = [fill; LANES];
    lanes[..s.len()].copy_from_slice(s);
    f32x8::new(lanes)
}

/// Stores one whole vector into a chunk of exactly [`LANES`] values.
#[inline(always)]
pub(crate) fn store(out: &mut [f32], v: f32x8) {
    out.copy_from_slice(v.as_array());
}

/// Stores the first `out.len()` (< [`LANES`]) lanes of `v`; the padding lanes are dropped.
#[inline(always)]
pub(crate) fn store_tail(out: &mut [f32], v: f32x8) {
    let n = out.len();
    out.copy_from_slice(&v.as_array()[..n]);
}

/// `eˣ` lane-wise, within 2 ulp of the correctly rounded value for `-86.9 <= x <= 88.37`;
/// below that the result is flushed to 0 (`eˣ < 1.8e-38`, at the bottom of the normal range),
/// above it is `+inf`, NaN stays NaN.
///
/// Cody-Waite range reduction `x = n·ln2 + r`, `|r| <= ln2/2` (ln2 split in a high part
/// exact in 9 bits and a low correction, so `n·C1` is exact), then Cephes' degree-7
/// polynomial for `eʳ` and `2ⁿ` built directly in the exponent bits.
#[inline(always)]
pub(crate) fn exp_f32x8(x: f32x8) -> f32x8 {
    // Above it n = round(x·log2 e) >= -125, so eʳ·2ⁿ >= 0.7·2⁻¹²⁵ is a normal float: no
    // subnormal is ever produced (on x86 each one costs a ~100-cycle microcode assist, even
    // in lanes that the final select discards, such as the -inf padding of softmax tails).
    const LO: f32 = -86.9;
    // Just under 127.5·ln2, so that n = round(x·log2 e) <= 127 still fits the exponent.
    const HI: f32 = 88.37;
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    // 1.5·2²³: adding it rounds a float of magnitude < 2²² to an integer (ties to even) and
    // leaves that integer in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    // fast_clamp keeps NaN (x is its second operand in the min/max instructions).
    let xc = x.fast_clamp(f32x8::splat(LO), f32x8::splat(HI));
    let t = xc.mul_add(f32x8::splat(std::f32::consts::LOG2_E), f32x8::splat(ROUND));
    let n = t - f32x8::splat(ROUND);
    let r = n.mul_neg_add(f32x8::splat(C1), xc);
    let r = n.mul_neg_add(f32x8::splat(C2), r);
    // eʳ ≈ 1 + r + r²·P(r) (Cephes expf coefficients).
    let p = f32x8::splat(1.987_569_1e-4)
        .mul_add(r, f32x8::splat(1.398_199_9e-3))
        .mul_add(r, f32x8::splat(8.333_452e-3))
        .mul_add(r, f32x8::splat(4.166_579_6e-2))
        .mul_add(r, f32x8::splat(0.166_666_65))
        .mul_add(r, f32x8::splat(0.5));
    let er = p.mul_add(r * r, r) + f32x8::ONE;
    // 2ⁿ: the integer n sits in the low bits of t; n + 127 in [1, 254] is a normal exponent.
    let n_bits: i32x8 = cast(t);
    let two_n: f32x8 = cast((n_bits - i32x8::splat(ROUND.to_bits() as i32 - 127)) << 23);
    let e = er * two_n;
    let e = x.simd_lt(f32x8::splat(LO)).select(f32x8::ZERO, e);
    x.simd_gt(f32x8::splat(HI)).select(f32x8::splat(f32::INFINITY), e)
}

/// `σ(x) = 1/(1 + e⁻ˣ)` lane-wise: exact 0 for `x < -88.4` (e⁻ˣ = inf), exact 1 for
/// `x > 17` (e⁻ˣ below half an ulp of 1), within 3 ulp elsewhere.
#[inline(always)]
pub(crate) fn sigmoid_f32x8(x: f32x8) -> f32x8 {
    f32x8::ONE / (f32x8::ONE + exp_f32x8(-x))
}

/// `tanh(x)` lane-wise, within 3 ulp; exactly ±1 once `|x| > 9.2`.
///
/// Cephes' tanhf: for `|x| < 0.625` the odd polynomial `x + x³·P(x²)` (no cancellation near
/// 0), above it `1 - 2/(e^{2|x|} + 1)` (no overflow: e^{2|x|} = inf gives exactly 1), then the
/// sign of `x` put back.
#[inline(always)]
pub(crate) fn tanh_f32x8(x: f32x8) -> f32x8 {
    let sign = x & f32x8::splat(-0.0);
    let a = x.abs();
    let z = a * a;
    let poly = f32x8::splat(-5.704_988_7e-3)
        .mul_add(z, f32x8::splat(2.063_909e-2))
        .mul_add(z, f32x8::splat(-5.373_971_6e-2))
        .mul_add(z, f32x8::splat(0.133_314_42))
        .mul_add(z, f32x8::splat(-0.333_332_8));
    let small = (poly * z).mul_add(a, a);
    let two = f32x8::splat(2.0);
    let large = f32x8::ONE - two / (exp_f32x8(two * a) + f32x8::ONE);
    // NaN fails the comparison and takes the exp branch, which keeps it NaN.
    let tanh_abs = a.simd_lt(f32x8::splat(0.625)).select(small, large);
    tanh_abs | sign
}
