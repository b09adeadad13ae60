//! Vector math written once for every [`SimdF32`]: `exp`, `sigmoid`, `tanh`, `ln(1 + x)` on
//! `[0, 1]`, shared by the activation and loss kernels and by the LSTM/GRU gates.
//!
//! NaN in gives NaN out for every function here; ±inf gives the limit of the function.
//! Accuracy (measured against f64 by the activation tests, on every instruction set): exp
//! within 1 ulp, sigmoid within 2.3 ulp (libm's `1/(1 + e⁻ˣ)`: the same), tanh within 1.3 ulp.

use super::SimdF32;

/// Below it `n = round(x·log2 e) >= -125`, so `eʳ·2ⁿ >= 0.7·2⁻¹²⁵` is a normal float: no
/// subnormal is ever produced (on x86 each one costs a ~100-cycle microcode assist, even in
/// lanes that a select then discards, such as the -inf padding of softmax tails).
const EXP_LO: f32 = -86.9;
/// Just under `127.5·ln2`, so that `n = round(x·log2 e) <= 127` still fits the exponent.
const EXP_HI: f32 = 88.37;

/// `eˣ` lane-wise, within 2 ulp of the correctly rounded value for `-86.9 <= x <= 88.37`;
/// below that the result is flushed to 0 (`eˣ < 1.8e-38`, at the bottom of the normal range),
/// above it is `+inf`, NaN stays NaN.
#[inline(always)]
pub(crate) fn exp<V: SimdF32>(x: V) -> V {
    // x is the second operand of max/min, so NaN is kept.
    let e = exp_in_range(V::splat(EXP_HI).min(V::splat(EXP_LO).max(x)));
    let e = V::select(x.lt(V::splat(EXP_LO)), V::splat(0.0), e);
    V::select(x.gt(V::splat(EXP_HI)), V::splat(f32::INFINITY), e)
}

/// [`exp`] for `x` already in `[-86.9, 88.37]` (or NaN, which stays NaN): no clamping and no
/// special values, for callers that clamp their own argument.
///
/// Cody-Waite range reduction `x = n·ln2 + r`, `|r| <= ln2/2` (ln2 split in a high part
/// exact in 9 bits and a low correction, so `n·C1` is exact), then Cephes' degree-7
/// polynomial for `eʳ`, scaled by `2ⁿ` ([`SimdF32::mul_pow2`]).
#[inline(always)]
fn exp_in_range<V: SimdF32>(x: V) -> V {
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    // 1.5·2²³: adding it rounds a float of magnitude < 2²² to an integer (ties to even) and
    // leaves that integer in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let t = x.mul_add(V::splat(std::f32::consts::LOG2_E), V::splat(ROUND));
    let n = t - V::splat(ROUND);
    let r = n.neg_mul_add(V::splat(C1), x);
    let r = n.neg_mul_add(V::splat(C2), r);
    // eʳ ≈ 1 + r + r²·P(r) (Cephes expf coefficients).
    let p = V::splat(1.987_569_1e-4)
        .mul_add(r, V::splat(1.398_199_9e-3))
        .mul_add(r, V::splat(8.333_452e-3))
        .mul_add(r, V::splat(4.166_579_6e-2))
        .mul_add(r, V::splat(0.166_666_65))
        .mul_add(r, V::splat(0.5));
    let er = p.mul_add(r * r, r) + V::splat(1.0);
    // n + 127 in [2, 254] is a normal exponent.
    er.mul_pow2(n, t, ROUND.to_bits() as i32 - 127)
}

/// `σ(x) = 1/(1 + e⁻ˣ)` lane-wise: exact 0 for `x < -88.4` (e⁻ˣ = inf), exact 1 for
/// `x > 17` (e⁻ˣ below half an ulp of 1), within 3 ulp elsewhere.
#[inline(always)]
pub(crate) fn sigmoid<V: SimdF32>(x: V) -> V {
    V::splat(1.0) / (V::splat(1.0) + exp(-x))
}

/// `σ(x)` for the gates of the recurrent cells: [`sigmoid`] with the reciprocal of
/// `1 + e⁻ˣ` from [`recip_newton`] instead of a division (five divisions per LSTM unit
/// bound the cell's speed), within 4 ulp of the exact value for `-80 <= x <= 17`; exact 0
/// below -80 (where σ < 1.9e-35) and exact 1 above 17, as a saturated gate should be. NaN
/// stays NaN.
#[inline(always)]
pub(crate) fn sigmoid_gate<V: SimdF32>(x: V) -> V {
    const LO: f32 = -80.0;
    const HI: f32 = 17.0;
    // x is the second operand of max and min, so NaN is kept; e⁻ˣ stays in [e⁻¹⁷, e⁸⁰], inside
    // exp_in_range's range and recip_newton's.
    let xc = V::splat(HI).min(V::splat(LO).max(x));
    let s = recip_newton(V::splat(1.0) + exp_in_range(-xc));
    let s = V::select(x.lt(V::splat(LO)), V::splat(0.0), s);
    V::select(x.gt(V::splat(HI)), V::splat(1.0), s)
}

