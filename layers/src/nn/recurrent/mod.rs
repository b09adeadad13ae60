//! Recurrent layers: [`Rnn`], [`Gru`], [`Lstm`], PyTorch's `nn.RNN`, `nn.GRU`, `nn.LSTM`
//! (stacked, bidirectional, batch-first, dropout between layers), on the fused cells of
//! [`keel_kernels::rnn`].
//!
//! # Shapes
//! Input `(seq, batch, input_size)`, or `(batch, seq, input_size)` with `batch_first`;
//! output `(seq, batch, D·hidden_size)` (`(batch, seq, ...)` with `batch_first`), `D = 2` when
//! bidirectional, else 1: the last layer's hidden state at every step, the reverse
//! direction's in the second half of each row. Initial and final states are
//! `(num_layers·D, batch, hidden_size)` whatever `batch_first`, layer after layer, forward
//! direction first. Parameters are PyTorch's, names and shapes, so a safetensors file
//! carries across: for layer `k` (and `_reverse` for the second direction)
//! `weight_ih_l{k} (G·hidden, input)` (`input = input_size` for layer 0, `D·hidden` above),
//! `weight_hh_l{k} (G·hidden, hidden)`, `bias_ih_l{k}`, `bias_hh_l{k}` `(G·hidden)`, with
//! `G` = 1 (RNN), 3 (GRU: r, z, n) or 4 (LSTM: i, f, g, o) gate blocks stacked along the
//! rows; visited in that order, layer after layer.
//!
//! A **many-to-one** model (one prediction per sequence) puts a head between the recurrent
//! layer and a dense one: [`LastStep`](crate::nn::LastStep) (the output after the whole
//! sequence, both directions) or [`MeanOverTime`](crate::nn::MeanOverTime), e.g.
//! `Sequential[Lstm, LastStep, Dense]` (`examples/lstm_mnist.rs`). A **many-to-many** model
//! (one prediction per step) flattens the steps into rows instead:
//! [`FlattenSteps`](crate::nn::FlattenSteps), `Sequential[Lstm, FlattenSteps, Dense]`, with
//! one target per step. **One-to-many** generation feeds each step's choice back as the next
//! input, carrying the state: [`sampling`] (greedy or at a temperature,
//! `examples/char_lm.rs`), or [`beam`] search, which keeps the best few sequences and one
//! state row for each (`examples/seq2seq_attention.rs`).
//!
//! # Design
//! One layer in one direction (a *unit*) runs the two halves of the kernels' cells over time:
//! - **forward**: the input projection of all steps is **one GEMM**,
//!   `(seq·batch, input) · W_ihᵀ + b_ih` into a `(seq, batch, G·hidden)` block; then each
//!   step adds its recurrent projection `h·W_hhᵀ + b_hh` (**one GEMM per step**, into the
//!   step's rows of that block for RNN and LSTM, into a block of its own for GRU, whose `r`
//!   multiplies only the hidden part) and runs the **fused cell** on it, which saves in the
//!   unit's per-step caches what backward needs. Hidden (and LSTM cell) states of every
//!   step stay in a `(seq + 1, batch, hidden)` buffer, the initial state in its first slot
//!   (the last for the reverse direction);
//! - **backward through time**: steps in reverse, each `dh = ∂L/∂out_t + carry`, the cell's
//!   backward into the step's gate gradients (over the forward's pre-activations, no longer
//!   needed), and `carry = dgates·W_hh` (one GEMM per step; GRU adds its direct part
//!   `z⊙dh`). After the loop the **weight gradients of all steps are one GEMM per weight**
//!   (`dW_ih += dGᵀ·X`, `dW_hh += dGᵀ·H_prev` over `seq·batch` rows, `H_prev` being the state
//!   buffer shifted by a slot) and `dX = dG·W_ih` is one more (the reverse direction adds
//!   to the forward one's);
//! - **threads**: batch rows are independent through time, so on a pool of several threads
//!   a unit whose recurrent products reach 2²⁰ multiply-adds splits its batch into one
//!   *part* per thread, and each thread runs every step on its part's rows alone (no
//!   exchange between steps; its per-step buffers are the part's contiguous blocks). The
//!   products over all steps (the input projection, the weight gradients, `dX`) stay one
//!   GEMM each on the rows in the parts' order. Smaller units run on one part and let each
//!   step's kernels split when the step's cell is large enough;
//! - **layers** feed each other their `(seq, batch, D·hidden)` outputs, through a
//!   [`Dropout`](crate::nn::Dropout) in training when `dropout > 0` (not after the last);
//!   `batch_first` input and output are transposed once at the ends, time-major inside.
//!
//! **Sequences of different lengths** (`set_lengths`, PyTorch's packed sequences on padded
//! input) run on the full batch: at the steps past a row's length, the row's state is
//! copied through unchanged (so the final state is the one at its last step, and the
//! reverse direction starts there from the initial state), its output is 0, and in backward
//! its gate gradients are zeroed and its carries pass through, so the padding contributes to
//! no gradient. The wasted work is the padding's share of the batch.
//!
//! Every buffer is owned by the layer and resized in place, so a steady-state step (same
//! `seq` and `batch`) allocates nothing; parameter names are built once for the same reason.
//! Gradients follow the [`Layer`](crate::nn::Layer) rule: parameter gradients accumulate,
//! the input gradient is overwritten; the gradients of the initial states are kept too
//! (`grad_initial_state`), and gradients of the final states can be given
//! (`set_grad_final_state`): they start the carries of backward through time.

