//! Scalar references for the recurrent cells: plain loops with `f32` libm `exp`/`tanh` and
//! the reference GEMM, the ground truth the fast paths are tested against and the baseline
//! of the benches. Same arguments, shapes and overwrite/accumulate rules as the fast
//! functions of [`super`]; lengths are not checked: these panic if a slice is too short for
//! the shapes.

use super::{Nonlinearity, RnnWeightGrads, RnnWeights};
use crate::gemm::reference::sgemm_reference;
use crate::gemm::{GemmShape, Transpose};

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Reference of [`super::rnn_cell_forward`]: `h' = act(pre)`.
pub fn rnn_cell_forward(
    batch: usize,
    hidden: usize,
    nonlinearity: Nonlinearity,
    preact: &[f32],
    h_next: &mut [f32],
) {
    for (h, &pre) in h_next[..batch * hidden].iter_mut().zip(preact) {
        *h = match nonlinearity {
            Nonlinearity::Tanh => pre.tanh(),
            Nonlinearity::Relu => pre.max(0.0),
        };
    }
}

/// Reference of [`super::rnn_cell_backward`]: `dpre = dh'·act'(h')` from the saved `h'`.
pub fn rnn_cell_backward(
    batch: usize,
    hidden: usize,
    nonlinearity: Nonlinearity,
    h_next: &[f32],
    dh_next: &[f32],
    dpreact: &mut [f32],
) {
    for ((d, &h), &dh) in dpreact[..batch * hidden].iter_mut().zip(h_next).zip(dh_next) {
        *d = match nonlinearity {
            Nonlinearity::Tanh => dh * (1.0 - h * h),
            Nonlinearity::Relu => {
                if h > 0.0 {
                    dh
                } else {
                    0.0
                }
            }
        };
    }
}

/// Reference of [`super::lstm_cell_forward`]: cache rows are `[i | f | g | o | tanh(c')]`.
pub fn lstm_cell_forward(
    batch: usize,
    hidden: usize,
    gates_preact: &[f32],
    c_prev: &[f32],
    c_next: &mut [f32],
    h_next: &mut [f32],
    cache: &mut [f32],
) {
    for b in 0..batch {
        for j in 0..hidden {
            let pre = |gate: usize| gates_preact[(b * 4 + gate) * hidden + j];
            let (i, f, g, o) = (sigmoid(pre(0)), sigmoid(pre(1)), pre(2).tanh(), sigmoid(pre(3)));
            let c = f * c_prev[b * hidden + j] + i * g;
            let tanh_c = c.tanh();
            c_next[b * hidden + j] = c;
            h_next[b * hidden + j] = o * tanh_c;
            for (slot, value) in [i, f, g, o, tanh_c].into_iter().enumerate() {
                cache[(b * 5 + slot) * hidden + j] = value;
            }
        }
    }
}

/// Reference of [`super::lstm_cell_backward`] (`dc_next = None` means zero).
#[allow(clippy::too_many_arguments)]
pub fn lstm_cell_backward(
    batch: usize,
    hidden: usize,
    cache: &[f32],
    c_prev: &[f32],
    dh_next: &[f32],
    dc_next: Option<&[f32]>,
    dgates: &mut [f32],
    dc_prev: &mut [f32],
) {
    for b in 0..batch {
        for j in 0..hidden {
            let saved = |slot: usize| cache[(b * 5 + slot) * hidden + j];
            let (i, f, g, o, tanh_c) = (saved(0), saved(1), saved(2), saved(3), saved(4));
            let at = b * hidden + j;
            let dh = dh_next[at];
            let dc = dc_next.map_or(0.0, |dc_next| dc_next[at]) + dh * o * (1.0 - tanh_c * tanh_c);
            let d_pre = [
                dc * g * i * (1.0 - i),
                dc * c_prev[at] * f * (1.0 - f),
                dc * i * (1.0 - g * g),
                dh * tanh_c * o * (1.0 - o),
            ];
            for (gate, value) in d_pre.into_iter().enumerate() {
                dgates[(b * 4 + gate) * hidden + j] = value;
            }
            dc_prev[at] = dc * f;
        }
    }
}

