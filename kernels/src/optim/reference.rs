//! Plain scalar references of the optimizer kernels: one loop per update, the formulas of
//! [`SgdConfig`], [`RmspropConfig`] and [`AdamConfig`] written out element by element. The
//! ground truth of the fast paths' tests and their bench baseline.
//!
//! The hyper-parameters are rounded to f32 once, as the kernels do. They take what the
//! checked kernels accept (same arguments, lengths already right; a
//! state a configuration does not use may be empty) and panic on anything else.

use super::config::{AdamConfig, RmspropConfig, SgdConfig};

/// Scalar [`sgd_update`](super::sgd_update).
pub fn sgd_update(cfg: &SgdConfig, step: u64, param: &mut [f32], grad: &[f32], momentum_buf: &mut [f32]) {
    let (lr, momentum, weight_decay) = (cfg.lr as f32, cfg.momentum as f32, cfg.weight_decay as f32);
    let one_minus_dampening = (1.0 - cfg.dampening) as f32;
    for i in 0..param.len() {
        let mut g = grad[i];
        if weight_decay != 0.0 {
            g += weight_decay * param[i];
        }
        if momentum != 0.0 {
            momentum_buf[i] =
                if step == 1 { g } else { momentum * momentum_buf[i] + one_minus_dampening * g };
            g = if cfg.nesterov { g + momentum * momentum_buf[i] } else { momentum_buf[i] };
        }
        param[i] -= lr * g;
    }
}

/// Scalar [`rmsprop_update`](super::rmsprop_update).
pub fn rmsprop_update(
    cfg: &RmspropConfig,
    param: &mut [f32],
    grad: &[f32],
    square_avg: &mut [f32],
    momentum_buf: &mut [f32],
    grad_avg: &mut [f32],
) {
    let (lr, alpha, eps) = (cfg.lr as f32, cfg.alpha as f32, cfg.eps as f32);
    let (weight_decay, momentum) = (cfg.weight_decay as f32, cfg.momentum as f32);
    let one_minus_alpha = (1.0 - cfg.alpha) as f32;
    for i in 0..param.len() {
        let mut g = grad[i];
        if weight_decay != 0.0 {
            g += weight_decay * param[i];
        }
        square_avg[i] = alpha * square_avg[i] + one_minus_alpha * g * g;
        let root = if cfg.centered {
            grad_avg[i] += one_minus_alpha * (g - grad_avg[i]);
            // Rounding can make the centred variance slightly negative: taken as 0.
            let variance = square_avg[i] - grad_avg[i] * grad_avg[i];
            if variance < 0.0 {
                0.0
            } else {
                variance.sqrt()
            }
        } else {
            square_avg[i].sqrt()
        };
        let denom = root + eps;
        if momentum > 0.0 {
            momentum_buf[i] = momentum * momentum_buf[i] + g / denom;
            param[i] -= lr * momentum_buf[i];
        } else {
            param[i] -= lr * (g / denom);
        }
    }
}

/// Scalar [`adam_update`](super::adam_update).
pub fn adam_update(
    cfg: &AdamConfig,
    step: u64,
    param: &mut [f32],
    grad: &[f32],
    exp_avg: &mut [f32],
    exp_avg_sq: &mut [f32],
    max_exp_avg_sq: &mut [f32],
) {
    let t = i32::try_from(step).unwrap_or(i32::MAX);
    let step_size = (cfg.lr / (1.0 - cfg.beta1.powi(t))) as f32;
    let bias_correction2_sqrt = (1.0 - cfg.beta2.powi(t)).sqrt() as f32;
    let decay_factor = (1.0 - cfg.lr * cfg.weight_decay) as f32;
    let (beta2, eps, weight_decay) = (cfg.beta2 as f32, cfg.eps as f32, cfg.weight_decay as f32);
    let (one_minus_beta1, one_minus_beta2) = ((1.0 - cfg.beta1) as f32, (1.0 - cfg.beta2) as f32);
    for i in 0..param.len() {
        let mut g = grad[i];
        if weight_decay != 0.0 {
            if cfg.decoupled_weight_decay {
                param[i] *= decay_factor;
            } else {
                g += weight_decay * param[i];
            }
        }
        exp_avg[i] += one_minus_beta1 * (g - exp_avg[i]);
        exp_avg_sq[i] = beta2 * exp_avg_sq[i] + one_minus_beta2 * g * g;
        let v = if cfg.amsgrad {
            if exp_avg_sq[i] > max_exp_avg_sq[i] {
                max_exp_avg_sq[i] = exp_avg_sq[i];
            }
            max_exp_avg_sq[i]
        } else {
            exp_avg_sq[i]
        };
        let denom = v.sqrt() / bias_correction2_sqrt + eps;
        param[i] -= step_size * (exp_avg[i] / denom);
    }
}

/// Scalar [`clip_grad_norm`](super::clip_grad_norm): one f64 accumulation over all elements
/// in order. Returns the total norm; scales only when it is finite and the clip
/// coefficient is below 1.
pub fn clip_grad_norm(grads: &mut [&mut [f32]], max_norm: f32, norm_type: f32) -> f32 {
    let elements = || grads.iter().flat_map(|g| g.iter()).map(|&v| f64::from(v).abs());
    let total = if norm_type == f32::INFINITY {
        elements().fold(0.0f64, |m, v| if m.is_nan() || v.is_nan() { f64::NAN } else { m.max(v) })
    } else {
        let p = f64::from(norm_type);
        elements().map(|v| v.powf(p)).sum::<f64>().powf(1.0 / p)
    } as f32;
    let clip_coef = max_norm / (total + 1e-6);
    if total.is_finite() && clip_coef < 1.0 {
        for v in grads.iter_mut().flat_map(|g| g.iter_mut()) {
            *v *= clip_coef;
        }
    }
    total
}

/// Scalar [`clip_grad_value`](super::clip_grad_value).
pub fn clip_grad_value(grads: &mut [&mut [f32]], clip_value: f32) {
    for v in grads.iter_mut().flat_map(|g| g.iter_mut()) {
        *v = v.clamp(-clip_value, clip_value);
    }
}
