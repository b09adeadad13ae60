//! Fused recurrent cells: plain RNN (Elman), LSTM and GRU steps on a batch, PyTorch
//! semantics.
//!
//! A recurrent step splits into an **affine half** (one GEMM per weight for all gates at once)
//! and a **cell half** (the gate non-linearities and the state update, one fused pass over
//! the gate block). Shapes are row-major, `batch` rows of samples, `H = hidden`.
//!
//! ## Plain RNN (PyTorch `nn.RNN`, one gate)
//! ```text
//! pre = x·W_ihᵀ + h·W_hhᵀ + b_ih + b_hh              (batch, H)    rnn_preact_forward
//! h' = act(pre), act = tanh or ReLU                                 rnn_cell_forward
//! ```
//! The cell is the activation kernel of [`crate::activation`] on the whole block; its output
//! `h'` is all that backward needs ([`rnn_cell_backward`]: `dpre = dh'⊙act'(h')`), so it has
//! no separate cache. [`rnn_preact_backward`] is the LSTM's affine backward with one gate.
//!
//! ## LSTM (gates in order i, f, g, o)
//! ```text
//! gates = x·W_ihᵀ + h·W_hhᵀ + b_ih + b_hh           (batch, 4H)   lstm_preact_forward
//! i, f, o = σ(gates_i, gates_f, gates_o), g = tanh(gates_g)
//! c' = f⊙c + i⊙g,  h' = o⊙tanh(c')                                lstm_cell_forward
//! ```
//! Backward runs the same halves in reverse: [`lstm_cell_backward`] turns `dh'` (and `dc'`)
//! into `dgates`, the gradient w.r.t. the **pre-activations**, and `dc`; then
//! [`lstm_preact_backward`] does one GEMM per weight: `dW_ih += dgatesᵀ·x`,
//! `dW_hh += dgatesᵀ·h`, `db_ih += Σ_rows dgates`, `db_hh += Σ_rows dgates`,
//! `dx = dgates·W_ih`, `dh = dgates·W_hh`.
//!
//! ## GRU (gates in order r, z, n)
//! ```text
//! gi = x·W_ihᵀ + b_ih,  gh = h·W_hhᵀ + b_hh          (batch, 3H)   gru_preact_forward
//! r = σ(gi_r + gh_r),  z = σ(gi_z + gh_z),  n = tanh(gi_n + r⊙gh_n)
//! h' = (1 - z)⊙n + z⊙h                                             gru_cell_forward
//! ```
//! `gi` and `gh` stay separate because `r` multiplies only the hidden part of `n`.
//! [`gru_cell_backward`] writes `dgi`, `dgh` and `dh_direct = z⊙dh'`, the part of `∂L/∂h`
//! that bypasses the weights; [`gru_preact_backward`] accumulates the weight gradients and
//! writes `dx = dgi·W_ih` and `dh_prev = dh_direct + dgh·W_hh`.
//!
//! ## Sequences: the projections on their own
//! A sequence layer computes the input projection of all time steps at once and keeps the
//! weight gradients for one GEMM per weight after the time loop. [`projection_forward`],
//! [`projection_backward_data`] and [`projection_backward_weight`] are the three products of
//! the affine half (`y = x·Wᵀ + b`, `dx = dy·W`, `dW += dyᵀ·x` with `db += Σ dy`) on any
//! number of rows, with which the `*_preact_*` functions are written.
//!
//! In the seed's notation (samples in columns, `Γ = σ(W_c[a, x] + b)` per gate) the two
//! weights are the column blocks of `W` acting on `x` and on `a = h`, stacked for all gates;
//! with samples in rows that is `x·W_ihᵀ + h·W_hhᵀ`.
//!
//! ## One LSTM step, forward and backward
//! ```
//! use keel_kernels::rnn::{self, RnnWeightGrads, RnnWeights};
//! # fn main() -> keel_kernels::Result<()> {
//! let (batch, input, hidden) = (2, 3, 4);
//! let (w_ih, w_hh, b_ih, b_hh) = (vec![0.1; 16 * 3], vec![-0.1; 16 * 4], vec![0.0; 16], vec![0.2; 16]);
//! let weights = RnnWeights { weight_ih: &w_ih, weight_hh: &w_hh, bias_ih: &b_ih, bias_hh: &b_hh };
//! let (x, h, c) = (vec![0.5; batch * input], vec![0.3; batch * hidden], vec![-0.2; batch * hidden]);
//! // Forward: gates (batch, 4H) is workspace; cache (batch, 5H) is kept for backward.
//! let mut gates = vec![0.0; batch * 4 * hidden];
//! let (mut h_next, mut c_next) = (vec![0.0; batch * hidden], vec![0.0; batch * hidden]);
//! let mut cache = vec![0.0; batch * 5 * hidden];
//! rnn::lstm_preact_forward(batch, input, hidden, &x, &h, &weights, &mut gates)?;
//! rnn::lstm_cell_forward(batch, hidden, &gates, &c, &mut c_next, &mut h_next, &mut cache)?;
//! // Backward from dL/dh' (no dL/dc' at the last step); gates is reused for dgates.
//! let dh_next = vec![1.0; batch * hidden];
//! let mut dc = vec![0.0; batch * hidden];
//! rnn::lstm_cell_backward(batch, hidden, &cache, &c, &dh_next, None, &mut gates, &mut dc)?;
//! let (mut dw_ih, mut dw_hh, mut db_ih, mut db_hh) =
//!     (vec![0.0; 16 * 3], vec![0.0; 16 * 4], vec![0.0; 16], vec![0.0; 16]);
//! let mut grads =
//!     RnnWeightGrads { dweight_ih: &mut dw_ih, dweight_hh: &mut dw_hh, dbias_ih: &mut db_ih, dbias_hh: &mut db_hh };
//! let (mut dx, mut dh) = (vec![0.0; batch * input], vec![0.0; batch * hidden]);
//! rnn::lstm_preact_backward(batch, input, hidden, &gates, &x, &h, &weights, &mut grads, &mut dx, &mut dh)?;
//! assert!(dh.iter().all(|g| g.is_finite() && *g != 0.0));
//! # Ok(())
//! # }
//! ```
//!
//! ## Caches
//! Forward cells write what backward needs into `cache`, so backward evaluates no
//! transcendental function: LSTM `(batch, 5H)` = `[i | f | g | o | tanh(c')]` per row
//! (activated gates), GRU `(batch, 4H)` = `[r | z | n | gh_n]` per row; the plain RNN's is its
//! output `h'` itself. Backward also takes the previous state (`c` for LSTM, `h` for GRU),
//! which a sequence layer keeps anyway.
//!
//! ## Conventions
//! **One rule for every cell**: outputs and input gradients (`dx`, `dh_prev`, `dc_prev`, and
//! the gate gradients) are **overwritten** (never read, so NaN already in them does not
//! leak); parameter gradients (`dweight_*`, `dbias_*`) are **accumulated** (`+=`), so a
//! sequence sums them over its steps and a zero-grad clears them, as everywhere in keel. The
//! projections' `accumulate` flag is the one exception a caller asks for by name. Every function checks its
//! slice lengths against the shape arguments (and reports sizes that overflow `usize` as
//! shape errors). Zero sizes are clean: `batch = 0` or `hidden = 0` leaves nothing to
//! compute (the affine backward still zeroes a non-empty `dx` when `hidden = 0`), and
//! `input = 0` is allowed (the input contributes nothing).
//!
//! The cell passes run per batch row (the forward cells in two SIMD passes over the row: the
//! gates into the cache, then the state from it, short dependency chains that the core
//! overlaps), on the instruction set of
//! [`current_isa`](crate::isa::current_isa) (run-time dispatch: 16 lanes on AVX-512, 8 on
//! AVX2 or portable), split over batch rows on the rayon pool above
//! [`crate::parallel::MIN_PARALLEL_ELEMENTS`] gate elements (a forward gate element counts
//! [`GATE_FORWARD_COST`], the weight at which splitting pays); rows are independent, so results do not
//! depend on the thread count. There is no scalar tail: when `hidden` is not a multiple of
//! the lane count the last vector block of a row overlaps the one before (lanes are computed
//! independently, so overlapped lanes get the same values again), and rows narrower than a
//! vector run on a zero-padded copy; every element therefore goes through the same vector
//! math. The vector σ and tanh are the activation module's (`simd::math`), shared with the
//! element-wise kernels; they use fused multiply-adds where the instruction set has them, so
//! results may differ in the last bits between instruction sets.
//! [`reference`](mod@reference) holds the scalar ground truth.

