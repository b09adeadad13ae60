//! The affine half of a recurrent step: gate pre-activations from `x` and `h` with one GEMM
//! per weight for all gates, and its backward (weight and bias gradients, `dx`, `dh`); and
//! the three projections it is made of, public for sequence layers.

use super::{check_matrix, check_weight_grads, check_weights, product, RnnWeightGrads, RnnWeights};
use super::{GRU_GATES, LSTM_GATES, RNN_GATES};
use crate::error::{check_len, Result};
use crate::gemm::{
    sgemm, sgemm_fused, sgemm_prepacked, Activation, Bias, Epilogue, GemmShape, PackedB, Transpose,
};

/// Plain RNN pre-activation `preact = x·W_ihᵀ + h_prev·W_hhᵀ + b_ih + b_hh`.
///
/// - `x` `(batch, input)`, `h_prev` `(batch, hidden)`: read only;
/// - `weights`: `weight_ih (hidden, input)`, `weight_hh (hidden, hidden)`, biases `(hidden)`;
/// - `preact` `(batch, hidden)`: **overwritten**; the input of [`super::rnn_cell_forward`].
///
/// Two GEMMs (`β = 0`, then `β = 1` into the same block), each bias in its GEMM's epilogue.
/// Zero sizes are no-ops. Errors name the first slice whose length does not match.
///
/// ```
/// use keel_kernels::rnn::{rnn_preact_forward, RnnWeights};
/// # fn main() -> keel_kernels::Result<()> {
/// // batch 1, input 2, hidden 1: x (1, 2), h_prev (1, 1), preact (1, 1).
/// let weights = RnnWeights { weight_ih: &[1.0, 2.0], weight_hh: &[3.0], bias_ih: &[0.5], bias_hh: &[0.25] };
/// let mut preact = [0.0];
/// rnn_preact_forward(1, 2, 1, &[1.0, 1.0], &[2.0], &weights, &mut preact)?;
/// assert_eq!(preact, [1.0 + 2.0 + 3.0 * 2.0 + 0.5 + 0.25]);
/// # Ok(())
/// # }
/// ```
pub fn rnn_preact_forward(
    batch: usize,
    input: usize,
    hidden: usize,
    x: &[f32],
    h_prev: &[f32],
    weights: &RnnWeights<'_>,
    preact: &mut [f32],
) -> Result<()> {
    summed_preact_forward(RNN_GATES, (batch, input, hidden), x, h_prev, weights, ("preact", preact))
}

/// Plain RNN step backward through the affine half, from `dpreact` (see
/// [`super::rnn_cell_backward`]): the rules and products of [`lstm_preact_backward`] with
/// one gate (`weight_ih (hidden, input)`, `weight_hh (hidden, hidden)`, biases `(hidden)`):
/// `grads` **accumulated**, `dx = dpreact·W_ih` and `dh_prev = dpreact·W_hh`
/// **overwritten**.
///
/// ```
/// use keel_kernels::rnn::{rnn_preact_backward, RnnWeightGrads, RnnWeights};
/// # fn main() -> keel_kernels::Result<()> {
/// // batch 1, input 2, hidden 1: dpreact (1, 1), x (1, 2), h_prev (1, 1).
/// let weights = RnnWeights { weight_ih: &[1.0, 2.0], weight_hh: &[3.0], bias_ih: &[0.5], bias_hh: &[0.25] };
/// // Gradients of the weights' shapes, accumulated: here starting from zero.
/// let (mut dw_ih, mut dw_hh, mut db_ih, mut db_hh) = ([0.0; 2], [0.0], [0.0], [0.0]);
/// let mut grads = RnnWeightGrads {
///     dweight_ih: &mut dw_ih,
///     dweight_hh: &mut dw_hh,
///     dbias_ih: &mut db_ih,
///     dbias_hh: &mut db_hh,
/// };
/// let (mut dx, mut dh_prev) = ([0.0; 2], [0.0]);
/// rnn_preact_backward(1, 2, 1, &[1.0], &[1.0, 1.0], &[2.0], &weights, &mut grads, &mut dx, &mut dh_prev)?;
/// assert_eq!((dx, dh_prev), ([1.0, 2.0], [3.0])); // dpreact·W_ih, dpreact·W_hh
/// assert_eq!((dw_ih, dw_hh, db_ih, db_hh), ([1.0, 1.0], [2.0], [1.0], [1.0])); // dpreactᵀ·x, ·h
/// # Ok(())
/// # }
/// ```
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
) -> Result<()> {
    let inputs = (("dpreact", dpreact), x, h_prev);
    summed_preact_backward(RNN_GATES, (batch, input, hidden), inputs, weights, grads, dx, dh_prev)
}

