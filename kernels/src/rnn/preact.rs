//! The affine half of a recurrent step: gate pre-activations from `x` and `h` with one GEMM
//! per weight for all gates, and its backward (weight and bias gradients, `dx`, `dh`).

use super::{check_matrix, check_weight_grads, check_weights, product, RnnWeightGrads, RnnWeights};
use super::{GRU_GATES, LSTM_GATES};
use crate::error::Result;
use crate::gemm::{sgemm, GemmShape, Transpose};

/// LSTM gate pre-activations `gates = x·W_ihᵀ + h_prev·W_hhᵀ + b_ih + b_hh`.
///
/// - `x` `(batch, input)`, `h_prev` `(batch, hidden)`: read only;
/// - `weights`: `weight_ih (4·hidden, input)`, `weight_hh (4·hidden, hidden)`, biases
///   `(4·hidden)`, gate blocks i, f, g, o;
/// - `gates` `(batch, 4·hidden)`: **overwritten**; the input of [`super::lstm_cell_forward`].
///
/// Two GEMMs (`β = 0`, then `β = 1` into the same block) and one bias pass per weight.
/// Zero sizes are no-ops. Errors name the first slice whose length does not match.
pub fn lstm_preact_forward(
    batch: usize,
    input: usize,
    hidden: usize,
    x: &[f32],
    h_prev: &[f32],
    weights: &RnnWeights<'_>,
    gates: &mut [f32],
) -> Result<()> {
    let width = product("4·hidden", LSTM_GATES, hidden)?;
    check_weights(LSTM_GATES, input, hidden, weights)?;
    check_matrix("x", "(batch, input)", batch, input, x.len())?;
    check_matrix("h_prev", "(batch, hidden)", batch, hidden, h_prev.len())?;
    check_matrix("gates", "(batch, 4·hidden)", batch, width, gates.len())?;
    affine_forward(batch, input, width, x, weights.weight_ih, weights.bias_ih, 0.0, gates)?;
    affine_forward(batch, hidden, width, h_prev, weights.weight_hh, weights.bias_hh, 1.0, gates)
}

/// LSTM step backward through the affine half, from `dgates` (see
/// [`super::lstm_cell_backward`]):
///
/// - `dgates` `(batch, 4·hidden)`, `x` `(batch, input)`, `h_prev` `(batch, hidden)` (the
///   forward inputs), `weights` as in [`lstm_preact_forward`]: read only;
/// - `grads`: **accumulated**: `dweight_ih += dgatesᵀ·x`, `dweight_hh += dgatesᵀ·h_prev`,
///   `dbias_ih += Σ_rows dgates`, `dbias_hh += Σ_rows dgates`;
/// - `dx` `(batch, input)`: **overwritten** with `dgates·W_ih`;
/// - `dh_prev` `(batch, hidden)`: **overwritten** with `dgates·W_hh`.
///
/// One GEMM per product. Zero sizes are no-ops, except that a non-empty `dx` is zeroed when
/// `hidden = 0`. Errors name the first slice whose length does not match.
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
) -> Result<()> {
    let width = product("4·hidden", LSTM_GATES, hidden)?;
    check_weights(LSTM_GATES, input, hidden, weights)?;
    check_weight_grads(LSTM_GATES, input, hidden, grads)?;
    check_matrix("dgates", "(batch, 4·hidden)", batch, width, dgates.len())?;
    check_matrix("x", "(batch, input)", batch, input, x.len())?;
    check_matrix("h_prev", "(batch, hidden)", batch, hidden, h_prev.len())?;
    check_matrix("dx", "(batch, input)", batch, input, dx.len())?;
    check_matrix("dh_prev", "(batch, hidden)", batch, hidden, dh_prev.len())?;
    let ih = AffineGrads { dweight: &mut *grads.dweight_ih, dbias: &mut *grads.dbias_ih };
    affine_backward(batch, input, width, dgates, x, weights.weight_ih, ih, 0.0, dx)?;
    let hh = AffineGrads { dweight: &mut *grads.dweight_hh, dbias: &mut *grads.dbias_hh };
    affine_backward(batch, hidden, width, dgates, h_prev, weights.weight_hh, hh, 0.0, dh_prev)
}

/// GRU pre-activations `gi = x·W_ihᵀ + b_ih` and `gh = h_prev·W_hhᵀ + b_hh`.
///
/// - `x` `(batch, input)`, `h_prev` `(batch, hidden)`: read only;
/// - `weights`: `weight_ih (3·hidden, input)`, `weight_hh (3·hidden, hidden)`, biases
///   `(3·hidden)`, gate blocks r, z, n;
/// - `gi`, `gh` `(batch, 3·hidden)`: **overwritten**; the inputs of [`super::gru_cell_forward`].
///
/// One GEMM and one bias pass per weight. Zero sizes are no-ops. Errors name the first
/// slice whose length does not match.
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
) -> Result<()> {
    let width = product("3·hidden", GRU_GATES, hidden)?;
    check_weights(GRU_GATES, input, hidden, weights)?;
    check_matrix("x", "(batch, input)", batch, input, x.len())?;
    check_matrix("h_prev", "(batch, hidden)", batch, hidden, h_prev.len())?;
    check_matrix("gi", "(batch, 3·hidden)", batch, width, gi.len())?;
    check_matrix("gh", "(batch, 3·hidden)", batch, width, gh.len())?;
    affine_forward(batch, input, width, x, weights.weight_ih, weights.bias_ih, 0.0, gi)?;
    affine_forward(batch, hidden, width, h_prev, weights.weight_hh, weights.bias_hh, 0.0, gh)
}