/// `1/d` for `d` in `[1, 2¹²⁶]`: [`SimdF32::recip_estimate`] refined by one Newton step,
/// `r + r·(1 - d·r)`, which squares the estimate's relative error (below 2⁻²² after it):
/// within 2 ulp.
#[inline(always)]
fn recip_newton<V: SimdF32>(d: V) -> V {
    let r = d.recip_estimate();
    d.neg_mul_add(r, V::splat(1.0)).mul_add(r, r)
}

/// `tanh(x)` lane-wise, within 3 ulp; exactly ±1 once `|x| > 9.2`.
///
/// Cephes' tanhf: for `|x| < 0.625` the odd polynomial `x + x³·P(x²)` (no cancellation near
/// 0), above it `1 - 2/(e^{2|x|} + 1)` (no overflow: e^{2|x|} = inf gives exactly 1), then the
/// sign of `x` put back.
#[inline(always)]
pub(crate) fn tanh<V: SimdF32>(x: V) -> V {
    tanh_with::<V, false>(x)
}

/// `tanh(x)` for the recurrent cells: [`tanh`] with the reciprocal of `e^{2|x|} + 1` from
/// [`recip_newton`] instead of a division, within 4 ulp; `|x|` is clamped to 9.5 first
/// (`tanh(9.5)` rounds to 1), which keeps `e^{2|x|}` in [`exp_in_range`]'s range (and
/// [`recip_newton`]'s). NaN stays NaN.
#[inline(always)]
pub(crate) fn tanh_gate<V: SimdF32>(x: V) -> V {
    // x is the second operand of max and min, so NaN is kept.
    tanh_with::<V, true>(V::splat(9.5).min(V::splat(-9.5).max(x)))
}

/// [`tanh`]'s two branches; the large one, for a `GATE`, with [`exp_in_range`] and
/// [`recip_newton`] (not through closures: a closure is compiled without the caller's
/// instruction set, and its vector operations would be out-of-line calls).
#[inline(always)]
fn tanh_with<V: SimdF32, const GATE: bool>(x: V) -> V {
    let a = x.abs();
    let z = a * a;
    let poly = V::splat(-5.704_988_7e-3)
        .mul_add(z, V::splat(2.063_909e-2))
        .mul_add(z, V::splat(-5.373_971_6e-2))
        .mul_add(z, V::splat(0.133_314_42))
        .mul_add(z, V::splat(-0.333_332_8));
    let small = (poly * z).mul_add(a, a);
    let (one, two) = (V::splat(1.0), V::splat(2.0));
    let large = if GATE {
        one - two * recip_newton(exp_in_range(two * a) + one)
    } else {
        one - two / (exp(two * a) + one)
    };
    // NaN fails the comparison and takes the exp branch, which keeps it NaN.
    let tanh_abs = V::select(a.lt(V::splat(0.625)), small, large);
    tanh_abs.or_sign_of(x)
}

/// `ln(1 + x)` lane-wise for `0 <= x <= 1` (the BCE term `ln(1 + e^{-|z|})`), within 2 ulp;
/// NaN stays NaN.
///
/// `u = 1 + x` in `[1, 2]` is `f·2ᵏ` with `k = [u > √2]` and `f` in `[√2/2, √2]` (halving is
/// exact), `ln f = ln(1 + r)` with `r = f - 1` exact (Sterbenz), by Cephes' logf polynomial
/// `r - r²/2 + r³·P(r)`; then the log1p correction `x·ln(u)/(u - 1)` recovers what the
/// rounding of `1 + x` lost (fdlibm's identity; `x` itself where `u` rounds to 1).
#[inline(always)]
pub(crate) fn ln_1p_unit<V: SimdF32>(x: V) -> V {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let one = V::splat(1.0);
    let u = one + x;
    let big = u.gt(V::splat(std::f32::consts::SQRT_2));
    let f = V::select(big, u * V::splat(0.5), u);
    let k = V::select(big, one, V::splat(0.0));
    let r = f - one;
    let p = V::splat(7.037_683_6e-2)
        .mul_add(r, V::splat(-1.151_461e-1))
        .mul_add(r, V::splat(1.167_699_9e-1))
        .mul_add(r, V::splat(-1.242_014_1e-1))
        .mul_add(r, V::splat(1.424_932_3e-1))
        .mul_add(r, V::splat(-1.666_805_8e-1))
        .mul_add(r, V::splat(2.000_071_5e-1))
        .mul_add(r, V::splat(-2.499_999_4e-1))
        .mul_add(r, V::splat(3.333_333e-1));
    let r2 = r * r;
    let tail = k.mul_add(V::splat(LN2_LO), r2 * r * p);
    let ln_u = k.mul_add(V::splat(LN2_HI), tail + r2.neg_mul_add(V::splat(0.5), r));
    // u <= 1 means u == 1 here (x >= 0): ln(1 + x) = x to within half an ulp.
    V::select(u.le(one), x, x * (ln_u / (u - one)))
}