pub mod beam;
mod engine;
mod gru;
mod lstm;
mod parts;
mod pass;
mod rnn;
pub mod sampling;
mod steps;

pub use beam::{select_beams, BeamSearch, Hypothesis};
pub use gru::Gru;
pub use keel_kernels::rnn::Nonlinearity;
pub use lstm::Lstm;
pub use rnn::{Rnn, RnnConfig};
pub use sampling::{argmax, sample, softmax_with_temperature, Decoding, Sampler};

/// The configuration shared by the recurrent layers, PyTorch's constructor arguments.
///
/// ```
/// use keel_layers::{Layer, Lstm, Mode, RecurrentConfig, SeedableRng, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// // Two stacked bidirectional layers, dropout 0.2 between them in training.
/// let config = RecurrentConfig::new(10, 32).with_layers(2).with_bidirectional(true).with_dropout(0.2);
/// assert_eq!(config.directions(), 2);
/// let mut lstm = Lstm::new(config, &mut StdRng::seed_from_u64(0))?;
/// lstm.forward(&Tensor::zeros(&[7, 4, 10]), Mode::Train)?; // 7 steps, batch 4
/// assert_eq!(lstm.output().shape(), &[7, 4, 64]);
/// assert_eq!(lstm.final_state().0.shape(), &[4, 4, 32]); // (num_layers·D, batch, hidden)
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecurrentConfig {
    /// Features of each input step.
    pub input_size: usize,
    /// Units of the hidden state.
    pub hidden_size: usize,
    /// Stacked layers, each reading the output of the one below.
    pub num_layers: usize,
    /// Whether each layer also runs from the last step to the first (`D = 2`).
    pub bidirectional: bool,
    /// Input and output `(batch, seq, feature)` instead of `(seq, batch, feature)`.
    pub batch_first: bool,
    /// Dropout probability on the output of every layer but the last, in training.
    pub dropout: f32,
}

/// The configuration of a [`Gru`].
pub type GruConfig = RecurrentConfig;
/// The configuration of an [`Lstm`].
pub type LstmConfig = RecurrentConfig;

