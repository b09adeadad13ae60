//! Batch normalisation over `(n, c, spatial)`: `BatchNorm1d` (`spatial = 1`, or the length
//! of a sequence) and `BatchNorm2d` (`spatial = h·w`).
//!
//! Channel `k` holds the `m = n·spatial` values `x[i][k][s]`; its statistics are reduced in
//! f64 over a fixed order (sample by sample, one f64 lane per vector lane within a plane,
//! see [`super::planes`]), two passes for the variance (`Σ(x - mean)²` after the mean), so
//! the result is accurate for data far from zero and the same on any number of threads.
//! Channels run in parallel and the element-wise passes run over groups of `(i, k)` planes
//! (of whole rows when `spatial = 1`), above the threshold; all of it on the instruction
//! set of [`current_isa`]. The element-wise passes use only `+ - * /` and `sqrt` (no fused
//! multiply-add), so given the statistics `y` and `dx` are the same bits on every
//! instruction set; the f64 statistics themselves may differ in their last bits between
//! instruction sets (the summation order follows the vector width).

use rayon::prelude::*;

use super::planes::{
    channel_sums, for_each_channel, for_each_plane, loads, ChannelPlanes, GradSums, PlaneBody, Squares, Sum,
};
use crate::error::{argument_error, check_len, check_min_len, shape_error, Result};
use crate::isa::current_isa;
use crate::simd::{serial_pass, Pass, SimdF32};

/// `n·c·spatial`, or a shape error when it overflows.
fn element_count(n: usize, c: usize, spatial: usize) -> Result<usize> {
    n.checked_mul(c).and_then(|nc| nc.checked_mul(spatial)).ok_or_else(|| {
        shape_error("(n, c, spatial)", "n·c·spatial to fit in usize", format!("({n}, {c}, {spatial})"))
    })
}

/// Checks `eps >= 0` (finite).
fn check_eps(eps: f32) -> Result<()> {
    if eps.is_finite() && eps >= 0.0 {
        Ok(())
    } else {
        Err(argument_error("eps", "finite eps >= 0", eps))
    }
}

/// Checks that training has more than one value per channel (PyTorch: "Expected more than
/// 1 value per channel when training").
fn check_values_per_channel(n: usize, spatial: usize) -> Result<usize> {
    match n.checked_mul(spatial) {
        Some(m) if m >= 2 => Ok(m),
        _ => Err(shape_error(
            "n·spatial",
            "more than 1 value per channel when training",
            format!("{n}·{spatial}"),
        )),
    }
}

/// Checks the per-channel slices `(name, len)` against `c`.
fn check_channel_slices(c: usize, slices: &[(&str, usize)]) -> Result<()> {
    for &(name, len) in slices {
        check_len(|| format!("{name} (c = {c})"), c, len)?;
    }
    Ok(())
}

/// Checks the `(n, c, spatial)` tensors `(name, len)`.
fn check_tensors(n: usize, c: usize, spatial: usize, slices: &[(&str, usize)]) -> Result<usize> {
    let total = element_count(n, c, spatial)?;
    for &(name, len) in slices {
        check_len(|| format!("{name} (n, c, spatial) = ({n}, {c}, {spatial})"), total, len)?;
    }
    Ok(total)
}

/// `y = (x - mean)·scale + shift`, one channel's plane in the forward passes.
struct Affine {
    mean: f32,
    scale: f32,
    shift: f32,
}

impl Pass<1, 1> for Affine {
    #[inline(always)]
    fn apply<V: SimdF32>(&self, at: usize, inputs: &[&[f32]; 1], outputs: &mut [&mut [f32]; 1]) {
        let x = V::load(&inputs[0][at..]);
        let y = (x - V::splat(self.mean)) * V::splat(self.scale) + V::splat(self.shift);
        y.store(&mut outputs[0][at..]);
    }
}

/// A `(n, c)` row of the training forward (`spatial = 1`), where the per-channel slices
/// run along the row: `y = (x - μ)·(γ·invstd) + β`.
struct TrainRow<'a> {
    mean: &'a [f32],
    gamma: &'a [f32],
    invstd: &'a [f32],
    beta: &'a [f32],
}

