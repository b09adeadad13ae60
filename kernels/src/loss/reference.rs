//! Plain scalar references of the losses with `f32` libm (`f32::exp`, `f32::ln_1p`), sums in
//! `f64`: the ground truth the fast kernels are tested against and their baseline in the
//! benches.
//!
//! Same arguments and math as the checked kernels of [`super`], without the checks: lengths
//! are assumed to match (extra elements of a longer slice are ignored), `classes` must be
//! `>= 1`, and a class index out of range panics.

use crate::activation::reference::{max_and_exp_sum, sigmoid_forward, softmax_forward};

/// Mean over rows of `ln Σ e^{x} - x[target]`; writes the softmax into `probs`.
pub fn softmax_cross_entropy_forward(
    classes: usize,
    logits: &[f32],
    targets: &[u32],
    probs: &mut [f32],
) -> f32 {
    softmax_forward(classes, logits, probs);
    let mut total = 0.0f64;
    for (x, &t) in logits.chunks_exact(classes).zip(targets) {
        let (m, sum) = max_and_exp_sum(x);
        total += f64::from((m - x[t as usize]) + sum.ln());
    }
    (total / targets.len() as f64) as f32
}

/// `dlogits = (probs - onehot(targets))/batch`.
pub fn softmax_cross_entropy_backward(classes: usize, probs: &[f32], targets: &[u32], dlogits: &mut [f32]) {
    let batch = targets.len() as f32;
    for ((p, &t), dl) in probs.chunks_exact(classes).zip(targets).zip(dlogits.chunks_exact_mut(classes)) {
        for (j, (dl, &p)) in dl.iter_mut().zip(p).enumerate() {
            let y = if j == t as usize { 1.0 } else { 0.0 };
            *dl = (p - y) / batch;
        }
    }
}

/// Mean over rows of `Σ_j t_j·(ln Σ e^{x} - x_j)`; writes the softmax into `probs`.
pub fn softmax_cross_entropy_soft_forward(
    classes: usize,
    logits: &[f32],
    targets: &[f32],
    probs: &mut [f32],
) -> f32 {
    softmax_forward(classes, logits, probs);
    let mut total = 0.0f64;
    for (x, t) in logits.chunks_exact(classes).zip(targets.chunks_exact(classes)) {
        let (m, sum) = max_and_exp_sum(x);
        let row: f32 = x.iter().zip(t).map(|(&x, &t)| t * ((m - x) + sum.ln())).sum();
        total += f64::from(row);
    }
    (total / (logits.len() / classes) as f64) as f32
}

/// `dlogits = (probs·Σ_j t_j - targets)/batch` per row.
pub fn softmax_cross_entropy_soft_backward(
    classes: usize,
    probs: &[f32],
    targets: &[f32],
    dlogits: &mut [f32],
) {
    let batch = (probs.len() / classes) as f32;
    for ((p, t), dl) in
        probs.chunks_exact(classes).zip(targets.chunks_exact(classes)).zip(dlogits.chunks_exact_mut(classes))
    {
        let t_sum: f32 = t.iter().sum();
        for ((dl, &p), &t) in dl.iter_mut().zip(p).zip(t) {
            *dl = (p * t_sum - t) / batch;
        }
    }
}

/// Mean of `max(z, 0) - z·y + ln(1 + e^{-|z|})`; writes `σ(z)` into `probs`.
pub fn bce_with_logits_forward(logits: &[f32], targets: &[f32], probs: &mut [f32]) -> f32 {
    sigmoid_forward(logits, probs);
    let mut total = 0.0f64;
    for (&z, &y) in logits.iter().zip(targets) {
        total += f64::from(z.max(0.0) - z * y + (-z.abs()).exp().ln_1p());
    }
    (total / logits.len() as f64) as f32
}

/// `dlogits = (probs - targets)/n`.
pub fn bce_with_logits_backward(probs: &[f32], targets: &[f32], dlogits: &mut [f32]) {
    let n = probs.len() as f32;
    for ((dl, &p), &y) in dlogits.iter_mut().zip(probs).zip(targets) {
        *dl = (p - y) / n;
    }
}

/// `diff = pred - target`, returns `Σ diff²/n` (summed in `f64`).
pub fn mse_forward(pred: &[f32], target: &[f32], diff: &mut [f32]) -> f32 {
    let mut total = 0.0f64;
    for ((d, &p), &t) in diff.iter_mut().zip(pred).zip(target) {
        *d = p - t;
        total += f64::from(*d) * f64::from(*d);
    }
    (total / pred.len() as f64) as f32
}

/// `dpred = 2·diff/n`.
pub fn mse_backward(diff: &[f32], dpred: &mut [f32]) {
    let scale = (2.0 / diff.len() as f64) as f32;
    for (g, &d) in dpred.iter_mut().zip(diff) {
        *g = d * scale;
    }
}