impl RecurrentConfig {
    /// One layer, one direction, time-major, no dropout (PyTorch's defaults).
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        RecurrentConfig {
            input_size,
            hidden_size,
            num_layers: 1,
            bidirectional: false,
            batch_first: false,
            dropout: 0.0,
        }
    }

    /// The same with `num_layers` stacked layers.
    pub fn with_layers(self, num_layers: usize) -> Self {
        RecurrentConfig { num_layers, ..self }
    }

    /// The same, bidirectional or not.
    pub fn with_bidirectional(self, bidirectional: bool) -> Self {
        RecurrentConfig { bidirectional, ..self }
    }

    /// The same, batch-first or not.
    pub fn with_batch_first(self, batch_first: bool) -> Self {
        RecurrentConfig { batch_first, ..self }
    }

    /// The same with dropout `p` between layers.
    pub fn with_dropout(self, dropout: f32) -> Self {
        RecurrentConfig { dropout, ..self }
    }

    /// `D`: 2 when bidirectional, else 1.
    pub fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }
}

/// Implements [`Layer`](crate::nn::Layer) for a wrapper of a `stack: engine::Stack`, and
/// the methods the three layers share alike.
macro_rules! delegate_layer {
    ($layer:ty) => {
        impl $layer {
            /// Sets each batch row's sequence length (`1..=seq`, checked at the next forward)
            /// for the next passes, for a batch of sequences of different lengths padded to
            /// `seq` steps: PyTorch's `pack_padded_sequence(enforce_sorted=False)`, run, then
            /// `pad_packed_sequence`. A row stops at its length: its outputs past it are 0,
            /// its final state is the one at its last step, the reverse direction starts
            /// there, and its padding gets no gradient. `None` (the default): every row has
            /// `seq` steps.
            pub fn set_lengths(&mut self, lengths: Option<Vec<usize>>) {
                self.stack.set_lengths(lengths);
            }
        }

        impl $crate::nn::Layer for $layer {
            fn name(&self) -> String {
                self.stack.name()
            }
            fn forward(
                &mut self,
                input: &$crate::tensor::Tensor,
                mode: $crate::nn::Mode,
            ) -> $crate::error::Result<()> {
                self.stack.forward(input, mode)
            }
            fn backward(
                &mut self,
                input: &$crate::tensor::Tensor,
                grad_output: &$crate::tensor::Tensor,
            ) -> $crate::error::Result<()> {
                self.stack.backward(input, grad_output)
            }
            fn output(&self) -> &$crate::tensor::Tensor {
                self.stack.output()
            }
            fn grad_input(&self) -> &$crate::tensor::Tensor {
                self.stack.grad_input()
            }
            fn set_input_grad(&mut self, needed: bool) {
                self.stack.set_input_grad(needed)
            }
            fn visit_params(&mut self, visit: &mut dyn FnMut(&str, &mut $crate::nn::Param)) {
                self.stack.visit_params(visit)
            }
        }
    };
}
use delegate_layer;

/// The state methods of a layer whose only state is `h` ([`Rnn`], [`Gru`]), for a wrapper of
/// a `stack: engine::Stack` (the LSTM's take `c` beside `h`).
macro_rules! hidden_state_methods {
    ($layer:ty) => {
        impl $layer {
            /// Sets the initial hidden state `h0 (num_layers·D, batch, hidden)` of the next
            /// forwards (checked there), or zeros with `None` (the default).
            pub fn set_initial_state(&mut self, h0: Option<$crate::tensor::Tensor>) {
                self.stack.set_initial_state(h0, None);
            }

            /// The final hidden state `h_n (num_layers·D, batch, hidden)` of the last forward.
            pub fn final_state(&self) -> &$crate::tensor::Tensor {
                self.stack.final_state().0
            }

            /// Sets the gradient of the final state `∂L/∂h_n (num_layers·D, batch, hidden)`
            /// that the next backwards add to the output's (checked there), for a loss that
            /// reads the final state (an encoder feeding a decoder); `None` is zeros (the
            /// default).
            pub fn set_grad_final_state(&mut self, dh_n: Option<$crate::tensor::Tensor>) {
                self.stack.set_grad_final_state(dh_n, None);
            }

            /// `∂L/∂h0 (num_layers·D, batch, hidden)` from the last backward.
            pub fn grad_initial_state(&self) -> &$crate::tensor::Tensor {
                self.stack.grad_initial_state().0
            }
        }
    };
}
use hidden_state_methods;
