//! Element-wise activations: forward (out of place and in place) and backward from the
//! saved output, each a single SIMD pass on the instruction set of
//! [`current_isa`](crate::isa::current_isa) (see the [module docs](super) for NaN and accuracy).

use crate::error::{argument_error, check_len, Result};
use crate::isa::current_isa;
use crate::simd::{map_accumulate, map_binary, map_inplace, map_unary, math, Map1, Map2, SimdF32};

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

/// `σ(x)`.
struct Sigmoid;

impl Map1 for Sigmoid {
    #[inline(always)]
    fn map<V: SimdF32>(&self, x: V) -> V {
        math::sigmoid(x)
    }
}

/// `dy·y·(1 - y)`, from `y = σ(z)`.
struct SigmoidBackward;

impl Map2 for SigmoidBackward {
    #[inline(always)]
    fn map<V: SimdF32>(&self, y: V, dy: V) -> V {
        dy * y * (V::splat(1.0) - y)
    }
}

/// `tanh(x)`.
struct Tanh;

impl Map1 for Tanh {
    #[inline(always)]
    fn map<V: SimdF32>(&self, x: V) -> V {
        math::tanh(x)
    }
}

/// `dy·(1 - y²)`, from `y = tanh(z)`.
struct TanhBackward;

impl Map2 for TanhBackward {
    #[inline(always)]
    fn map<V: SimdF32>(&self, y: V, dy: V) -> V {
        dy * (V::splat(1.0) - y * y)
    }
}

/// `max(x, 0)` with an exact `+0` for `x <= 0` (not `0·x = -0`); NaN stays NaN.
struct Relu;

impl Map1 for Relu {
    #[inline(always)]
    fn map<V: SimdF32>(&self, x: V) -> V {
        let zero = V::splat(0.0);
        V::select(x.le(zero), zero, x)
    }
}

/// `dy` where `y > 0`, exactly 0 where `y <= 0` (even for an infinite `dy`, as PyTorch's
/// `threshold_backward`), NaN where `y` is NaN.
struct ReluBackward;

impl Map2 for ReluBackward {
    #[inline(always)]
    fn map<V: SimdF32>(&self, y: V, dy: V) -> V {
        let dx = V::select(y.gt(V::splat(0.0)), dy, V::splat(0.0));
        V::select(y.is_nan(), y, dx)
    }
}

/// `slope·x` where `x <= 0`, `x` elsewhere; NaN fails the comparison and stays NaN.
struct LeakyRelu(f32);

impl Map1 for LeakyRelu {
    #[inline(always)]
    fn map<V: SimdF32>(&self, x: V) -> V {
        V::select(x.le(V::splat(0.0)), x * V::splat(self.0), x)
    }
}

/// `dy` where `y > 0`, `slope·dy` where `y <= 0`, NaN where `y` is NaN.
struct LeakyReluBackward(f32);

impl Map2 for LeakyReluBackward {
    #[inline(always)]
    fn map<V: SimdF32>(&self, y: V, dy: V) -> V {
        let dx = V::select(y.gt(V::splat(0.0)), dy, dy * V::splat(self.0));
        V::select(y.is_nan(), y, dx)
    }
}

/// `y = σ(x) = 1/(1 + e⁻ˣ)`; `x` and `y` of any equal length `n`, `y` **overwritten**.
///
/// ```
/// use keel_kernels::activation::sigmoid_forward;
/// # fn main() -> keel_kernels::Result<()> {
/// // x, y: (4). Large inputs saturate to exactly 0 and 1.
/// let x = [0.0, 2.0, 1e4, -1e4];
/// let mut y = [0.0; 4];
/// sigmoid_forward(&x, &mut y)?;
/// assert_eq!([y[0], y[2], y[3]], [0.5, 1.0, 0.0]);
/// assert!((y[1] - 1.0 / (1.0 + (-2.0f32).exp())).abs() < 1e-6);
/// # Ok(())
/// # }
/// ```
pub fn sigmoid_forward(x: &[f32], y: &mut [f32]) -> Result<()> {
    check_same("y", "x", x.len(), y.len())?;
    map_unary(current_isa(), x, y, &Sigmoid);
    Ok(())
}

/// `x = σ(x)` in place (e.g. on LSTM/GRU gate blocks); used as
/// [`relu_forward_inplace`]'s example shows.
pub fn sigmoid_forward_inplace(x: &mut [f32]) {
    map_inplace(current_isa(), x, &Sigmoid);
}

