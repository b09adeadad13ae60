//! Batch-norm backward in evaluation mode ("frozen" batch norm: fine-tuning with `.eval()`
//! statistics), where the running statistics are constants and the layer is the per-channel
//! affine map `y = γ·(x - r_μ)·s + β`, `s = 1/√(r_σ² + eps)`:
//! `dx = dy·γ·s`, `dγ = Σ dy·(x - r_μ)·s`, `dβ = Σ dy`.
//!
//! The channel sums are reduced in f64 in a fixed order (samples in turn, one f64 lane per
//! vector lane within a plane, two add chains), channels in parallel above the
//! threshold, so the result is the same on any number of threads (for a given instruction
//! set); `dx` runs over groups of whole planes. Both on the instruction set of
//! [`current_isa`]; `dx` (a product) is the same bits on all of them.

use rayon::prelude::*;

use super::planes::{
    channel_sums, for_each_channel, for_each_plane, loads, ChannelPlanes, GradSums, PlaneBody,
};
use crate::error::{argument_error, check_len, shape_error, Result};
use crate::isa::current_isa;
use crate::simd::{serial_pass, Pass, SimdF32};

/// `γ/√(var + eps)`, the eval-mode scale of one channel.
fn scale(gamma: f32, var: f32, eps: f32) -> f32 {
    gamma / (var + eps).sqrt()
}

/// Batch-norm backward of [`batchnorm_forward_eval`](super::batchnorm_forward_eval) (the
/// running statistics are constants), shapes row-major:
/// - `x`, `dy` `(n, c, spatial)`: read (the forward input and the output gradient);
/// - `gamma`, `running_mean`, `running_var` `(c)`: read, as in the forward; `eps` as there;
/// - `dx` `(n, c, spatial)`: **overwritten** with `dy·γ/√(r_σ² + eps)`;
/// - `dgamma`, `dbeta` `(c)`: **accumulated**, `+= Σ dy·(x - r_μ)/√(r_σ² + eps)` and
///   `+= Σ dy` over the channel's `n·spatial` values (reduced in f64).
///
/// Errors: a slice length that does not match the shape, `eps` negative or not finite. Any
/// size may be zero (a no-op; empty channels add 0).
///
/// ```
/// use keel_kernels::norm::batchnorm_backward_eval;
/// # fn main() -> keel_kernels::Result<()> {
/// // x, dy, dx: (n 2, c 1, spatial 1); gamma, running_mean, running_var, dgamma, dbeta: (c 1).
/// // Running mean 1, variance 4, eps 0, gamma 3: y = 3·(x - 1)/2 + β.
/// let (x, dy) = ([3.0, 5.0], [1.0, 2.0]);
/// let (mut dx, mut dgamma, mut dbeta) = ([0.0; 2], [0.0], [0.0]);
/// batchnorm_backward_eval(2, 1, 1, &x, &dy, &[3.0], &[1.0], &[4.0], 0.0, &mut dx, &mut dgamma, &mut dbeta)?;
/// assert_eq!(dx, [1.5, 3.0]); // dy·3/2
/// assert_eq!((dgamma, dbeta), ([5.0], [3.0])); // Σ dy·(x - 1)/2, Σ dy
/// # Ok(())
/// # }
/// ```
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_backward_eval(
    n: usize,
    c: usize,
    spatial: usize,
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    running_mean: &[f32],
    running_var: &[f32],
    eps: f32,
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) -> Result<()> {
    let total = n.checked_mul(c).and_then(|nc| nc.checked_mul(spatial)).ok_or_else(|| {
        shape_error("(n, c, spatial)", "n·c·spatial to fit in usize", format!("({n}, {c}, {spatial})"))
    })?;
    for (name, len) in [("x", x.len()), ("dy", dy.len()), ("dx", dx.len())] {
        check_len(|| format!("{name} (n, c, spatial) = ({n}, {c}, {spatial})"), total, len)?;
    }
    for (name, len) in [
        ("gamma", gamma.len()),
        ("running_mean", running_mean.len()),
        ("running_var", running_var.len()),
        ("dgamma", dgamma.len()),
        ("dbeta", dbeta.len()),
    ] {
        check_len(|| format!("{name} (c = {c})"), c, len)?;
    }
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(argument_error("eps", "finite eps >= 0", eps));
    }
    if total == 0 {
        return Ok(());
    }
    // Parameter gradients: one channel per task, its planes in sample order.
    let isa = current_isa();
    let grads = dgamma.par_iter_mut().zip(dbeta.par_iter_mut());
    for_each_channel(total, grads, |k, (dgamma, dbeta)| {
        let mean = f64::from(running_mean[k]);
        let [sum_dy, sum_dy_xc] = channel_sums(isa, (c, spatial, k), dy, x, &GradSums(mean));
        *dbeta += sum_dy as f32;
        *dgamma += (sum_dy_xc * f64::from(1.0 / (running_var[k] + eps).sqrt())) as f32;
    });
    // Input gradient: whole planes per chunk (a plane shares one scale); with `spatial = 1`,
    // whole rows, where the channel scales run along the row.
    if spatial == 1 {
        for_each_plane(c, dx, [dy], &ScaleRow { gamma, var: running_var, eps });
    } else {
        let pass_of = |k: usize| ScalePlane(scale(gamma[k], running_var[k], eps));
        for_each_plane(spatial, dx, [dy], &ChannelPlanes { c, pass_of });
    }
    Ok(())
}