mod elman;
mod gru;
mod lstm;
mod preact;
pub mod reference;
mod rows;

pub use elman::{rnn_cell_backward, rnn_cell_forward, Nonlinearity};
pub use gru::{gru_cell_backward, gru_cell_forward};
pub use lstm::{lstm_cell_backward, lstm_cell_forward};
pub use preact::{
    gru_preact_backward, gru_preact_forward, lstm_preact_backward, lstm_preact_forward,
    projection_backward_data, projection_backward_weight, projection_forward, projection_forward_packed,
    projection_pack_weight, rnn_preact_backward, rnn_preact_forward,
};

use crate::error::{check_len, shape_error, Result};

/// Weight of one gate element of a forward cell pass (an `exp`, a reciprocal and about
/// fifteen vector operations) in units of the memory-speed element the thresholds of
/// [`crate::parallel`] count, set where splitting a step pays: a step of the LSTM at batch 32,
/// hidden 128 (65,536 weighted elements) runs 1.3x faster on two threads, the GRU's of the
/// same size (49,152) would not (`docs/tuning.md`). Backward passes are plain arithmetic at
/// memory speed and count 1.
pub const GATE_FORWARD_COST: usize = 4;

/// Number of gates of a plain RNN cell (the pre-activation itself).
pub const RNN_GATES: usize = 1;
/// Number of gates of an LSTM cell (i, f, g, o).
pub const LSTM_GATES: usize = 4;
/// Number of gates of a GRU cell (r, z, n).
pub const GRU_GATES: usize = 3;
/// Row width of the LSTM cache in units of `hidden`: `[i | f | g | o | tanh(c')]`.
pub const LSTM_CACHE_WIDTH: usize = 5;
/// Row width of the GRU cache in units of `hidden`: `[r | z | n | gh_n]`.
pub const GRU_CACHE_WIDTH: usize = 4;