/// LSTM gate pre-activations `gates = x·W_ihᵀ + h_prev·W_hhᵀ + b_ih + b_hh`.
///
/// - `x` `(batch, input)`, `h_prev` `(batch, hidden)`: read only;
/// - `weights`: `weight_ih (4·hidden, input)`, `weight_hh (4·hidden, hidden)`, biases
///   `(4·hidden)`, gate blocks i, f, g, o;
/// - `gates` `(batch, 4·hidden)`: **overwritten**; the input of [`super::lstm_cell_forward`].
///
/// Two GEMMs (`β = 0`, then `β = 1` into the same block), each bias in its GEMM's epilogue.
/// Zero sizes are no-ops. Errors name the first slice whose length does not match. Called
/// as [`rnn_preact_forward`] (see its example); the [module docs](super) run a whole LSTM
/// step.
pub fn lstm_preact_forward(
    batch: usize,
    input: usize,
    hidden: usize,
    x: &[f32],
    h_prev: &[f32],
    weights: &RnnWeights<'_>,
    gates: &mut [f32],
) -> Result<()> {
    summed_preact_forward(LSTM_GATES, (batch, input, hidden), x, h_prev, weights, ("gates", gates))
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
/// `hidden = 0`. Errors name the first slice whose length does not match. Called as
/// [`rnn_preact_backward`] (see its example); the [module docs](super) run a whole LSTM step.
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
    let inputs = (("dgates", dgates), x, h_prev);
    summed_preact_backward(LSTM_GATES, (batch, input, hidden), inputs, weights, grads, dx, dh_prev)
}

/// The pre-activation of a cell whose gates sum both products (LSTM, plain RNN):
/// `out = x·W_ihᵀ + b_ih + h_prev·W_hhᵀ + b_hh`, `out` named `name` in errors.
fn summed_preact_forward(
    gates: usize,
    (batch, input, hidden): (usize, usize, usize),
    x: &[f32],
    h_prev: &[f32],
    weights: &RnnWeights<'_>,
    (name, out): (&str, &mut [f32]),
) -> Result<()> {
    let width = product("gates·hidden", gates, hidden)?;
    check_weights(gates, input, hidden, weights)?;
    check_matrix("x", "(batch, input)", batch, input, x.len())?;
    check_matrix("h_prev", "(batch, hidden)", batch, hidden, h_prev.len())?;
    check_matrix(name, &format!("(batch, {gates}·hidden)"), batch, width, out.len())?;
    projection_forward(batch, input, width, x, weights.weight_ih, weights.bias_ih, false, out)?;
    projection_forward(batch, hidden, width, h_prev, weights.weight_hh, weights.bias_hh, true, out)
}

/// The backward of [`summed_preact_forward`] from `dout` (named in errors): both weights
/// get the same `dout`.
fn summed_preact_backward(
    gates: usize,
    (batch, input, hidden): (usize, usize, usize),
    ((name, dout), x, h_prev): ((&str, &[f32]), &[f32], &[f32]),
    weights: &RnnWeights<'_>,
    grads: &mut RnnWeightGrads<'_>,
    dx: &mut [f32],
    dh_prev: &mut [f32],
) -> Result<()> {
    let width = product("gates·hidden", gates, hidden)?;
    check_weights(gates, input, hidden, weights)?;
    check_weight_grads(gates, input, hidden, grads)?;
    check_matrix(name, &format!("(batch, {gates}·hidden)"), batch, width, dout.len())?;
    check_matrix("x", "(batch, input)", batch, input, x.len())?;
    check_matrix("h_prev", "(batch, hidden)", batch, hidden, h_prev.len())?;
    check_matrix("dx", "(batch, input)", batch, input, dx.len())?;
    check_matrix("dh_prev", "(batch, hidden)", batch, hidden, dh_prev.len())?;
    projection_backward_weight(batch, input, width, dout, x, grads.dweight_ih, grads.dbias_ih)?;
    projection_backward_data(batch, input, width, dout, weights.weight_ih, false, dx)?;
    projection_backward_weight(batch, hidden, width, dout, h_prev, grads.dweight_hh, grads.dbias_hh)?;
    projection_backward_data(batch, hidden, width, dout, weights.weight_hh, false, dh_prev)
}