/// Reference of [`super::gru_cell_forward`]: cache rows are `[r | z | n | gh_n]`.
pub fn gru_cell_forward(
    batch: usize,
    hidden: usize,
    gi: &[f32],
    gh: &[f32],
    h_prev: &[f32],
    h_next: &mut [f32],
    cache: &mut [f32],
) {
    for b in 0..batch {
        for j in 0..hidden {
            let at = |gate: usize| (b * 3 + gate) * hidden + j;
            let r = sigmoid(gi[at(0)] + gh[at(0)]);
            let z = sigmoid(gi[at(1)] + gh[at(1)]);
            let n = (gi[at(2)] + r * gh[at(2)]).tanh();
            h_next[b * hidden + j] = (1.0 - z) * n + z * h_prev[b * hidden + j];
            for (slot, value) in [r, z, n, gh[at(2)]].into_iter().enumerate() {
                cache[(b * 4 + slot) * hidden + j] = value;
            }
        }
    }
}

/// Reference of [`super::gru_cell_backward`]: `dh_direct` gets the direct part `z⊙dh'`.
#[allow(clippy::too_many_arguments)]
pub fn gru_cell_backward(
    batch: usize,
    hidden: usize,
    cache: &[f32],
    h_prev: &[f32],
    dh_next: &[f32],
    dgi: &mut [f32],
    dgh: &mut [f32],
    dh_direct: &mut [f32],
) {
    for b in 0..batch {
        for j in 0..hidden {
            let saved = |slot: usize| cache[(b * 4 + slot) * hidden + j];
            let (r, z, n, gh_n) = (saved(0), saved(1), saved(2), saved(3));
            let dh = dh_next[b * hidden + j];
            let d_n = dh * (1.0 - z) * (1.0 - n * n);
            let d_z = dh * (h_prev[b * hidden + j] - n) * z * (1.0 - z);
            let d_r = d_n * gh_n * r * (1.0 - r);
            let at = |gate: usize| (b * 3 + gate) * hidden + j;
            dgi[at(0)] = d_r;
            dgi[at(1)] = d_z;
            dgi[at(2)] = d_n;
            dgh[at(0)] = d_r;
            dgh[at(1)] = d_z;
            dgh[at(2)] = d_n * r;
            dh_direct[b * hidden + j] = z * dh;
        }
    }
}

/// `y (rows, width) = x (rows, cols)·wᵀ + b + β·y` with the reference GEMM.
#[allow(clippy::too_many_arguments)]
fn affine_forward(
    rows: usize,
    cols: usize,
    width: usize,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    beta: f32,
    y: &mut [f32],
) {
    let shape = GemmShape {
        transa: Transpose::No,
        transb: Transpose::Yes,
        m: rows,
        n: width,
        k: cols,
        lda: cols,
        ldb: cols,
        ldc: width,
    };
    sgemm_reference(&shape, 1.0, x, w, beta, y);
    for r in 0..rows {
        for j in 0..width {
            y[r * width + j] += b[j];
        }
    }
}

/// Backward of [`affine_forward`]: `dw += dyᵀ·x`, `db += Σ_rows dy`, `dx = dy·w + β·dx`.
#[allow(clippy::too_many_arguments)]
fn affine_backward(
    rows: usize,
    cols: usize,
    width: usize,
    dy: &[f32],
    x: &[f32],
    w: &[f32],
    dw: &mut [f32],
    db: &mut [f32],
    beta: f32,
    dx: &mut [f32],
) {
    let dw_shape = GemmShape {
        transa: Transpose::Yes,
        transb: Transpose::No,
        m: width,
        n: cols,
        k: rows,
        lda: width,
        ldb: cols,
        ldc: cols,
    };
    sgemm_reference(&dw_shape, 1.0, dy, x, 1.0, dw);
    for r in 0..rows {
        for j in 0..width {
            db[j] += dy[r * width + j];
        }
    }
    let dx_shape = GemmShape {
        transa: Transpose::No,
        transb: Transpose::No,
        m: rows,
        n: cols,
        k: width,
        lda: width,
        ldb: cols,
        ldc: cols,
    };
    sgemm_reference(&dx_shape, 1.0, dy, w, beta, dx);
}