impl Pass<5, 1> for TrainRow<'_> {
    #[inline(always)]
    fn apply<V: SimdF32>(&self, at: usize, inputs: &[&[f32]; 5], outputs: &mut [&mut [f32]; 1]) {
        let [x, mean, gamma, invstd, beta] = loads::<V, 5>(inputs, at);
        ((x - mean) * (gamma * invstd) + beta).store(&mut outputs[0][at..]);
    }
}

impl PlaneBody<1> for TrainRow<'_> {
    #[inline(always)]
    fn plane<V: SimdF32>(&self, _: usize, y: &mut [f32], [x]: [&[f32]; 1]) {
        serial_pass::<V, _, 5, 1>(self, [x, self.mean, self.gamma, self.invstd, self.beta], [y]);
    }
}

/// A `(n, c)` row of the evaluation forward: `y = (x - r_μ)·(γ/√(r_σ² + eps)) + β`.
struct EvalRow<'a> {
    mean: &'a [f32],
    gamma: &'a [f32],
    var: &'a [f32],
    beta: &'a [f32],
    eps: f32,
}

impl Pass<5, 1> for EvalRow<'_> {
    #[inline(always)]
    fn apply<V: SimdF32>(&self, at: usize, inputs: &[&[f32]; 5], outputs: &mut [&mut [f32]; 1]) {
        let [x, mean, gamma, var, beta] = loads::<V, 5>(inputs, at);
        ((x - mean) * (gamma / (var + V::splat(self.eps)).sqrt()) + beta).store(&mut outputs[0][at..]);
    }
}

impl PlaneBody<1> for EvalRow<'_> {
    #[inline(always)]
    fn plane<V: SimdF32>(&self, _: usize, y: &mut [f32], [x]: [&[f32]; 1]) {
        serial_pass::<V, _, 5, 1>(self, [x, self.mean, self.gamma, self.var, self.beta], [y]);
    }
}

/// `dx = scale·((dy - mean_dy) - (x - mean)·slope)`, one channel's plane of the backward.
struct BackwardPlane {
    scale: f32,
    mean_dy: f32,
    slope: f32,
    mean: f32,
}

impl Pass<2, 1> for BackwardPlane {
    #[inline(always)]
    fn apply<V: SimdF32>(&self, at: usize, inputs: &[&[f32]; 2], outputs: &mut [&mut [f32]; 1]) {
        let [dy, x] = loads::<V, 2>(inputs, at);
        let (mean_dy, mean) = (V::splat(self.mean_dy), V::splat(self.mean));
        let dx = V::splat(self.scale) * ((dy - mean_dy) - (x - mean) * V::splat(self.slope));
        dx.store(&mut outputs[0][at..]);
    }
}

/// A `(n, c)` row of the backward: `dx = (γ·invstd)·((dy - mean_dy) - (x - μ)·slope)`.
struct BackwardRow<'a> {
    mean: &'a [f32],
    gamma: &'a [f32],
    invstd: &'a [f32],
    mean_dy: &'a [f32],
    slope: &'a [f32],
}

impl Pass<7, 1> for BackwardRow<'_> {
    #[inline(always)]
    fn apply<V: SimdF32>(&self, at: usize, inputs: &[&[f32]; 7], outputs: &mut [&mut [f32]; 1]) {
        let [dy, x, mean, gamma, invstd, mean_dy, slope] = loads::<V, 7>(inputs, at);
        ((gamma * invstd) * ((dy - mean_dy) - (x - mean) * slope)).store(&mut outputs[0][at..]);
    }
}

impl PlaneBody<2> for BackwardRow<'_> {
    #[inline(always)]
    fn plane<V: SimdF32>(&self, _: usize, dx: &mut [f32], [dy, x]: [&[f32]; 2]) {
        let inputs = [dy, x, self.mean, self.gamma, self.invstd, self.mean_dy, self.slope];
        serial_pass::<V, _, 7, 1>(self, inputs, [dx]);
    }
}

