//! The two vector non-linearities of the cells, σ and tanh, one small function each so that
//! they can be swapped for the crate's shared activation math without touching the cells.
//!
//! Both build on [`exp_saturating`] rather than `wide`'s `exp`/`tanh`: on the baseline
//! x86-64 target (SSE2) those spend most of their time in range masks and software rounding
//! and cost about twice as much, which made the cell as slow as the step's GEMMs. Accuracy
//! against libm over [-20, 20]: σ ≤ 2 ulp, tanh ≤ 5 ulp (the `rnn` tests compare with the
//! scalar reference).

use wide::{bytemuck::cast, f32x8, i32x8};

/// `σ(x) = 1 / (1 + e^{-x})`, lane-wise. For `x ≪ 0`, `e^{-x}` is `+∞` and σ is `0`; for
/// `x ≫ 0`, `e^{-x}` is tiny and σ rounds to `1`: no NaN for any finite input, NaN in gives
/// NaN out.
#[inline(always)]
pub(super) fn sigmoid(x: f32x8) -> f32x8 {
    f32x8::ONE / (f32x8::ONE + exp_saturating(-x))
}

/// `tanh(x)`, lane-wise: `1 - 2 / (e^{2x} + 1)`, which saturates to exactly `±1` (`e^{2x}`
/// is `+∞` or tiny), except for `|x| < 1/4`, where that form loses relative accuracy to
/// cancellation and the Taylor series `x - x³/3 + 2x⁵/15 - 17x⁷/315 + 62x⁹/2835` (next term
/// below 2·10⁻⁹·|x| there) is used instead. NaN in gives NaN out.
#[inline(always)]
pub(super) fn tanh(x: f32x8) -> f32x8 {
    let from_exp = f32x8::ONE - f32x8::splat(2.0) / (exp_saturating(x + x) + f32x8::ONE);
    let x2 = x * x;
    let mut series = f32x8::splat(62.0 / 2835.0);
    for coefficient in [-17.0 / 315.0, 2.0 / 15.0, -1.0 / 3.0] {
        series = series.mul_add(x2, f32x8::splat(coefficient));
    }
    let near_zero = (series * x2).mul_add(x, x);
    x.abs().simd_lt(f32x8::splat(0.25)).select(near_zero, from_exp)
}

/// `e^x` for the gates: exact to ~1 ulp on `[-87, 88]`; below, the input is clamped to
/// `-87` (a tiny positive value, where σ and tanh have saturated); above `ln(f32::MAX)` it
/// is `+∞` (the input is clamped to 89, whose power of two is 2¹²⁸ = `+∞`), and between 88
/// and `ln(f32::MAX)` it may already be `+∞`, again where σ and tanh are saturated.
/// NaN propagates through the clamps (`minps`/`maxps` return their second operand on NaN).
#[inline(always)]
fn exp_saturating(x: f32x8) -> f32x8 {
    let x = f32x8::splat(-87.0).fast_max(x);
    let x = f32x8::splat(89.0).fast_min(x);
    // e^x = 2^n · e^r with n = round(x / ln 2) and r = x - n·ln 2 in [-ln2/2, ln2/2];
    // ln 2 split in two (Cody-Waite) so that n·ln2_hi is exact.
    let n = (x * f32x8::splat(core::f32::consts::LOG2_E)).fast_round_int();
    let n_float = f32x8::from_i32x8(n);
    let r = n_float.mul_neg_add(f32x8::splat(0.693_359_4), x);
    let r = n_float.mul_neg_add(f32x8::splat(-2.121_944_4e-4), r);
    // e^r ≈ 1 + r + r²·P(r), the Cephes expf polynomial.
    let mut p = f32x8::splat(1.987_569_1e-4);
    for coefficient in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
        p = p.mul_add(r, f32x8::splat(coefficient));
    }
    let e_r = p.mul_add(r * r, r) + f32x8::ONE;
    // 2^n built in the exponent field: n + 127 in [-125 + 127, 128 + 127]; 255 encodes +∞.
    let two_n: f32x8 = cast((n + i32x8::splat(127)) << 23);
    e_r * two_n
}