/// Reference of [`super::rnn_preact_forward`].
pub fn rnn_preact_forward(
    batch: usize,
    input: usize,
    hidden: usize,
    x: &[f32],
    h_prev: &[f32],
    weights: &RnnWeights<'_>,
    preact: &mut [f32],
) {
    summed_preact_forward(1, batch, input, hidden, x, h_prev, weights, preact);
}

/// Reference of [`super::rnn_preact_backward`].
#[allow(clippy::too_many_arguments)]
pub fn rnn_preact_backward(
    batch: usize,
    input: usize,
    hidden: usize,
    dpreact: &[f32],
    x: &[f32],
    h_prev: &[f32],
    weights: &RnnWeights<'_>,
    grads: &mut RnnWeightGrads<'_>,
    dx: &mut [f32],
    dh_prev: &mut [f32],
) {
    summed_preact_backward(1, batch, input, hidden, dpreact, x, h_prev, weights, grads, dx, dh_prev);
}

/// `out = x·W_ihᵀ + b_ih + h_prev·W_hhᵀ + b_hh` with `gates` gate blocks (LSTM, plain RNN).
#[allow(clippy::too_many_arguments)]
fn summed_preact_forward(
    gates: usize,
    batch: usize,
    input: usize,
    hidden: usize,
    x: &[f32],
    h_prev: &[f32],
    weights: &RnnWeights<'_>,
    out: &mut [f32],
) {
    affine_forward(batch, input, gates * hidden, x, weights.weight_ih, weights.bias_ih, 0.0, out);
    affine_forward(batch, hidden, gates * hidden, h_prev, weights.weight_hh, weights.bias_hh, 1.0, out);
}

/// Backward of [`summed_preact_forward`]: both weights get `dout`; `dx`, `dh_prev` overwritten.
#[allow(clippy::too_many_arguments)]
fn summed_preact_backward(
    gates: usize,
    batch: usize,
    input: usize,
    hidden: usize,
    dout: &[f32],
    x: &[f32],
    h_prev: &[f32],
    weights: &RnnWeights<'_>,
    grads: &mut RnnWeightGrads<'_>,
    dx: &mut [f32],
    dh_prev: &mut [f32],
) {
    let (w, g, width) = (weights, grads, gates * hidden);
    affine_backward(batch, input, width, dout, x, w.weight_ih, g.dweight_ih, g.dbias_ih, 0.0, dx);
    affine_backward(batch, hidden, width, dout, h_prev, w.weight_hh, g.dweight_hh, g.dbias_hh, 0.0, dh_prev);
}

/// Reference of [`super::lstm_preact_forward`].
pub fn lstm_preact_forward(
    batch: usize,
    input: usize,
    hidden: usize,
    x: &[f32],
    h_prev: &[f32],
    weights: &RnnWeights<'_>,
    gates: &mut [f32],
) {
    summed_preact_forward(4, batch, input, hidden, x, h_prev, weights, gates);
}

/// Reference of [`super::lstm_preact_backward`].
#[allow(clippy::too_many_arguments)]
pub fn lstm_preact_backward(
    batch: usize,
    input: usize,
    hidden: usize,
    dgates: &[f32],
    x: &[f32],
    h_prev: &[f32],
    weights: &RnnWeights<'_>,
    grads: &mut RnnWeightGrads<'_>,
    dx: &mut [f32],
    dh_prev: &mut [f32],
) {
    summed_preact_backward(4, batch, input, hidden, dgates, x, h_prev, weights, grads, dx, dh_prev);
}