/// GRU pre-activations `gi = x·W_ihᵀ + b_ih` and `gh = h_prev·W_hhᵀ + b_hh`.
///
/// - `x` `(batch, input)`, `h_prev` `(batch, hidden)`: read only;
/// - `weights`: `weight_ih (3·hidden, input)`, `weight_hh (3·hidden, hidden)`, biases
///   `(3·hidden)`, gate blocks r, z, n;
/// - `gi`, `gh` `(batch, 3·hidden)`: **overwritten**; the inputs of [`super::gru_cell_forward`].
///
/// One GEMM per weight, its bias in the epilogue. Zero sizes are no-ops. Errors name the first
/// slice whose length does not match.
///
/// ```
/// use keel_kernels::rnn::{gru_preact_forward, RnnWeights};
/// # fn main() -> keel_kernels::Result<()> {
/// // batch 1, input 1, hidden 1: x, h_prev (1, 1); weights (3·hidden, ·), gate blocks r, z, n.
/// let weights = RnnWeights {
///     weight_ih: &[1.0, 2.0, 3.0],
///     weight_hh: &[-1.0, -2.0, -3.0],
///     bias_ih: &[0.5; 3],
///     bias_hh: &[0.25; 3],
/// };
/// let (mut gi, mut gh) = ([0.0; 3], [0.0; 3]); // (1, 3) each, kept apart
/// gru_preact_forward(1, 1, 1, &[2.0], &[1.0], &weights, &mut gi, &mut gh)?;
/// assert_eq!(gi, [2.5, 4.5, 6.5]); // x·W_ihᵀ + b_ih
/// assert_eq!(gh, [-0.75, -1.75, -2.75]); // h·W_hhᵀ + b_hh
/// # Ok(())
/// # }
/// ```
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
    projection_forward(batch, input, width, x, weights.weight_ih, weights.bias_ih, false, gi)?;
    projection_forward(batch, hidden, width, h_prev, weights.weight_hh, weights.bias_hh, false, gh)
}

/// GRU step backward through the affine half, from `dgi`, `dgh` and `dh_direct` (see
/// [`super::gru_cell_backward`]):
///
/// - `dgi`, `dgh` `(batch, 3·hidden)`, `dh_direct` `(batch, hidden)`, `x` `(batch, input)`,
///   `h_prev` `(batch, hidden)` (the forward inputs), `weights` as in
///   [`gru_preact_forward`]: read only;
/// - `grads`: **accumulated**: `dweight_ih += dgiᵀ·x`, `dweight_hh += dghᵀ·h_prev`,
///   `dbias_ih += Σ_rows dgi`, `dbias_hh += Σ_rows dgh`;
/// - `dx` `(batch, input)`: **overwritten** with `dgi·W_ih`;
/// - `dh_prev` `(batch, hidden)`: **overwritten** with `dh_direct + dgh·W_hh`, the whole
///   `∂L/∂h` (the direct path `z⊙dh'` and the path through the weights).
///
/// One GEMM per product. Zero sizes are no-ops, except that a non-empty `dx` is zeroed when
/// `hidden = 0`. Errors name the first slice whose length does not match. Called as
/// [`rnn_preact_backward`] with `dgi`, `dgh` and `dh_direct` in place of `dpreact` (see its
/// example).
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
) -> Result<()> {
    let width = product("3·hidden", GRU_GATES, hidden)?;
    check_weights(GRU_GATES, input, hidden, weights)?;
    check_weight_grads(GRU_GATES, input, hidden, grads)?;
    check_matrix("dgi", "(batch, 3·hidden)", batch, width, dgi.len())?;
    check_matrix("dgh", "(batch, 3·hidden)", batch, width, dgh.len())?;
    check_matrix("dh_direct", "(batch, hidden)", batch, hidden, dh_direct.len())?;
    check_matrix("x", "(batch, input)", batch, input, x.len())?;
    check_matrix("h_prev", "(batch, hidden)", batch, hidden, h_prev.len())?;
    check_matrix("dx", "(batch, input)", batch, input, dx.len())?;
    check_matrix("dh_prev", "(batch, hidden)", batch, hidden, dh_prev.len())?;
    projection_backward_weight(batch, input, width, dgi, x, grads.dweight_ih, grads.dbias_ih)?;
    projection_backward_data(batch, input, width, dgi, weights.weight_ih, false, dx)?;
    projection_backward_weight(batch, hidden, width, dgh, h_prev, grads.dweight_hh, grads.dbias_hh)?;
    // dh_prev = dh_direct + dgh·W_hh: the direct part first, then the GEMM with β = 1.
    dh_prev.copy_from_slice(dh_direct);
    projection_backward_data(batch, hidden, width, dgh, weights.weight_hh, true, dh_prev)
}