/// Batch-norm forward in training mode (`nn.BatchNorm{1,2}d.train()`), shapes row-major:
/// - `x` `(n, c, spatial)`: read; `y` `(n, c, spatial)`: **overwritten** with
///   `γ·(x - μ)/√(σ² + eps) + β`, where `μ`, `σ²` are channel `k`'s batch mean and **biased**
///   variance over its `n·spatial` values;
/// - `gamma`, `beta` `(c)`: read;
/// - `running_mean`, `running_var` `(c)`: updated in place,
///   `r ← (1 - momentum)·r + momentum·stat` with the **unbiased** variance
///   `σ²·m/(m - 1)` (`momentum` 0.1 in PyTorch);
/// - `save_mean`, `save_invstd` `(c)`: **overwritten** with `μ` and `1/√(σ² + eps)`, what
///   [`batchnorm_backward`] needs.
///
/// Statistics are reduced in f64 (two passes). Errors: a slice length that does not match
/// the shape, `n·spatial < 2` (PyTorch: "Expected more than 1 value per channel when
/// training"), `eps` negative or not finite, `momentum` outside `[0, 1]`. `c = 0` is a no-op.
///
/// ```
/// use keel_kernels::norm::batchnorm_forward_train;
/// # fn main() -> keel_kernels::Result<()> {
/// // x, y: (n 2, c 2, spatial 1); every per-channel slice: (c 2). eps = 0 keeps the
/// // numbers round: channel 0 holds 1, 3 (mean 2, variance 1), channel 1 holds 10, 18
/// // (mean 14, variance 16).
/// let x = [1.0, 10.0, 3.0, 18.0];
/// let (gamma, beta) = ([1.0, 2.0], [0.0, 0.5]);
/// let (mut running_mean, mut running_var) = ([0.0; 2], [1.0; 2]);
/// let (mut y, mut save_mean, mut save_invstd) = ([0.0; 4], [0.0; 2], [0.0; 2]);
/// batchnorm_forward_train(
///     2, 2, 1, &x, &gamma, &beta, 0.0, 0.1, &mut running_mean, &mut running_var,
///     &mut y, &mut save_mean, &mut save_invstd,
/// )?;
/// assert_eq!(y, [-1.0, -1.5, 1.0, 2.5]); // γ·(x - μ)/σ + β
/// assert_eq!((save_mean, save_invstd), ([2.0, 14.0], [1.0, 0.25]));
/// // Running statistics: 0.9·old + 0.1·new, with the unbiased variances 2 and 32.
/// let close = |a: [f32; 2], b: [f32; 2]| (a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6;
/// assert!(close(running_mean, [0.2, 1.4]) && close(running_var, [1.1, 4.1]));
/// # Ok(())
/// # }
/// ```
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_forward_train(
    n: usize,
    c: usize,
    spatial: usize,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    momentum: f32,
    running_mean: &mut [f32],
    running_var: &mut [f32],
    y: &mut [f32],
    save_mean: &mut [f32],
    save_invstd: &mut [f32],
) -> Result<()> {
    let m = check_values_per_channel(n, spatial)?;
    let total = check_tensors(n, c, spatial, &[("x", x.len()), ("y", y.len())])?;
    check_channel_slices(
        c,
        &[
            ("gamma", gamma.len()),
            ("beta", beta.len()),
            ("running_mean", running_mean.len()),
            ("running_var", running_var.len()),
            ("save_mean", save_mean.len()),
            ("save_invstd", save_invstd.len()),
        ],
    )?;
    check_eps(eps)?;
    if !(0.0..=1.0).contains(&momentum) {
        return Err(argument_error("momentum", "0 <= momentum <= 1", momentum));
    }
    let (mf, mom) = (m as f64, f64::from(momentum));
    let isa = current_isa();
    let stats = save_mean
        .par_iter_mut()
        .zip(save_invstd.par_iter_mut())
        .zip(running_mean.par_iter_mut().zip(running_var.par_iter_mut()));
    for_each_channel(total, stats, |k, ((mean_out, invstd_out), (run_mean, run_var))| {
        let [sum] = channel_sums(isa, (c, spatial, k), x, x, &Sum);
        let mean = sum / mf;
        let [squares] = channel_sums(isa, (c, spatial, k), x, x, &Squares(mean));
        let var = squares / mf;
        *mean_out = mean as f32;
        *invstd_out = (1.0 / (var + f64::from(eps)).sqrt()) as f32;
        *run_mean = ((1.0 - mom) * f64::from(*run_mean) + mom * mean) as f32;
        *run_var = ((1.0 - mom) * f64::from(*run_var) + mom * var * mf / (mf - 1.0)) as f32;
    });
    if total == 0 {
        return Ok(());
    }
    let (save_mean, save_invstd) = (&*save_mean, &*save_invstd);
    if spatial == 1 {
        // One element per plane: run along the rows instead, where the per-channel
        // coefficients are contiguous too.
        let row = TrainRow { mean: save_mean, gamma, invstd: save_invstd, beta };
        for_each_plane(c, y, [x], &row);
    } else {
        let pass_of =
            |k: usize| Affine { mean: save_mean[k], scale: gamma[k] * save_invstd[k], shift: beta[k] };
        for_each_plane(spatial, y, [x], &ChannelPlanes { c, pass_of });
    }
    Ok(())
}