/// Reference of [`super::gru_preact_forward`].
#[allow(clippy::too_many_arguments)]
pub fn gru_preact_forward(
    batch: usize,
    input: usize,
    hidden: usize,
    x: &[f32],
    h_prev: &[f32],
    weights: &RnnWeights<'_>,
    gi: &mut [f32],
    gh: &mut [f32],
) {
    affine_forward(batch, input, 3 * hidden, x, weights.weight_ih, weights.bias_ih, 0.0, gi);
    affine_forward(batch, hidden, 3 * hidden, h_prev, weights.weight_hh, weights.bias_hh, 0.0, gh);
}

/// Reference of [`super::gru_preact_backward`] (`dh_prev = dh_direct + dgh·W_hh`, overwritten).
#[allow(clippy::too_many_arguments)]
pub fn gru_preact_backward(
    batch: usize,
    input: usize,
    hidden: usize,
    dgi: &[f32],
    dgh: &[f32],
    dh_direct: &[f32],
    x: &[f32],
    h_prev: &[f32],
    weights: &RnnWeights<'_>,
    grads: &mut RnnWeightGrads<'_>,
    dx: &mut [f32],
    dh_prev: &mut [f32],
) {
    let (w, g) = (weights, grads);
    affine_backward(batch, input, 3 * hidden, dgi, x, w.weight_ih, g.dweight_ih, g.dbias_ih, 0.0, dx);
    dh_prev[..batch * hidden].copy_from_slice(&dh_direct[..batch * hidden]);
    affine_backward(
        batch,
        hidden,
        3 * hidden,
        dgh,
        h_prev,
        w.weight_hh,
        g.dweight_hh,
        g.dbias_hh,
        1.0,
        dh_prev,
    );
}

/// A whole LSTM step: [`lstm_preact_forward`] into the workspace `gates (batch, 4·hidden)`
/// (overwritten), then [`lstm_cell_forward`] into `h_next`, `c_next` `(batch, hidden)` and
/// `cache (batch, 5·hidden)` (overwritten). `x (batch, input)`, `h_prev`, `c_prev`
/// `(batch, hidden)`.
#[allow(clippy::too_many_arguments)]
pub fn lstm_step_forward(
    batch: usize,
    input: usize,
    hidden: usize,
    weights: &RnnWeights<'_>,
    x: &[f32],
    h_prev: &[f32],
    c_prev: &[f32],
    gates: &mut [f32],
    h_next: &mut [f32],
    c_next: &mut [f32],
    cache: &mut [f32],
) {
    lstm_preact_forward(batch, input, hidden, x, h_prev, weights, gates);
    lstm_cell_forward(batch, hidden, gates, c_prev, c_next, h_next, cache);
}

/// Backward of [`lstm_step_forward`] (same `x`, `h_prev`, `c_prev`, `cache`):
/// [`lstm_cell_backward`] into the workspace `dgates (batch, 4·hidden)` and
/// `dc_prev (batch, hidden)` (overwritten), then [`lstm_preact_backward`]: `grads`
/// accumulated, `dx (batch, input)` and `dh_prev (batch, hidden)` overwritten.
#[allow(clippy::too_many_arguments)]
pub fn lstm_step_backward(
    batch: usize,
    input: usize,
    hidden: usize,
    weights: &RnnWeights<'_>,
    x: &[f32],
    h_prev: &[f32],
    c_prev: &[f32],
    cache: &[f32],
    dh_next: &[f32],
    dc_next: Option<&[f32]>,
    dgates: &mut [f32],
    grads: &mut RnnWeightGrads<'_>,
    dx: &mut [f32],
    dh_prev: &mut [f32],
    dc_prev: &mut [f32],
) {
    lstm_cell_backward(batch, hidden, cache, c_prev, dh_next, dc_next, dgates, dc_prev);
    lstm_preact_backward(batch, input, hidden, dgates, x, h_prev, weights, grads, dx, dh_prev);
}

