//! Plain scalar references of the normalisation kernels: the formulas of their docs as
//! direct loops (statistics accumulated in f64, sample by sample). The ground truth of the
//! fast paths' tests and their bench baseline.
//!
//! They take what the checked kernels accept (same arguments, lengths already right) and
//! panic on anything else.

use super::dropout::{dropout_keep, dropout_scale};

/// Index of element `s` of channel `k` of sample `i` in an `(n, c, spatial)` tensor.
fn at(c: usize, spatial: usize, i: usize, k: usize, s: usize) -> usize {
    (i * c + k) * spatial + s
}

/// Scalar [`batchnorm_forward_train`](super::batchnorm_forward_train).
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
) {
    let m = (n * spatial) as f64;
    let momentum = f64::from(momentum);
    for k in 0..c {
        let mut sum = 0.0f64;
        for i in 0..n {
            for s in 0..spatial {
                sum += f64::from(x[at(c, spatial, i, k, s)]);
            }
        }
        let mean = sum / m;
        let mut squares = 0.0f64;
        for i in 0..n {
            for s in 0..spatial {
                let d = f64::from(x[at(c, spatial, i, k, s)]) - mean;
                squares += d * d;
            }
        }
        let biased_var = squares / m;
        let unbiased_var = squares / (m - 1.0);
        let invstd = 1.0 / (biased_var + f64::from(eps)).sqrt();
        save_mean[k] = mean as f32;
        save_invstd[k] = invstd as f32;
        running_mean[k] = ((1.0 - momentum) * f64::from(running_mean[k]) + momentum * mean) as f32;
        running_var[k] = ((1.0 - momentum) * f64::from(running_var[k]) + momentum * unbiased_var) as f32;
        for i in 0..n {
            for s in 0..spatial {
                let j = at(c, spatial, i, k, s);
                y[j] = (x[j] - save_mean[k]) * save_invstd[k] * gamma[k] + beta[k];
            }
        }
    }
}

/// Scalar [`batchnorm_forward_eval`](super::batchnorm_forward_eval).
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
) {
    for i in 0..n {
        for k in 0..c {
            for s in 0..spatial {
                let j = at(c, spatial, i, k, s);
                y[j] = (x[j] - running_mean[k]) / (running_var[k] + eps).sqrt() * gamma[k] + beta[k];
            }
        }
    }
}

/// Scalar [`batchnorm_backward`](super::batchnorm_backward) (needs no workspace).
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
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let m = (n * spatial) as f64;
    for k in 0..c {
        let (mean, invstd) = (f64::from(save_mean[k]), f64::from(save_invstd[k]));
        let xhat = |j: usize| (f64::from(x[j]) - mean) * invstd;
        let mut sum_dy = 0.0f64;
        let mut sum_dy_xhat = 0.0f64;
        for i in 0..n {
            for s in 0..spatial {
                let j = at(c, spatial, i, k, s);
                sum_dy += f64::from(dy[j]);
                sum_dy_xhat += f64::from(dy[j]) * xhat(j);
            }
        }
        dbeta[k] += sum_dy as f32;
        dgamma[k] += sum_dy_xhat as f32;
        for i in 0..n {
            for s in 0..spatial {
                let j = at(c, spatial, i, k, s);
                let g = f64::from(dy[j]) - sum_dy / m - xhat(j) * sum_dy_xhat / m;
                dx[j] = (f64::from(gamma[k]) * invstd * g) as f32;
            }
        }
    }
}

/// Scalar [`dropout_forward`](super::dropout_forward).
pub fn dropout_forward(p: f32, seed: u64, offset: u64, x: &[f32], y: &mut [f32], mask: &mut [u8]) {
    let scale = dropout_scale(p);
    for j in 0..x.len() {
        let kept = dropout_keep(p, seed, offset.wrapping_add(j as u64));
        mask[j] = u8::from(kept);
        y[j] = x[j] * if kept { scale } else { 0.0 };
    }
}

/// Scalar [`dropout_backward`](super::dropout_backward).
pub fn dropout_backward(p: f32, mask: &[u8], dy: &[f32], dx: &mut [f32]) {
    let scale = dropout_scale(p);
    for j in 0..dy.len() {
        dx[j] = dy[j] * if mask[j] != 0 { scale } else { 0.0 };
    }
}