/// Batch-norm forward in evaluation mode (`.eval()`): `y = γ·(x - r_μ)/√(r_σ² + eps) + β`
/// with the running statistics.
/// - `x` `(n, c, spatial)`: read; `y` `(n, c, spatial)`: **overwritten**;
/// - `gamma`, `beta`, `running_mean`, `running_var` `(c)`: read.
///
/// Errors: a slice length that does not match the shape, `eps` negative or not finite.
/// Any size may be zero (a no-op).
///
/// ```
/// use keel_kernels::norm::batchnorm_forward_eval;
/// # fn main() -> keel_kernels::Result<()> {
/// // x, y: (n 1, c 2, spatial 2); gamma, beta, running_mean, running_var: (c 2).
/// let x = [3.0, 5.0, 2.0, -1.0];
/// let (gamma, beta) = ([1.0, 3.0], [0.0, 1.0]);
/// let (running_mean, running_var) = ([1.0, 0.0], [4.0, 1.0]);
/// let mut y = [0.0; 4];
/// batchnorm_forward_eval(1, 2, 2, &x, &gamma, &beta, &running_mean, &running_var, 0.0, &mut y)?;
/// // Channel 0: (x - 1)/2; channel 1: 3·x + 1.
/// assert_eq!(y, [1.0, 2.0, 7.0, -2.0]);
/// # Ok(())
/// # }
/// ```
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_forward_eval(
    n: usize,
    c: usize,
    spatial: usize,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    running_mean: &[f32],
    running_var: &[f32],
    eps: f32,
    y: &mut [f32],
) -> Result<()> {
    let total = check_tensors(n, c, spatial, &[("x", x.len()), ("y", y.len())])?;
    check_channel_slices(
        c,
        &[
            ("gamma", gamma.len()),
            ("beta", beta.len()),
            ("running_mean", running_mean.len()),
            ("running_var", running_var.len()),
        ],
    )?;
    check_eps(eps)?;
    if total == 0 {
        return Ok(());
    }
    if spatial == 1 {
        // Along the rows, as in the training forward.
        let row = EvalRow { mean: running_mean, gamma, var: running_var, beta, eps };
        for_each_plane(c, y, [x], &row);
    } else {
        let pass_of = |k: usize| Affine {
            mean: running_mean[k],
            scale: gamma[k] / (running_var[k] + eps).sqrt(),
            shift: beta[k],
        };
        for_each_plane(spatial, y, [x], &ChannelPlanes { c, pass_of });
    }
    Ok(())
}

/// Scratch length (f32 elements) [`batchnorm_backward`] needs for `c` channels: two
/// per-channel coefficients, `mean(dy)` and `invstd·mean(dy·x̂)`.
pub fn batchnorm_backward_workspace_len(c: usize) -> usize {
    2 * c
}