/// GRU step backward through the affine half, from `dgi`, `dgh` (see
/// [`super::gru_cell_backward`]):
///
/// - `dgi`, `dgh` `(batch, 3·hidden)`, `x` `(batch, input)`, `h_prev` `(batch, hidden)` (the
///   forward inputs), `weights` as in [`gru_preact_forward`]: read only;
/// - `grads`: **accumulated**: `dweight_ih += dgiᵀ·x`, `dweight_hh += dghᵀ·h_prev`,
///   `dbias_ih += Σ_rows dgi`, `dbias_hh += Σ_rows dgh`;
/// - `dx` `(batch, input)`: **overwritten** with `dgi·W_ih`;
/// - `dh_prev` `(batch, hidden)`: **accumulated**: `dh_prev += dgh·W_hh`, completing the
///   direct part `z⊙dh'` that [`super::gru_cell_backward`] wrote there.
///
/// One GEMM per product. Zero sizes are no-ops, except that a non-empty `dx` is zeroed when
/// `hidden = 0`. Errors name the first slice whose length does not match.
#[allow(clippy::too_many_arguments)]
pub fn gru_preact_backward(
    batch: usize,
    input: usize,
    hidden: usize,
    dgi: &[f32],
    dgh: &[f32],
    x: &[f32],
    h_prev: &[f32],
    weights: &RnnWeights<'_>,
    grads: &mut RnnWeightGrads<'_>,
    dx: &mut [f32],
    dh_prev: &mut [f32],
) -> Result<()> {
    let width = product("3·hidden", GRU_GATES, hidden)?;
    check_weights(GRU_GATES, input, hidden, weights)?;
    check_weight_grads(GRU_GATES, input, hidden, grads)?;
    check_matrix("dgi", "(batch, 3·hidden)", batch, width, dgi.len())?;
    check_matrix("dgh", "(batch, 3·hidden)", batch, width, dgh.len())?;
    check_matrix("x", "(batch, input)", batch, input, x.len())?;
    check_matrix("h_prev", "(batch, hidden)", batch, hidden, h_prev.len())?;
    check_matrix("dx", "(batch, input)", batch, input, dx.len())?;
    check_matrix("dh_prev", "(batch, hidden)", batch, hidden, dh_prev.len())?;
    let ih = AffineGrads { dweight: &mut *grads.dweight_ih, dbias: &mut *grads.dbias_ih };
    affine_backward(batch, input, width, dgi, x, weights.weight_ih, ih, 0.0, dx)?;
    let hh = AffineGrads { dweight: &mut *grads.dweight_hh, dbias: &mut *grads.dbias_hh };
    affine_backward(batch, hidden, width, dgh, h_prev, weights.weight_hh, hh, 1.0, dh_prev)
}

/// The gradients of one weight and its bias, both accumulated.
struct AffineGrads<'a> {
    dweight: &'a mut [f32],
    dbias: &'a mut [f32],
}

/// `y = x·wᵀ + b + β·y` for `x (rows, cols)`, `w (width, cols)`, `b (width)`,
/// `y (rows, width)`, with `β` 0 (overwrite, `y` not read) or 1 (accumulate). Lengths are
/// checked by the callers; `sgemm` checks them again.
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
) -> Result<()> {
    // Leading dimensions of empty matrices must still be >= 1 for sgemm.
    let (ld_x, ld_y) = (cols.max(1), width.max(1));
    let shape =
        GemmShape::new(rows, width, cols).transposed(Transpose::No, Transpose::Yes).with_ld(ld_x, ld_x, ld_y);
    sgemm(&shape, 1.0, x, w, beta, y)?;
    if width > 0 {
        for row in y.chunks_exact_mut(width) {
            row.iter_mut().zip(b).for_each(|(y, b)| *y += b);
        }
    }
    Ok(())
}

/// Backward of [`affine_forward`] from `dy (rows, width)`: `dweight += dyᵀ·x`,
/// `dbias += Σ_rows dy`, `dx = dy·w + β·dx` with `β` 0 (overwrite) or 1 (accumulate).
#[allow(clippy::too_many_arguments)]
fn affine_backward(
    rows: usize,
    cols: usize,
    width: usize,
    dy: &[f32],
    x: &[f32],
    w: &[f32],
    grads: AffineGrads<'_>,
    beta: f32,
    dx: &mut [f32],
) -> Result<()> {
    let (ld_x, ld_y) = (cols.max(1), width.max(1));
    // dW (width, cols) += dyᵀ (width, rows) · x (rows, cols).
    let dweight_shape =
        GemmShape::new(width, cols, rows).transposed(Transpose::Yes, Transpose::No).with_ld(ld_y, ld_x, ld_x);
    sgemm(&dweight_shape, 1.0, dy, x, 1.0, grads.dweight)?;
    // db += column sums of dy, row after row: a fixed order, whatever the thread count.
    if width > 0 {
        for row in dy.chunks_exact(width) {
            grads.dbias.iter_mut().zip(row).for_each(|(db, dy)| *db += dy);
        }
    }
    // dx (rows, cols) = dy (rows, width) · w (width, cols) + β·dx.
    sgemm(&GemmShape::new(rows, cols, width).with_ld(ld_y, ld_x, ld_x), 1.0, dy, w, beta, dx)
}