/// A whole GRU step: [`gru_preact_forward`] into the workspaces `gi`, `gh`
/// `(batch, 3·hidden)` (overwritten), then [`gru_cell_forward`] into `h_next (batch, hidden)`
/// and `cache (batch, 4·hidden)` (overwritten). `x (batch, input)`, `h_prev (batch, hidden)`.
#[allow(clippy::too_many_arguments)]
pub fn gru_step_forward(
    batch: usize,
    input: usize,
    hidden: usize,
    weights: &RnnWeights<'_>,
    x: &[f32],
    h_prev: &[f32],
    gi: &mut [f32],
    gh: &mut [f32],
    h_next: &mut [f32],
    cache: &mut [f32],
) {
    gru_preact_forward(batch, input, hidden, x, h_prev, weights, gi, gh);
    gru_cell_forward(batch, hidden, gi, gh, h_prev, h_next, cache);
}

/// Backward of [`gru_step_forward`]: [`gru_cell_backward`] into the workspaces `dgi`, `dgh`
/// and `dh_direct (batch, hidden)` (overwritten), then [`gru_preact_backward`]: `grads`
/// accumulated, `dx (batch, input)` and `dh_prev (batch, hidden)` overwritten.
#[allow(clippy::too_many_arguments)]
pub fn gru_step_backward(
    batch: usize,
    input: usize,
    hidden: usize,
    weights: &RnnWeights<'_>,
    x: &[f32],
    h_prev: &[f32],
    cache: &[f32],
    dh_next: &[f32],
    dgi: &mut [f32],
    dgh: &mut [f32],
    dh_direct: &mut [f32],
    grads: &mut RnnWeightGrads<'_>,
    dx: &mut [f32],
    dh_prev: &mut [f32],
) {
    gru_cell_backward(batch, hidden, cache, h_prev, dh_next, dgi, dgh, dh_direct);
    gru_preact_backward(batch, input, hidden, dgi, dgh, dh_direct, x, h_prev, weights, grads, dx, dh_prev);
}

/// A whole plain RNN step: [`rnn_preact_forward`] into the workspace `preact
/// (batch, hidden)` (overwritten), then [`rnn_cell_forward`] into `h_next (batch, hidden)`
/// (overwritten, also the cache). `x (batch, input)`, `h_prev (batch, hidden)`.
#[allow(clippy::too_many_arguments)]
pub fn rnn_step_forward(
    batch: usize,
    input: usize,
    hidden: usize,
    nonlinearity: Nonlinearity,
    weights: &RnnWeights<'_>,
    x: &[f32],
    h_prev: &[f32],
    preact: &mut [f32],
    h_next: &mut [f32],
) {
    rnn_preact_forward(batch, input, hidden, x, h_prev, weights, preact);
    rnn_cell_forward(batch, hidden, nonlinearity, preact, h_next);
}

/// Backward of [`rnn_step_forward`] (same `x`, `h_prev`, `h_next`): [`rnn_cell_backward`]
/// into the workspace `dpreact (batch, hidden)` (overwritten), then [`rnn_preact_backward`]:
/// `grads` accumulated, `dx (batch, input)` and `dh_prev (batch, hidden)` overwritten.
#[allow(clippy::too_many_arguments)]
pub fn rnn_step_backward(
    batch: usize,
    input: usize,
    hidden: usize,
    nonlinearity: Nonlinearity,
    weights: &RnnWeights<'_>,
    x: &[f32],
    h_prev: &[f32],
    h_next: &[f32],
    dh_next: &[f32],
    dpreact: &mut [f32],
    grads: &mut RnnWeightGrads<'_>,
    dx: &mut [f32],
    dh_prev: &mut [f32],
) {
    rnn_cell_backward(batch, hidden, nonlinearity, h_next, dh_next, dpreact);
    rnn_preact_backward(batch, input, hidden, dpreact, x, h_prev, weights, grads, dx, dh_prev);
}
