//! Plain scalar references with `f32` libm (`f32::exp`, `f32::tanh`, `f32::ln_1p`): the
//! ground truth the fast kernels are tested against and their baseline in the benches.
//!
//! Same arguments and math as the checked kernels of [`super`], without the checks: lengths
//! are assumed to match (extra elements of a longer slice are ignored) and `cols` must be
//! `>= 1`.

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

/// `y = a + b`.
pub fn add_forward(a: &[f32], b: &[f32], y: &mut [f32]) {
    for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
        *y = a + b;
    }
}

/// `y = max(a + b, 0)`, NaN stays NaN.
pub fn add_relu_forward(a: &[f32], b: &[f32], y: &mut [f32]) {
    add_forward(a, b, y);
    let sum = y.to_vec();
    relu_forward(&sum, y);
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
pub(crate) fn max_and_exp_sum(x: &[f32]) -> (f32, f32) {
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
