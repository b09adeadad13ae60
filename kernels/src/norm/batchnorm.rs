//! Batch normalisation over `(n, c, spatial)`: `BatchNorm1d` (`spatial = 1`, or the length
//! of a sequence) and `BatchNorm2d` (`spatial = h·w`).
//!
//! Channel `k` holds the `m = n·spatial` values `x[i][k][s]`; its statistics are reduced in
//! f64 over a fixed order (sample by sample, eight f64 lanes within a plane), two
//! passes for the variance (`Σ(x - mean)²` after the mean), so the result is accurate for
//! data far from zero and the same on any number of threads. Channels run in parallel and
//! the element-wise passes run over groups of `(i, k)` planes (of whole rows when
//! `spatial = 1`), above the threshold.

use rayon::prelude::*;
use wide::{f32x8, f64x4};

use crate::error::{argument_error, check_len, check_min_len, shape_error, Result};
use crate::parallel::{chunk_len, MIN_PARALLEL_ELEMENTS};

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

/// Eight floats widened to f64, in two vectors of four.
fn widen(v: &[f32]) -> [f64x4; 2] {
    let v = &v[..8];
    [
        f64x4::from(core::array::from_fn::<f64, 4, _>(|j| f64::from(v[j]))),
        f64x4::from(core::array::from_fn::<f64, 4, _>(|j| f64::from(v[4 + j]))),
    ]
}

/// Per-channel f64 sums `Σ f(a, b)` (`f` element-wise on four lanes) over channel `k` of two
/// `(n, c, spatial)` tensors, in a fixed order: planes `i = 0..n` in turn; within a plane,
/// element `s` of the whole vectors into lane `s mod 8`, the `spatial mod 8` tail elements
/// into a separate scalar; at the end the eight lanes, then the tail, are added.
fn channel_sums<const R: usize>(
    c: usize,
    spatial: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    f: impl Fn(f64x4, f64x4) -> [f64x4; R],
) -> [f64; R] {
    let mut lanes = [[f64x4::splat(0.0); 2]; R];
    let mut tail = [0.0f64; R];
    let mut add_to_tail = |u: f32, v: f32| {
        let terms = f(f64x4::splat(f64::from(u)), f64x4::splat(f64::from(v)));
        for (t, term) in tail.iter_mut().zip(terms) {
            *t += term.to_array()[0];
        }
    };
    if spatial == 1 {
        // Every element is a tail element: the order below, without slicing planes of one.
        for j in (k..a.len()).step_by(c) {
            add_to_tail(a[j], b[j]);
        }
    } else {
        let body = spatial - spatial % 8;
        for start in (k * spatial..a.len()).step_by(c * spatial) {
            let (pa, pb) = (&a[start..start + spatial], &b[start..start + spatial]);
            for base in (0..body).step_by(8) {
                let (wa, wb) = (widen(&pa[base..]), widen(&pb[base..]));
                for half in 0..2 {
                    let terms = f(wa[half], wb[half]);
                    for q in 0..R {
                        lanes[q][half] += terms[q];
                    }
                }
            }
            for j in body..spatial {
                add_to_tail(pa[j], pb[j]);
            }
        }
    }
    core::array::from_fn(|q| {
        let [lo, hi] = lanes[q].map(f64x4::to_array);
        lo.iter().chain(&hi).sum::<f64>() + tail[q]
    })
}

/// Runs `f(channel, ...)` for every channel, in parallel when the tensor is big enough.
fn for_each_channel<T: Send>(
    total: usize,
    items: impl IndexedParallelIterator<Item = T>,
    f: impl Fn(usize, T) + Sync + Send,
) {
    if total >= MIN_PARALLEL_ELEMENTS {
        items.enumerate().for_each(|(k, item)| f(k, item));
    } else {
        // A minimum piece length of usize::MAX never splits: rayon then folds the items in
        // order on the calling thread, without entering the pool.
        items.with_min_len(usize::MAX).enumerate().for_each(|(k, item)| f(k, item));
    }
}

/// Runs `f(plane, out, a, b)` over the `(i, k)` planes (`plane = i·c + k`) of `(n, c,
/// spatial)` tensors, in parallel groups of whole planes above the threshold.
fn for_each_plane(
    spatial: usize,
    out: &mut [f32],
    a: &[f32],
    b: &[f32],
    f: impl Fn(usize, &mut [f32], &[f32], &[f32]) + Sync,
) {
    let total = out.len();
    let run = |first_plane: usize, out: &mut [f32], a: &[f32], b: &[f32]| {
        let planes = out.chunks_mut(spatial).zip(a.chunks(spatial).zip(b.chunks(spatial)));
        for (q, (o, (pa, pb))) in planes.enumerate() {
            f(first_plane + q, o, pa, pb);
        }
    };
    // A multiple of `spatial` (or everything), so chunks hold whole planes.
    let chunk = chunk_len(total, spatial);
    if chunk >= total {
        run(0, out, a, b);
    } else {
        out.par_chunks_mut(chunk)
            .zip(a.par_chunks(chunk).zip(b.par_chunks(chunk)))
            .enumerate()
            .for_each(|(i, (o, (pa, pb)))| run(i * chunk / spatial, o, pa, pb));
    }
}