/// Leading dimensions of a `(rows, cols)` input and `(rows, width)` output: at least 1, as
/// `sgemm` requires even of empty matrices.
fn lds(cols: usize, width: usize) -> (usize, usize) {
    (cols.max(1), width.max(1))
}

/// The projection `y = x·wᵀ + b` on `rows` rows, the affine half of every cell:
///
/// - `x` `(rows, cols)`, `weight` `(width, cols)`, `bias` `(width)`: read only;
/// - `y` `(rows, width)`: **overwritten** with `x·wᵀ + b`, or, with `accumulate`,
///   `y += x·wᵀ + b` (a cell adding its recurrent product to the input projection).
///
/// One GEMM, the bias in its epilogue. A sequence layer calls it once for the input projection of
/// all time steps (`rows = seq·batch`); the recurrent one, once per step, goes through
/// [`projection_forward_packed`]. Zero sizes are no-ops (with `cols = 0`, `y` is the bias,
/// or gets it added). Errors name the first slice whose length does not match.
///
/// ```
/// use keel_kernels::rnn::projection_forward;
/// # fn main() -> keel_kernels::Result<()> {
/// // x (rows 2, cols 3), weight (width 2, cols 3), bias (2), y (2, 2).
/// let (x, weight, bias) = ([1.0, 2.0, 3.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0, 0.0, 2.0], [0.5, -1.0]);
/// let mut y = [0.0; 4];
/// projection_forward(2, 3, 2, &x, &weight, &bias, false, &mut y)?;
/// assert_eq!(y, [6.5, 5.0, 1.5, -1.0]);
/// // accumulate: y += x·wᵀ + b.
/// projection_forward(2, 3, 2, &x, &weight, &bias, true, &mut y)?;
/// assert_eq!(y, [13.0, 10.0, 3.0, -2.0]);
/// # Ok(())
/// # }
/// ```
#[allow(clippy::too_many_arguments)]
pub fn projection_forward(
    rows: usize,
    cols: usize,
    width: usize,
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    accumulate: bool,
    y: &mut [f32],
) -> Result<()> {
    check_projection((rows, cols, width), x, Some(weight), bias, y)?;
    let epilogue = bias_epilogue(bias);
    let beta = if accumulate { 1.0 } else { 0.0 };
    sgemm_fused(&projection_shape(rows, cols, width), 1.0, x, weight, beta, y, &epilogue)?;
    Ok(())
}