/// The parameters of one recurrent layer, PyTorch names and shapes, with `G` gates
/// (`G = 4` for LSTM, `3` for GRU, `1` for the plain RNN) stacked in gate order along the rows.
#[derive(Debug, Clone, Copy)]
pub struct RnnWeights<'a> {
    /// `(G·hidden, input)`.
    pub weight_ih: &'a [f32],
    /// `(G·hidden, hidden)`.
    pub weight_hh: &'a [f32],
    /// `(G·hidden)`.
    pub bias_ih: &'a [f32],
    /// `(G·hidden)`.
    pub bias_hh: &'a [f32],
}

/// The gradients of [`RnnWeights`], same shapes, **accumulated** (`+=`) by the backward
/// functions.
#[derive(Debug)]
pub struct RnnWeightGrads<'a> {
    /// `(G·hidden, input)`.
    pub dweight_ih: &'a mut [f32],
    /// `(G·hidden, hidden)`.
    pub dweight_hh: &'a mut [f32],
    /// `(G·hidden)`.
    pub dbias_ih: &'a mut [f32],
    /// `(G·hidden)`.
    pub dbias_hh: &'a mut [f32],
}

/// `rows·cols`, or a shape error naming `what` if the product overflows `usize`.
fn product(what: &str, rows: usize, cols: usize) -> Result<usize> {
    rows.checked_mul(cols)
        .ok_or_else(|| shape_error(what, "a size that fits in usize", format!("{rows} x {cols}")))
}

/// Checks that the `(rows, cols)` matrix argument `name` (shape written as `shape`, e.g.
/// `"(batch, 4·hidden)"`) has `rows·cols` elements.
fn check_matrix(name: &str, shape: &str, rows: usize, cols: usize, len: usize) -> Result<()> {
    let expected = product(name, rows, cols)?;
    check_len(|| format!("{name} {shape} = ({rows}, {cols})"), expected, len)
}

/// Checks that the bias-shaped argument `name` has `width = gates·hidden` elements.
fn check_vector(name: &str, gates: usize, width: usize, len: usize) -> Result<()> {
    check_len(|| format!("{name} ({gates}·hidden) = ({width})"), width, len)
}

/// Checks [`RnnWeights`] against `(G·hidden, input)`, `(G·hidden, hidden)` and `(G·hidden)`.
fn check_weights(gates: usize, input: usize, hidden: usize, weights: &RnnWeights<'_>) -> Result<()> {
    let width = product("gates·hidden", gates, hidden)?;
    check_matrix("weight_ih", &format!("({gates}·hidden, input)"), width, input, weights.weight_ih.len())?;
    check_matrix("weight_hh", &format!("({gates}·hidden, hidden)"), width, hidden, weights.weight_hh.len())?;
    check_vector("bias_ih", gates, width, weights.bias_ih.len())?;
    check_vector("bias_hh", gates, width, weights.bias_hh.len())
}

/// Checks [`RnnWeightGrads`] against the shapes of [`check_weights`].
fn check_weight_grads(gates: usize, input: usize, hidden: usize, grads: &RnnWeightGrads<'_>) -> Result<()> {
    let width = product("gates·hidden", gates, hidden)?;
    check_matrix("dweight_ih", &format!("({gates}·hidden, input)"), width, input, grads.dweight_ih.len())?;
    check_matrix("dweight_hh", &format!("({gates}·hidden, hidden)"), width, hidden, grads.dweight_hh.len())?;
    check_vector("dbias_ih", gates, width, grads.dbias_ih.len())?;
    check_vector("dbias_hh", gates, width, grads.dbias_hh.len())
}