/// `dx = dy·scale`, one channel's plane.
struct ScalePlane(f32);

impl Pass<1, 1> for ScalePlane {
    #[inline(always)]
    fn apply<V: SimdF32>(&self, at: usize, inputs: &[&[f32]; 1], outputs: &mut [&mut [f32]; 1]) {
        (V::load(&inputs[0][at..]) * V::splat(self.0)).store(&mut outputs[0][at..]);
    }
}

/// A `(n, c)` row (`spatial = 1`): `dx = dy·(γ/√(r_σ² + eps))`, the scales along the row.
struct ScaleRow<'a> {
    gamma: &'a [f32],
    var: &'a [f32],
    eps: f32,
}

impl Pass<3, 1> for ScaleRow<'_> {
    #[inline(always)]
    fn apply<V: SimdF32>(&self, at: usize, inputs: &[&[f32]; 3], outputs: &mut [&mut [f32]; 1]) {
        let [dy, gamma, var] = loads::<V, 3>(inputs, at);
        (dy * (gamma / (var + V::splat(self.eps)).sqrt())).store(&mut outputs[0][at..]);
    }
}

impl PlaneBody<1> for ScaleRow<'_> {
    #[inline(always)]
    fn plane<V: SimdF32>(&self, _: usize, dx: &mut [f32], [dy]: [&[f32]; 1]) {
        serial_pass::<V, _, 3, 1>(self, [dy, self.gamma, self.var], [dx]);
    }
}

/// Scalar reference for [`batchnorm_backward_eval`]: the formulas element by element, sums in
/// f64 in sample order.
pub mod reference {
    /// See [`super::batchnorm_backward_eval`]; lengths are the caller's responsibility.
    #[allow(clippy::too_many_arguments)]
    pub fn batchnorm_backward_eval(
        n: usize,
        c: usize,
        spatial: usize,
        x: &[f32],
        dy: &[f32],
        gamma: &[f32],
        running_mean: &[f32],
        running_var: &[f32],
        eps: f32,
        dx: &mut [f32],
        dgamma: &mut [f32],
        dbeta: &mut [f32],
    ) {
        for k in 0..c {
            let invstd = 1.0 / (running_var[k] + eps).sqrt();
            let (mut sum_dy, mut sum_dy_xhat) = (0.0f64, 0.0f64);
            for i in 0..n {
                for s in 0..spatial {
                    let j = (i * c + k) * spatial + s;
                    dx[j] = dy[j] * (gamma[k] / (running_var[k] + eps).sqrt());
                    sum_dy += f64::from(dy[j]);
                    sum_dy_xhat += f64::from(dy[j]) * (f64::from(x[j]) - f64::from(running_mean[k]));
                }
            }
            dbeta[k] += sum_dy as f32;
            dgamma[k] += (sum_dy_xhat * f64::from(invstd)) as f32;
        }
    }
}