/// `y = (x - mean)·scale + shift` over one plane.
fn affine_plane(x: &[f32], y: &mut [f32], mean: f32, scale: f32, shift: f32) {
    let (m8, s8, b8) = (f32x8::splat(mean), f32x8::splat(scale), f32x8::splat(shift));
    let mut ys = y.chunks_exact_mut(8);
    let mut xs = x.chunks_exact(8);
    for (yv, xv) in (&mut ys).zip(&mut xs) {
        let v = (f32x8::new(core::array::from_fn(|j| xv[j])) - m8) * s8 + b8;
        yv.copy_from_slice(&v.to_array());
    }
    for (yv, &xv) in ys.into_remainder().iter_mut().zip(xs.remainder()) {
        *yv = (xv - mean) * scale + shift;
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
    let stats = save_mean
        .par_iter_mut()
        .zip(save_invstd.par_iter_mut())
        .zip(running_mean.par_iter_mut().zip(running_var.par_iter_mut()));
    for_each_channel(total, stats, |k, ((mean_out, invstd_out), (run_mean, run_var))| {
        let [sum] = channel_sums(c, spatial, k, x, x, |v, _| [v]);
        let mean = sum / mf;
        let mean4 = f64x4::splat(mean);
        let [squares] = channel_sums(c, spatial, k, x, x, |v, _| [(v - mean4) * (v - mean4)]);
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
        // coefficients are contiguous too (a loop the compiler vectorises).
        for_each_plane(c, y, x, x, |_, y, x, _| {
            let coefficients = save_mean.iter().zip(gamma.iter().zip(save_invstd)).zip(beta);
            for ((y, &x), ((&mean, (&g, &invstd)), &b)) in y.iter_mut().zip(x).zip(coefficients) {
                *y = (x - mean) * (g * invstd) + b;
            }
        });
    } else {
        for_each_plane(spatial, y, x, x, |plane, y, x, _| {
            let k = plane % c;
            affine_plane(x, y, save_mean[k], gamma[k] * save_invstd[k], beta[k]);
        });
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
        for_each_plane(c, y, x, x, |_, y, x, _| {
            let coefficients = running_mean.iter().zip(gamma.iter().zip(running_var)).zip(beta);
            for ((y, &x), ((&mean, (&g, &var)), &b)) in y.iter_mut().zip(x).zip(coefficients) {
                *y = (x - mean) * (g / (var + eps).sqrt()) + b;
            }
        });
    } else {
        for_each_plane(spatial, y, x, x, |plane, y, x, _| {
            let k = plane % c;
            affine_plane(x, y, running_mean[k], gamma[k] / (running_var[k] + eps).sqrt(), beta[k]);
        });
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
    // mean_dy[k] = mean(dy), slope[k] = invstd·mean(dy·x̂): dx is then
    // γ·invstd·((dy - mean_dy[k]) - (x - μ)·slope[k]).
    let (mean_dy, slope) = workspace[..needed].split_at_mut(c);
    let coefficients =
        mean_dy.par_iter_mut().zip(slope.par_iter_mut()).zip(dgamma.par_iter_mut().zip(dbeta.par_iter_mut()));
    for_each_channel(total, coefficients, |k, ((mean_dy, slope), (dgamma, dbeta))| {
        let (mean, invstd) = (f64::from(save_mean[k]), f64::from(save_invstd[k]));
        let mean4 = f64x4::splat(mean);
        let [sum_dy, sum_dy_xc] = channel_sums(c, spatial, k, dy, x, |g, v| [g, g * (v - mean4)]);
        let sum_dy_xhat = sum_dy_xc * invstd;
        *dbeta += sum_dy as f32;
        *dgamma += sum_dy_xhat as f32;
        *mean_dy = (sum_dy / mf) as f32;
        *slope = (invstd * sum_dy_xhat / mf) as f32;
    });
    let (mean_dy, slope) = (&*mean_dy, &*slope);
    if spatial == 1 {
        // Along the rows, as in the forward.
        for_each_plane(c, dx, dy, x, |_, dx, dy, x| {
            let coefficients =
                save_mean.iter().zip(gamma.iter().zip(save_invstd)).zip(mean_dy.iter().zip(slope));
            for ((o, (&g, &v)), ((&mean, (&gm, &invstd)), (&md, &sl))) in
                dx.iter_mut().zip(dy.iter().zip(x)).zip(coefficients)
            {
                *o = (gm * invstd) * ((g - md) - (v - mean) * sl);
            }
        });
        return Ok(());
    }
    for_each_plane(spatial, dx, dy, x, |plane, dx, dy, x| {
        let k = plane % c;
        let (scale, mean_dy, slope, mean) = (gamma[k] * save_invstd[k], mean_dy[k], slope[k], save_mean[k]);
        let (s8, d8, l8, m8) =
            (f32x8::splat(scale), f32x8::splat(mean_dy), f32x8::splat(slope), f32x8::splat(mean));
        let mut dxs = dx.chunks_exact_mut(8);
        let (mut dys, mut xs) = (dy.chunks_exact(8), x.chunks_exact(8));
        for (o, (g, v)) in (&mut dxs).zip((&mut dys).zip(&mut xs)) {
            let g = f32x8::new(core::array::from_fn(|j| g[j]));
            let v = f32x8::new(core::array::from_fn(|j| v[j]));
            o.copy_from_slice(&(s8 * ((g - d8) - (v - m8) * l8)).to_array());
        }
        for (o, (&g, &v)) in dxs.into_remainder().iter_mut().zip(dys.remainder().iter().zip(xs.remainder())) {
            *o = scale * ((g - mean_dy) - (v - mean) * slope);
        }
    });
    Ok(())
}
