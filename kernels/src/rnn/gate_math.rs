//! The two vector non-linearities of the cells, one small function each so that they can be
//! swapped for the crate's shared activation math without touching the cells.

use wide::f32x8;

/// `σ(x) = 1 / (1 + e^{-x})`, lane-wise. Saturates cleanly: for `x ≪ 0`, `e^{-x}` overflows
/// to `+∞` and the quotient is `0`; for `x ≫ 0`, `e^{-x}` underflows to `0` and it is `1`;
/// so no NaN for any finite input (NaN in, NaN out).
#[inline(always)]
pub(super) fn sigmoid(x: f32x8) -> f32x8 {
    f32x8::ONE / (f32x8::ONE + (-x).exp())
}

/// `tanh(x)`, lane-wise: `wide`'s `tanh`, which returns `±1` exactly for `|x| > 9.011`
/// (where `e^{-2|x|} < 2⁻²⁴`), `x` for `|x| < 2·10⁻⁴`, and `-expm1(-2|x|) / (expm1(-2|x|) + 2)`
/// with the sign of `x` in between, so it cannot overflow.
#[inline(always)]
pub(super) fn tanh(x: f32x8) -> f32x8 {
    x.tanh()
}