/// `dx = dy·y·(1 - y)` from the saved output `y = σ(z)`; `y`, `dy`, `dx` of equal length,
/// `dx` **overwritten**.
///
/// ```
/// use keel_kernels::activation::sigmoid_backward;
/// # fn main() -> keel_kernels::Result<()> {
/// // y = σ(z) saved by the forward, dy, dx: (2). σ'(0) = 0.5·(1 - 0.5) = 0.25.
/// let (y, dy) = ([0.5, 0.0], [4.0, 1.0]);
/// let mut dx = [f32::NAN; 2]; // overwritten, never read
/// sigmoid_backward(&y, &dy, &mut dx)?;
/// assert_eq!(dx, [1.0, 0.0]);
/// # Ok(())
/// # }
/// ```
pub fn sigmoid_backward(y: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<()> {
    check_same("dy", "y", y.len(), dy.len())?;
    check_same("dx", "y", y.len(), dx.len())?;
    map_binary(current_isa(), y, dy, dx, &SigmoidBackward);
    Ok(())
}

/// `y = tanh(x)`; `x` and `y` of any equal length, `y` **overwritten**. Called as
/// [`sigmoid_forward`] (see its example); saturates to exactly ±1.
pub fn tanh_forward(x: &[f32], y: &mut [f32]) -> Result<()> {
    check_same("y", "x", x.len(), y.len())?;
    map_unary(current_isa(), x, y, &Tanh);
    Ok(())
}

/// `x = tanh(x)` in place; used as [`relu_forward_inplace`]'s example shows.
pub fn tanh_forward_inplace(x: &mut [f32]) {
    map_inplace(current_isa(), x, &Tanh);
}

/// `dx = dy·(1 - y²)` from the saved output `y = tanh(z)`; `y`, `dy`, `dx` of equal
/// length, `dx` **overwritten**.
///
/// ```
/// use keel_kernels::activation::{tanh_backward, tanh_forward};
/// # fn main() -> keel_kernels::Result<()> {
/// // z, y, dy, dx: (2). The gradient matches a central difference of the forward.
/// let z = [0.3, -1.2];
/// let mut y = [0.0; 2];
/// tanh_forward(&z, &mut y)?;
/// let mut dx = [0.0; 2];
/// tanh_backward(&y, &[1.0, 1.0], &mut dx)?;
/// let h = 1e-2;
/// let (mut up, mut down) = ([0.0; 2], [0.0; 2]);
/// tanh_forward(&z.map(|z| z + h), &mut up)?;
/// tanh_forward(&z.map(|z| z - h), &mut down)?;
/// for j in 0..2 {
///     assert!((dx[j] - (up[j] - down[j]) / (2.0 * h)).abs() < 1e-3);
/// }
/// # Ok(())
/// # }
/// ```
pub fn tanh_backward(y: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<()> {
    check_same("dy", "y", y.len(), dy.len())?;
    check_same("dx", "y", y.len(), dx.len())?;
    map_binary(current_isa(), y, dy, dx, &TanhBackward);
    Ok(())
}

/// `y = max(x, 0)`; `x` and `y` of any equal length, `y` **overwritten**; NaN stays NaN.
///
/// ```
/// use keel_kernels::activation::relu_forward;
/// # fn main() -> keel_kernels::Result<()> {
/// // x, y: (4).
/// let x = [-2.0, 0.0, 0.5, f32::NAN];
/// let mut y = [0.0; 4];
/// relu_forward(&x, &mut y)?;
/// assert_eq!(y[..3], [0.0, 0.0, 0.5]);
/// assert!(y[3].is_nan());
/// # Ok(())
/// # }
/// ```
pub fn relu_forward(x: &[f32], y: &mut [f32]) -> Result<()> {
    check_same("y", "x", x.len(), y.len())?;
    map_unary(current_isa(), x, y, &Relu);
    Ok(())
}

/// `x = max(x, 0)` in place (any length; cannot fail, so no `Result`).
///
/// ```
/// use keel_kernels::activation::relu_forward_inplace;
///
/// let mut x = [-1.0, 2.0, -0.5];
/// relu_forward_inplace(&mut x);
/// assert_eq!(x, [0.0, 2.0, 0.0]);
/// ```
pub fn relu_forward_inplace(x: &mut [f32]) {
    map_inplace(current_isa(), x, &Relu);
}

/// `dx = dy·[y > 0]` from the saved output `y = relu(z)` (`y > 0 ⟺ z > 0`); `y`, `dy`,
/// `dx` of equal length, `dx` **overwritten**, NaN where `y` is NaN.
///
/// ```
/// use keel_kernels::activation::relu_backward;
/// # fn main() -> keel_kernels::Result<()> {
/// // y = relu(z) saved by the forward, dy, dx: (3).
/// let (y, dy) = ([0.0, 0.5, 3.0], [1.0, 2.0, 3.0]);
/// let mut dx = [f32::NAN; 3]; // overwritten, never read
/// relu_backward(&y, &dy, &mut dx)?;
/// assert_eq!(dx, [0.0, 2.0, 3.0]);
/// # Ok(())
/// # }
/// ```
pub fn relu_backward(y: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<()> {
    check_same("dy", "y", y.len(), dy.len())?;
    check_same("dx", "y", y.len(), dx.len())?;
    map_binary(current_isa(), y, dy, dx, &ReluBackward);
    Ok(())
}

/// `y = x` where `x > 0`, `slope·x` elsewhere (PyTorch's `negative_slope`, default 0.01);
/// `y` **overwritten**. `slope` must be finite and `>= 0` so that backward can work from `y`.
///
/// ```
/// use keel_kernels::activation::{leaky_relu_forward, leaky_relu_forward_inplace};
/// # fn main() -> keel_kernels::Result<()> {
/// // x, y: (3), slope 0.5.
/// let x = [-2.0, 0.0, 3.0];
/// let mut y = [0.0; 3];
/// leaky_relu_forward(0.5, &x, &mut y)?;
/// assert_eq!(y, [-1.0, 0.0, 3.0]);
/// // In place, the same values; a negative slope is an error.
/// let mut x = x;
/// leaky_relu_forward_inplace(0.5, &mut x)?;
/// assert_eq!(x, y);
/// assert!(leaky_relu_forward(-0.1, &x, &mut y).is_err());
/// # Ok(())
/// # }
/// ```
pub fn leaky_relu_forward(slope: f32, x: &[f32], y: &mut [f32]) -> Result<()> {
    check_slope(slope)?;
    check_same("y", "x", x.len(), y.len())?;
    map_unary(current_isa(), x, y, &LeakyRelu(slope));
    Ok(())
}

/// Leaky ReLU in place; `slope` as in [`leaky_relu_forward`], whose example uses both.
pub fn leaky_relu_forward_inplace(slope: f32, x: &mut [f32]) -> Result<()> {
    check_slope(slope)?;
    map_inplace(current_isa(), x, &LeakyRelu(slope));
    Ok(())
}

/// `dx = dy` where `y > 0`, `slope·dy` elsewhere, from the saved output `y` (for
/// `slope >= 0`, `y > 0 ⟺ z > 0`); `y`, `dy`, `dx` of equal length, `dx` **overwritten**,
/// NaN where `y` is NaN.
///
/// ```
/// use keel_kernels::activation::leaky_relu_backward;
/// # fn main() -> keel_kernels::Result<()> {
/// // y = leaky_relu(z) saved by the forward, dy, dx: (2), slope 0.5.
/// let (y, dy) = ([-1.0, 3.0], [2.0, 2.0]);
/// let mut dx = [0.0; 2];
/// leaky_relu_backward(0.5, &y, &dy, &mut dx)?;
/// assert_eq!(dx, [1.0, 2.0]);
/// # Ok(())
/// # }
/// ```
pub fn leaky_relu_backward(slope: f32, y: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<()> {
    check_slope(slope)?;
    check_same("dy", "y", y.len(), dy.len())?;
    check_same("dx", "y", y.len(), dx.len())?;
    map_binary(current_isa(), y, dy, dx, &LeakyReluBackward(slope));
    Ok(())
}

/// `a + b`.
struct Add;

impl Map2 for Add {
    #[inline(always)]
    fn map<V: SimdF32>(&self, a: V, b: V) -> V {
        a + b
    }
}

/// `max(a + b, 0)`, NaN staying NaN (as [`relu_forward`]).
struct AddRelu;

impl Map2 for AddRelu {
    #[inline(always)]
    fn map<V: SimdF32>(&self, a: V, b: V) -> V {
        Relu.map(a + b)
    }
}

/// `y = a + b` (the merge of residual branches); `a`, `b`, `y` of equal length, `y`
/// **overwritten**. Called as [`add_relu_forward`] (see its example).
pub fn add_forward(a: &[f32], b: &[f32], y: &mut [f32]) -> Result<()> {
    check_same("b", "a", a.len(), b.len())?;
    check_same("y", "a", a.len(), y.len())?;
    map_binary(current_isa(), a, b, y, &Add);
    Ok(())
}

/// `y = max(a + b, 0)`, a residual block's sum and ReLU in one pass; `a`, `b`, `y` of equal
/// length, `y` **overwritten**, NaN stays NaN.
///
/// ```
/// use keel_kernels::activation::add_relu_forward;
/// # fn main() -> keel_kernels::Result<()> {
/// // a, b, y: (3).
/// let (a, b) = ([1.0, -3.0, 0.25], [0.5, 1.0, 0.25]);
/// let mut y = [0.0; 3];
/// add_relu_forward(&a, &b, &mut y)?;
/// assert_eq!(y, [1.5, 0.0, 0.5]);
/// # Ok(())
/// # }
/// ```
pub fn add_relu_forward(a: &[f32], b: &[f32], y: &mut [f32]) -> Result<()> {
    check_same("b", "a", a.len(), b.len())?;
    check_same("y", "a", a.len(), y.len())?;
    map_binary(current_isa(), a, b, y, &AddRelu);
    Ok(())
}

/// `y += x` (gradients of branches summed into their input's); `x`, `y` of equal length,
/// `y` **accumulated**.
///
/// ```
/// use keel_kernels::activation::add_inplace;
/// # fn main() -> keel_kernels::Result<()> {
/// let mut y = [1.0, 2.0];
/// add_inplace(&mut y, &[10.0, 20.0])?;
/// assert_eq!(y, [11.0, 22.0]);
/// # Ok(())
/// # }
/// ```
pub fn add_inplace(y: &mut [f32], x: &[f32]) -> Result<()> {
    check_same("x", "y", y.len(), x.len())?;
    map_accumulate(current_isa(), x, y, &Add);
    Ok(())
}