/// Packs `weight` `(width, cols)` once for [`projection_forward_packed`] (as the GEMM's B,
/// `wᵀ`, for the instruction set current now), reusing `packed`'s buffer: a recurrent
/// layer's `W_hh`, multiplied by every step's `h`. Errors (leaving `packed` as it was) when
/// `weight` is not `width·cols` long.
///
/// ```
/// use keel_kernels::gemm::PackedB;
/// use keel_kernels::rnn::{projection_forward_packed, projection_pack_weight};
/// # fn main() -> keel_kernels::Result<()> {
/// // weight (width 2, cols 3) packed once, then x (rows 1, cols 3) -> y (1, 2) at each step.
/// let mut packed = PackedB::default();
/// projection_pack_weight(2, 3, &[1.0, 1.0, 1.0, 0.0, 0.0, 2.0], &mut packed)?;
/// let mut y = [0.0; 2];
/// projection_forward_packed(1, 3, 2, &[1.0, 2.0, 3.0], &packed, &[0.5, -1.0], false, &mut y)?;
/// assert_eq!(y, [6.5, 5.0]);
/// projection_forward_packed(1, 3, 2, &[0.0, 1.0, 0.0], &packed, &[0.5, -1.0], false, &mut y)?;
/// assert_eq!(y, [1.5, -1.0]);
/// # Ok(())
/// # }
/// ```
pub fn projection_pack_weight(width: usize, cols: usize, weight: &[f32], packed: &mut PackedB) -> Result<()> {
    check_matrix("weight", "(width, cols)", width, cols, weight.len())?;
    packed.pack(&projection_shape(0, cols, width), weight)
}

/// [`projection_forward`] with the weight packed by [`projection_pack_weight`] (`width` and
/// `cols` must be those it was packed with): the same product without packing the weight
/// again. Errors as [`projection_forward`], and on a weight packed for other sizes. Shapes and
/// `accumulate` as [`projection_forward`]; see [`projection_pack_weight`]'s example.
#[allow(clippy::too_many_arguments)]
pub fn projection_forward_packed(
    rows: usize,
    cols: usize,
    width: usize,
    x: &[f32],
    weight: &PackedB,
    bias: &[f32],
    accumulate: bool,
    y: &mut [f32],
) -> Result<()> {
    check_projection((rows, cols, width), x, None, bias, y)?;
    let epilogue = bias_epilogue(bias);
    let beta = if accumulate { 1.0 } else { 0.0 };
    sgemm_prepacked(&projection_shape(rows, cols, width), 1.0, x, weight, beta, y, &epilogue)
}

/// The GEMM of a projection: `y (rows, width) = x (rows, cols) · wᵀ`, `w` `(width, cols)`.
fn projection_shape(rows: usize, cols: usize, width: usize) -> GemmShape {
    let (ld_x, ld_y) = lds(cols, width);
    GemmShape::new(rows, width, cols).transposed(Transpose::No, Transpose::Yes).with_ld(ld_x, ld_x, ld_y)
}

/// The bias of a projection, in the GEMM's epilogue (in registers on the packed path).
fn bias_epilogue(bias: &[f32]) -> Epilogue<'_> {
    Epilogue { bias: Bias::PerColumn(bias), activation: Activation::Identity }
}

/// Checks the slices of a projection in the order of its arguments (the weight unless it
/// is packed).
fn check_projection(
    (rows, cols, width): (usize, usize, usize),
    x: &[f32],
    weight: Option<&[f32]>,
    bias: &[f32],
    y: &[f32],
) -> Result<()> {
    check_matrix("x", "(rows, cols)", rows, cols, x.len())?;
    if let Some(weight) = weight {
        check_matrix("weight", "(width, cols)", width, cols, weight.len())?;
    }
    check_len(|| format!("bias (width) = ({width})"), width, bias.len())?;
    check_matrix("y", "(rows, width)", rows, width, y.len())
}

