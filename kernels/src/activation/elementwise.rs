//! Element-wise activations: forward (out of place and in place) and backward from the
//! saved output, each a single SIMD pass (see the [module docs](super) for NaN and accuracy).

use wide::f32x8;

use super::map::{map_binary, map_inplace, map_unary};
use super::simd_math::{sigmoid_f32x8, tanh_f32x8};
use crate::error::{argument_error, check_len, Result};

/// Checks that an output or gradient slice has the length of the slice it pairs with.
fn check_same(what: &str, of: &str, expected: usize, actual: usize) -> Result<()> {
    check_len(|| format!("{what} (same length as {of})"), expected, actual)
}

/// Leaky ReLU slopes the backward pass can invert from the output: `y > 0 ⟺ z > 0` needs
/// `slope >= 0` (with `slope = 0` it is ReLU).
fn check_slope(slope: f32) -> Result<()> {
    if slope.is_finite() && slope >= 0.0 {
        Ok(())
    } else {
        Err(argument_error(
            "slope",
            "a finite slope >= 0 (backward reads the sign of z from y = leaky_relu(z))",
            slope,
        ))
    }
}

/// `y = σ(x) = 1/(1 + e⁻ˣ)`; `x` and `y` of any equal length `n`, `y` **overwritten**.
pub fn sigmoid_forward(x: &[f32], y: &mut [f32]) -> Result<()> {
    check_same("y", "x", x.len(), y.len())?;
    map_unary(x, y, sigmoid_f32x8);
    Ok(())
}

/// `x = σ(x)` in place (e.g. on LSTM/GRU gate blocks).
pub fn sigmoid_forward_inplace(x: &mut [f32]) {
    map_inplace(x, sigmoid_f32x8);
}

/// `dx = dy·y·(1 - y)` from the saved output `y = σ(z)`; `y`, `dy`, `dx` of equal length,
/// `dx` **overwritten**.
pub fn sigmoid_backward(y: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<()> {
    check_same("dy", "y", y.len(), dy.len())?;
    check_same("dx", "y", y.len(), dx.len())?;
    map_binary(y, dy, dx, |y, dy| dy * y * (f32x8::ONE - y));
    Ok(())
}

/// `y = tanh(x)`; `x` and `y` of any equal length, `y` **overwritten**.
pub fn tanh_forward(x: &[f32], y: &mut [f32]) -> Result<()> {
    check_same("y", "x", x.len(), y.len())?;
    map_unary(x, y, tanh_f32x8);
    Ok(())
}

/// `x = tanh(x)` in place.
pub fn tanh_forward_inplace(x: &mut [f32]) {
    map_inplace(x, tanh_f32x8);
}

/// `dx = dy·(1 - y²)` from the saved output `y = tanh(z)`; `dx` **overwritten**.
pub fn tanh_backward(y: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<()> {
    check_same("dy", "y", y.len(), dy.len())?;
    check_same("dx", "y", y.len(), dx.len())?;
    map_binary(y, dy, dx, |y, dy| dy * (f32x8::ONE - y * y));
    Ok(())
}

/// `slope·x` where `x <= 0`, `x` elsewhere; NaN fails the comparison and stays NaN.
#[inline(always)]
fn leaky_relu_f32x8(slope: f32x8, x: f32x8) -> f32x8 {
    x.simd_le(f32x8::ZERO).select(x * slope, x)
}

/// `max(x, 0)` with an exact `+0` for `x <= 0` (not `0·x = -0`); NaN stays NaN.
#[inline(always)]
fn relu_f32x8(x: f32x8) -> f32x8 {
    x.simd_le(f32x8::ZERO).select(f32x8::ZERO, x)
}

/// `dy` where `y > 0`, exactly 0 where `y <= 0` (even for an infinite `dy`, as PyTorch's
/// `threshold_backward`), NaN where `y` is NaN.
#[inline(always)]
fn relu_backward_f32x8(y: f32x8, dy: f32x8) -> f32x8 {
    let dx = y.simd_gt(f32x8::ZERO).select(dy, f32x8::ZERO);
    y.is_nan().select(y, dx)
}

/// `dy` where `y > 0`, `slope·dy` where `y <= 0`, NaN where `y` is NaN.
#[inline(always)]
fn leaky_relu_backward_f32x8(slope: f32x8, y: f32x8, dy: f32x8) -> f32x8 {
    let dx = y.simd_gt(f32x8::ZERO).select(dy, dy * slope);
    y.is_nan().select(y, dx)
}

/// `y = max(x, 0)`; `x` and `y` of any equal length, `y` **overwritten**; NaN stays NaN.
pub fn relu_forward(x: &[f32], y: &mut [f32]) -> Result<()> {
    check_same("y", "x", x.len(), y.len())?;
    map_unary(x, y, relu_f32x8);
    Ok(())
}

/// `x = max(x, 0)` in place.
pub fn relu_forward_inplace(x: &mut [f32]) {
    map_inplace(x, relu_f32x8);
}

/// `dx = dy·[y > 0]` from the saved output `y = relu(z)` (`y > 0 ⟺ z > 0`); `dx`
/// **overwritten**, NaN where `y` is NaN.
pub fn relu_backward(y: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<()> {
    check_same("dy", "y", y.len(), dy.len())?;
    check_same("dx", "y", y.len(), dx.len())?;
    map_binary(y, dy, dx, relu_backward_f32x8);
    Ok(())
}

/// `y = x` where `x > 0`, `slope·x` elsewhere (PyTorch's `negative_slope`, default 0.01);
/// `y` **overwritten**. `slope` must be finite and `>= 0` so that backward can work from `y`.
pub fn leaky_relu_forward(slope: f32, x: &[f32], y: &mut [f32]) -> Result<()> {
    check_slope(slope)?;
    check_same("y", "x", x.len(), y.len())?;
    let s = f32x8::splat(slope);
    map_unary(x, y, |x| leaky_relu_f32x8(s, x));
    Ok(())
}

/// Leaky ReLU in place; `slope` as in [`leaky_relu_forward`].
pub fn leaky_relu_forward_inplace(slope: f32, x: &mut [f32]) -> Result<()> {
    check_slope(slope)?;
    let s = f32x8::splat(slope);
    map_inplace(x, |x| leaky_relu_f32x8(s, x));
    Ok(())
}

/// `dx = dy` where `y > 0`, `slope·dy` elsewhere, from the saved output `y` (for
/// `slope >= 0`, `y > 0 ⟺ z > 0`); `dx` **overwritten**, NaN where `y` is NaN.
pub fn leaky_relu_backward(slope: f32, y: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<()> {
    check_slope(slope)?;
    check_same("dy", "y", y.len(), dy.len())?;
    check_same("dx", "y", y.len(), dx.len())?;
    let s = f32x8::splat(slope);
    map_binary(y, dy, dx, |y, dy| leaky_relu_backward_f32x8(s, y, dy));
    Ok(())
}
