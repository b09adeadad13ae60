//! `Gru`: PyTorch's `nn.GRU`.

use rand::rngs::StdRng;

use super::engine::{Cell, Stack};
use super::{delegate_layer, GruConfig};
use crate::error::Result;
use crate::tensor::Tensor;

/// A gated recurrent unit layer, PyTorch's `nn.GRU` (gates r, z, n):
/// `r = σ(W_ir x + b_ir + W_hr h + b_hr)`, `z = σ(W_iz x + b_iz + W_hz h + b_hz)`,
/// `n = tanh(W_in x + b_in + r⊙(W_hn h + b_hn))`, `h' = (1 - z)⊙n + z⊙h`; stacked and
/// bidirectional as configured.
///
/// # Shapes
/// - input `(seq, batch, input_size)`, or `(batch, seq, input_size)` with `batch_first`;
/// - output `(seq, batch, D·hidden_size)` (`(batch, seq, D·hidden_size)` with `batch_first`),
///   `D = 2` if bidirectional else 1;
/// - initial and final states `(num_layers·D, batch, hidden_size)`;
/// - parameters `weight_ih_l{k}[_reverse] (3·hidden, in_k)`, `weight_hh_l{k}[_reverse]
///   (3·hidden, hidden)`, `bias_ih_l{k}[_reverse]`, `bias_hh_l{k}[_reverse]` `(3·hidden)`,
///   gate blocks r, z, n, with `in_0 = input_size`, `in_k = D·hidden_size` above.
///
/// See the [module docs](super) for the design.
#[derive(Debug, Clone)]
pub struct Gru {
    stack: Stack,
}

impl Gru {
    /// A layer with PyTorch's init (every parameter uniform in `±1/√hidden_size`); errors on
    /// a zero size, no layer, or a dropout outside `[0, 1)`.
    pub fn new(config: GruConfig, rng: &mut StdRng) -> Result<Self> {
        Ok(Gru { stack: Stack::new(Cell::Gru, config, rng)? })
    }

    /// The configuration.
    pub fn config(&self) -> GruConfig {
        *self.stack.config()
    }

    /// Sets the initial hidden state `h0 (num_layers·D, batch, hidden)` of the next forwards
    /// (checked there), or zeros with `None` (the default).
    pub fn set_initial_state(&mut self, h0: Option<Tensor>) {
        self.stack.set_initial_state(h0, None);
    }

    /// The final hidden state `h_n (num_layers·D, batch, hidden)` of the last forward.
    pub fn final_state(&self) -> &Tensor {
        self.stack.final_state().0
    }

    /// Sets the gradients of the final states `∂L/∂h_n` `(num_layers·D, batch, hidden)` that
    /// the next backwards add to the output's (checked there), for a loss that reads the
    /// final states (an encoder feeding a decoder); `None` is zeros (the default).
    pub fn set_grad_final_state(&mut self, dh_n: Option<Tensor>) {
        self.stack.set_grad_final_state(dh_n, None);
    }

    /// `∂L/∂h0 (num_layers·D, batch, hidden)` from the last backward.
    pub fn grad_initial_state(&self) -> &Tensor {
        self.stack.grad_initial_state().0
    }
}

delegate_layer!(Gru);
