//! Plain scalar references with `f32` libm (`f32::exp`, `f32::tanh`, `f32::ln_1p`): the
//! ground truth the fast kernels are tested against and their baseline in the benches.
//!
//! Same arguments and math as the checked kernels of [`super`], without the checks: lengths
//! are assumed to match (extra elements of a longer slice are ignored), `cols`/`classes` must
//! be `>= 1`, and a class index out of range panics.

/// `y = 1/(1 + e⁻ˣ)`.
pub fn sigmoid_forward(x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = 1.0 / (1.0 + (-x).exp());
    }
}

/// `dx = dy·y·(1 - y)`.
pub fn sigmoid_backward(y: &[f32], dy: &[f32], dx: &mut [f32]) {
    for ((dx, &y), &dy) in dx.iter_mut().zip(y).zip(dy) {
        *dx = dy * y * (1.0 - y);
    }
}

/// `y = tanh(x)`.
pub fn tanh_forward(x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = x.tanh();
    }
}

/// `dx = dy·(1 - y²)`.
pub fn tanh_backward(y: &[f32], dy: &[f32], dx: &mut [f32]) {
    for ((dx, &y), &dy) in dx.iter_mut().zip(y).zip(dy) {
        *dx = dy * (1.0 - y * y);
    }
}

/// `y = max(x, 0)`, NaN stays NaN.
pub fn relu_forward(x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = if x <= 0.0 { 0.0 } else { x };
    }
}

/// `dx = dy` where `y > 0`, 0 where `y <= 0`, NaN where `y` is NaN.
pub fn relu_backward(y: &[f32], dy: &[f32], dx: &mut [f32]) {
    for ((dx, &y), &dy) in dx.iter_mut().zip(y).zip(dy) {
        *dx = if y.is_nan() {
            y
        } else if y > 0.0 {
            dy
        } else {
            0.0
        };
    }
}

/// `y = x` where `x > 0`, `slope·x` elsewhere.
pub fn leaky_relu_forward(slope: f32, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = if x <= 0.0 { slope * x } else { x };
    }
}

/// `dx = dy` where `y > 0`, `slope·dy` where `y <= 0`, NaN where `y` is NaN.
pub fn leaky_relu_backward(slope: f32, y: &[f32], dy: &[f32], dx: &mut [f32]) {
    for ((dx, &y), &dy) in dx.iter_mut().zip(y).zip(dy) {
        *dx = if y.is_nan() {
            y
        } else if y > 0.0 {
            dy
        } else {
            slope * dy
        };
    }
}

/// `(max, Σ e^{x - max})` of one row.
fn max_and_exp_sum(x: &[f32]) -> (f32, f32) {
    let m = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    (m, x.iter().map(|&v| (v - m).exp()).sum())
}

/// Row-wise softmax of `x (rows, cols)`: `y = e^{x - max}/Σ e^{x - max}`.
pub fn softmax_forward(cols: usize, x: &[f32], y: &mut [f32]) {
    for (x, y) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        let (m, sum) = max_and_exp_sum(x);
        for (y, &x) in y.iter_mut().zip(x) {
            *y = (x - m).exp() / sum;
        }
    }
}

/// Row-wise log-softmax: `y = (x - max) - ln Σ e^{x - max}`.
pub fn log_softmax_forward(cols: usize, x: &[f32], y: &mut [f32]) {
    for (x, y) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        let (m, sum) = max_and_exp_sum(x);
        for (y, &x) in y.iter_mut().zip(x) {
            *y = (x - m) - sum.ln();
        }
    }
}

/// `dx = y·(dy - Σ dy·y)` per row.
pub fn softmax_backward(cols: usize, y: &[f32], dy: &[f32], dx: &mut [f32]) {
    for ((y, dy), dx) in y.chunks_exact(cols).zip(dy.chunks_exact(cols)).zip(dx.chunks_exact_mut(cols)) {
        let dot: f32 = y.iter().zip(dy).map(|(y, dy)| y * dy).sum();
        for ((dx, &y), &dy) in dx.iter_mut().zip(y).zip(dy) {
            *dx = y * (dy - dot);
        }
    }
}

/// `dx = dy - e^{y}·Σ dy` per row.
pub fn log_softmax_backward(cols: usize, y: &[f32], dy: &[f32], dx: &mut [f32]) {
    for ((y, dy), dx) in y.chunks_exact(cols).zip(dy.chunks_exact(cols)).zip(dx.chunks_exact_mut(cols)) {
        let sum: f32 = dy.iter().sum();
        for ((dx, &y), &dy) in dx.iter_mut().zip(y).zip(dy) {
            *dx = dy - y.exp() * sum;
        }
    }
}

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