/// The input gradient of [`projection_forward`]: `dx = dy·weight`.
///
/// - `dy` `(rows, width)`, `weight` `(width, cols)`: read only;
/// - `dx` `(rows, cols)`: **overwritten** with `dy·weight`, or, with `accumulate`,
///   `dx += dy·weight` (the two directions of a bidirectional layer sharing one input, or a
///   GRU adding its weight path to the direct one).
///
/// One GEMM. Zero sizes are no-ops, except that a non-empty `dx` is zeroed (when not
/// accumulating) when `width = 0`. Errors name the first slice whose length does not match.
///
/// ```
/// use keel_kernels::rnn::projection_backward_data;
/// # fn main() -> keel_kernels::Result<()> {
/// // dy (rows 2, width 2), weight (width 2, cols 3), dx (2, 3).
/// let weight = [1.0, 1.0, 1.0, 0.0, 0.0, 2.0];
/// let mut dx = [f32::NAN; 6]; // overwritten, never read
/// projection_backward_data(2, 3, 2, &[1.0, 0.0, 1.0, 1.0], &weight, false, &mut dx)?;
/// assert_eq!(dx, [1.0, 1.0, 1.0, 1.0, 1.0, 3.0]);
/// // accumulate: dx += dy·weight.
/// projection_backward_data(2, 3, 2, &[0.0, 1.0, 0.0, 0.0], &weight, true, &mut dx)?;
/// assert_eq!(dx, [1.0, 1.0, 3.0, 1.0, 1.0, 3.0]);
/// # Ok(())
/// # }
/// ```
pub fn projection_backward_data(
    rows: usize,
    cols: usize,
    width: usize,
    dy: &[f32],
    weight: &[f32],
    accumulate: bool,
    dx: &mut [f32],
) -> Result<()> {
    check_matrix("dy", "(rows, width)", rows, width, dy.len())?;
    check_matrix("weight", "(width, cols)", width, cols, weight.len())?;
    check_matrix("dx", "(rows, cols)", rows, cols, dx.len())?;
    let (ld_x, ld_y) = lds(cols, width);
    // dx (rows, cols) = dy (rows, width) · w (width, cols) + β·dx.
    let shape = GemmShape::new(rows, cols, width).with_ld(ld_y, ld_x, ld_x);
    sgemm(&shape, 1.0, dy, weight, if accumulate { 1.0 } else { 0.0 }, dx)
}

/// The parameter gradients of [`projection_forward`], **accumulated**:
/// `dweight += dyᵀ·x`, `dbias += Σ_rows dy`.
///
/// - `dy` `(rows, width)`, `x` `(rows, cols)`: read only;
/// - `dweight` `(width, cols)`, `dbias` `(width)`: accumulated.
///
/// One GEMM over all rows: a sequence layer calls it once per weight after its time loop,
/// with the gate gradients and inputs of every step stacked (`rows = seq·batch`). The bias
/// sums run row after row, a fixed order whatever the thread count. Zero sizes are no-ops.
/// Errors name the first slice whose length does not match.
///
/// ```
/// use keel_kernels::rnn::projection_backward_weight;
/// # fn main() -> keel_kernels::Result<()> {
/// // dy (rows 2, width 2), x (rows 2, cols 3), dweight (2, 3), dbias (2).
/// let (dy, x) = ([1.0, 0.0, 0.0, 1.0], [1.0, 2.0, 3.0, 0.0, 1.0, 0.0]);
/// let (mut dweight, mut dbias) = ([1.0; 6], [0.5; 2]);
/// projection_backward_weight(2, 3, 2, &dy, &x, &mut dweight, &mut dbias)?;
/// // Accumulated: dweight += dyᵀ·x (row o sums dy[r, o]·x[r]), dbias += Σ_rows dy.
/// assert_eq!(dweight, [2.0, 3.0, 4.0, 1.0, 2.0, 1.0]);
/// assert_eq!(dbias, [1.5, 1.5]);
/// # Ok(())
/// # }
/// ```
pub fn projection_backward_weight(
    rows: usize,
    cols: usize,
    width: usize,
    dy: &[f32],
    x: &[f32],
    dweight: &mut [f32],
    dbias: &mut [f32],
) -> Result<()> {
    check_matrix("dy", "(rows, width)", rows, width, dy.len())?;
    check_matrix("x", "(rows, cols)", rows, cols, x.len())?;
    check_matrix("dweight", "(width, cols)", width, cols, dweight.len())?;
    check_len(|| format!("dbias (width) = ({width})"), width, dbias.len())?;
    let (ld_x, ld_y) = lds(cols, width);
    // dW (width, cols) += dyᵀ (width, rows) · x (rows, cols).
    let shape =
        GemmShape::new(width, cols, rows).transposed(Transpose::Yes, Transpose::No).with_ld(ld_y, ld_x, ld_x);
    sgemm(&shape, 1.0, dy, x, 1.0, dweight)?;
    if width > 0 {
        for row in dy.chunks_exact(width) {
            dbias.iter_mut().zip(row).for_each(|(db, dy)| *db += dy);
        }
    }
    Ok(())
}