/// Batch-norm backward of [`batchnorm_forward_train`] (batch statistics), with
/// `x̂ = (x - μ)·invstd`, `m = n·spatial`:
/// - `x`, `dy` `(n, c, spatial)`: read (the forward input and the output gradient);
/// - `gamma`, `save_mean`, `save_invstd` `(c)`: read (the forward's `save_*` outputs);
/// - `workspace`: at least [`batchnorm_backward_workspace_len`]`(c)` elements, scratch;
/// - `dx` `(n, c, spatial)`: **overwritten** with
///   `γ·invstd·(dy - mean(dy) - x̂·mean(dy·x̂))` (means over the channel);
/// - `dgamma`, `dbeta` `(c)`: **accumulated**, `+= Σ dy·x̂` and `+= Σ dy`.
///
/// The channel sums are reduced in f64. Errors: a slice length that does not match the
/// shape, `n·spatial < 2` (training mode only). `c = 0` is a no-op.
///
/// ```
/// use keel_kernels::norm::{batchnorm_backward, batchnorm_backward_workspace_len};
/// # fn main() -> keel_kernels::Result<()> {
/// // x, dy, dx: (n 4, c 1, spatial 1); gamma, save_mean, save_invstd, dgamma, dbeta: (c 1).
/// // The forward saw x = [-1, -1, 1, 1]: mean 0, biased variance 1 (eps 0), so x̂ = x.
/// let (x, dy) = ([-1.0, -1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]);
/// let (save_mean, save_invstd) = ([0.0], [1.0]);
/// let mut workspace = vec![0.0; batchnorm_backward_workspace_len(1)];
/// let (mut dx, mut dgamma, mut dbeta) = ([0.0; 4], [10.0], [10.0]);
/// batchnorm_backward(
///     4, 1, 1, &x, &dy, &[1.0], &save_mean, &save_invstd, &mut workspace,
///     &mut dx, &mut dgamma, &mut dbeta,
/// )?;
/// // dx = dy - mean(dy) - x̂·mean(dy·x̂) = dy - 0.25 + 0.25·x̂.
/// assert_eq!(dx, [0.5, -0.5, 0.0, 0.0]);
/// // Accumulated: dgamma += Σ dy·x̂ = -1, dbeta += Σ dy = 1.
/// assert_eq!((dgamma, dbeta), ([9.0], [11.0]));
/// # Ok(())
/// # }
/// ```
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_backward(
    n: usize,
    c: usize,
    spatial: usize,
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    save_mean: &[f32],
    save_invstd: &[f32],
    workspace: &mut [f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) -> Result<()> {
    let m = check_values_per_channel(n, spatial)?;
    let total = check_tensors(n, c, spatial, &[("x", x.len()), ("dy", dy.len()), ("dx", dx.len())])?;
    check_channel_slices(
        c,
        &[
            ("gamma", gamma.len()),
            ("save_mean", save_mean.len()),
            ("save_invstd", save_invstd.len()),
            ("dgamma", dgamma.len()),
            ("dbeta", dbeta.len()),
        ],
    )?;
    let needed = batchnorm_backward_workspace_len(c);
    check_min_len(|| format!("workspace (2·c, c = {c})"), needed, workspace.len())?;
    if total == 0 {
        return Ok(());
    }
    let mf = m as f64;
    let isa = current_isa();
    // mean_dy[k] = mean(dy), slope[k] = invstd·mean(dy·x̂): dx is then
    // γ·invstd·((dy - mean_dy[k]) - (x - μ)·slope[k]).
    let (mean_dy, slope) = workspace[..needed].split_at_mut(c);
    let coefficients =
        mean_dy.par_iter_mut().zip(slope.par_iter_mut()).zip(dgamma.par_iter_mut().zip(dbeta.par_iter_mut()));
    for_each_channel(total, coefficients, |k, ((mean_dy, slope), (dgamma, dbeta))| {
        let (mean, invstd) = (f64::from(save_mean[k]), f64::from(save_invstd[k]));
        let [sum_dy, sum_dy_xc] = channel_sums(isa, (c, spatial, k), dy, x, &GradSums(mean));
        let sum_dy_xhat = sum_dy_xc * invstd;
        *dbeta += sum_dy as f32;
        *dgamma += sum_dy_xhat as f32;
        *mean_dy = (sum_dy / mf) as f32;
        *slope = (invstd * sum_dy_xhat / mf) as f32;
    });
    apply_backward((c, spatial), [x, dy], [gamma, save_mean, save_invstd, mean_dy, slope], dx);
    Ok(())
}

/// `dx = γ·invstd·((dy - mean_dy) - (x - μ)·slope)` with per-channel coefficients
/// `[gamma, mean, invstd, mean_dy, slope]`, over `[x, dy]` `(n, c, spatial)` (checked).
fn apply_backward(
    (c, spatial): (usize, usize),
    [x, dy]: [&[f32]; 2],
    [gamma, mean, invstd, mean_dy, slope]: [&[f32]; 5],
    dx: &mut [f32],
) {
    if spatial == 1 {
        // Along the rows, as in the forward.
        let row = BackwardRow { mean, gamma, invstd, mean_dy, slope };
        for_each_plane(c, dx, [dy, x], &row);
    } else {
        let pass_of = |k: usize| BackwardPlane {
            scale: gamma[k] * invstd[k],
            mean_dy: mean_dy[k],
            slope: slope[k],
            mean: mean[k],
        };
        for_each_plane(spatial, dx, [dy, x], &ChannelPlanes { c, pass_of });
    }
}

/// The training passes in parts, for statistics gathered beyond one call (batch norm
/// synchronised across the processes of data-parallel training, which sum the parts'
/// sums between the passes). Per channel `k` of `x` `(n, c, spatial)`, in f64 over the same
/// order as [`batchnorm_forward_train`]: `sums[k] = Σ x` (**overwritten**, `c` values).
/// Errors: a slice length that does not match the shape.
pub fn batchnorm_channel_sums(n: usize, c: usize, spatial: usize, x: &[f32], sums: &mut [f64]) -> Result<()> {
    let total = check_tensors(n, c, spatial, &[("x", x.len())])?;
    check_channel_slices(c, &[("sums", sums.len())])?;
    let isa = current_isa();
    for_each_channel(total, sums.par_iter_mut(), |k, sum| {
        [*sum] = channel_sums(isa, (c, spatial, k), x, x, &Sum);
    });
    Ok(())
}

/// Per channel `k`: `squares[k] = Σ (x - mean[k])²` (**overwritten**), the variance's second
/// pass about a mean from [`batchnorm_channel_sums`]. Errors as there.
pub fn batchnorm_channel_squares(
    n: usize,
    c: usize,
    spatial: usize,
    x: &[f32],
    mean: &[f64],
    squares: &mut [f64],
) -> Result<()> {
    let total = check_tensors(n, c, spatial, &[("x", x.len())])?;
    check_channel_slices(c, &[("mean", mean.len()), ("squares", squares.len())])?;
    let isa = current_isa();
    for_each_channel(total, squares.par_iter_mut(), |k, square| {
        [*square] = channel_sums(isa, (c, spatial, k), x, x, &Squares(mean[k]));
    });
    Ok(())
}

/// Per channel `k`: `sum_dy[k] = Σ dy` and `sum_dy_xc[k] = Σ dy·(x - mean[k])`
/// (**overwritten**), the backward's sums, for `x`, `dy` `(n, c, spatial)`. Errors: a slice
/// length that does not match the shape.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_grad_sums(
    n: usize,
    c: usize,
    spatial: usize,
    x: &[f32],
    dy: &[f32],
    mean: &[f32],
    sum_dy: &mut [f64],
    sum_dy_xc: &mut [f64],
) -> Result<()> {
    let total = check_tensors(n, c, spatial, &[("x", x.len()), ("dy", dy.len())])?;
    check_channel_slices(
        c,
        &[("mean", mean.len()), ("sum_dy", sum_dy.len()), ("sum_dy_xc", sum_dy_xc.len())],
    )?;
    let isa = current_isa();
    for_each_channel(total, sum_dy.par_iter_mut().zip(sum_dy_xc.par_iter_mut()), |k, (dy_sum, xc_sum)| {
        [*dy_sum, *xc_sum] = channel_sums(isa, (c, spatial, k), dy, x, &GradSums(f64::from(mean[k])));
    });
    Ok(())
}

/// The backward's element-wise pass with given per-channel coefficients (`(c)` each):
/// `dx = γ·invstd·((dy - mean_dy) - (x - μ)·slope)` (**overwritten**), `x`, `dy`, `dx`
/// `(n, c, spatial)`; [`batchnorm_backward`] takes `mean_dy = mean(dy)` and
/// `slope = invstd·mean(dy·x̂)` over the batch. Errors: a slice length that does not match
/// the shape.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_backward_apply(
    n: usize,
    c: usize,
    spatial: usize,
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    mean: &[f32],
    invstd: &[f32],
    mean_dy: &[f32],
    slope: &[f32],
    dx: &mut [f32],
) -> Result<()> {
    let total = check_tensors(n, c, spatial, &[("x", x.len()), ("dy", dy.len()), ("dx", dx.len())])?;
    check_channel_slices(
        c,
        &[
            ("gamma", gamma.len()),
            ("mean", mean.len()),
            ("invstd", invstd.len()),
            ("mean_dy", mean_dy.len()),
            ("slope", slope.len()),
        ],
    )?;
    if total > 0 {
        apply_backward((c, spatial), [x, dy], [gamma, mean, invstd, mean_dy, slope], dx);
    }
    Ok(())
}
