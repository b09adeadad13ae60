//! `Lstm`: PyTorch's `nn.LSTM`.

use rand::rngs::StdRng;

use super::engine::Stack;
use super::pass::Cell;
use super::{delegate_layer, LstmConfig};
use crate::error::Result;
use crate::tensor::Tensor;

/// A long short-term memory layer, PyTorch's `nn.LSTM` (gates i, f, g, o):
/// `i, f, o = σ(W_i· x + b_i· + W_h· h + b_h·)`, `g = tanh(...)`, `c' = f⊙c + i⊙g`,
/// `h' = o⊙tanh(c')`; stacked and bidirectional as configured.
///
/// # Shapes
/// - input `(seq, batch, input_size)`, or `(batch, seq, input_size)` with `batch_first`;
/// - output `(seq, batch, D·hidden_size)` (`(batch, seq, D·hidden_size)` with `batch_first`),
///   `D = 2` if bidirectional else 1;
/// - initial and final states `h`, `c`: `(num_layers·D, batch, hidden_size)` each;
/// - parameters `weight_ih_l{k}[_reverse] (4·hidden, in_k)`, `weight_hh_l{k}[_reverse]
///   (4·hidden, hidden)`, `bias_ih_l{k}[_reverse]`, `bias_hh_l{k}[_reverse]` `(4·hidden)`,
///   gate blocks i, f, g, o, with `in_0 = input_size`, `in_k = D·hidden_size` above.
///
/// See the [module docs](super) for the design.
///
/// Carrying the state from one call to the next (as step-by-step decoding does) continues the
/// sequence:
///
/// ```
/// use keel_layers::{Layer, Lstm, LstmConfig, Mode, SeedableRng, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut lstm = Lstm::new(LstmConfig::new(2, 3), &mut StdRng::seed_from_u64(0))?;
/// let x: Vec<f32> = (0..8).map(|v| v as f32 / 8.0).collect(); // 4 steps, batch 1
/// lstm.forward(&Tensor::from_vec(&[4, 1, 2], x.clone())?, Mode::Eval)?;
/// assert_eq!(lstm.output().shape(), &[4, 1, 3]);
/// let last_two = lstm.output().data()[6..].to_vec();
///
/// lstm.forward(&Tensor::from_vec(&[2, 1, 2], x[..4].to_vec())?, Mode::Eval)?;
/// let (h, c) = lstm.final_state();
/// lstm.set_initial_state(Some(h.clone()), Some(c.clone()));
/// lstm.forward(&Tensor::from_vec(&[2, 1, 2], x[4..].to_vec())?, Mode::Eval)?;
/// for (a, b) in lstm.output().data().iter().zip(&last_two) {
///     assert!((a - b).abs() < 1e-6);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Lstm {
    stack: Stack,
}

impl Lstm {
    /// A layer with PyTorch's init (every parameter uniform in `±1/√hidden_size`); errors on
    /// a zero size, no layer, or a dropout outside `[0, 1)`.
    pub fn new(config: LstmConfig, rng: &mut StdRng) -> Result<Self> {
        Ok(Lstm { stack: Stack::new(Cell::Lstm, config, rng)? })
    }

    /// The configuration.
    pub fn config(&self) -> LstmConfig {
        *self.stack.config()
    }

    /// Sets the initial states `h0`, `c0` `(num_layers·D, batch, hidden)` of the next
    /// forwards (checked there); `None` is zeros (the default).
    pub fn set_initial_state(&mut self, h0: Option<Tensor>, c0: Option<Tensor>) {
        self.stack.set_initial_state(h0, c0);
    }

    /// The final states `(h_n, c_n)`, `(num_layers·D, batch, hidden)` each, of the last
    /// forward.
    pub fn final_state(&self) -> (&Tensor, &Tensor) {
        self.stack.final_state()
    }

    /// Sets the gradients of the final states `∂L/∂h_n`, `∂L/∂c_n` `(num_layers·D, batch, hidden)` that
    /// the next backwards add to the output's (checked there), for a loss that reads the
    /// final states (an encoder feeding a decoder); `None` is zeros (the default).
    pub fn set_grad_final_state(&mut self, dh_n: Option<Tensor>, dc_n: Option<Tensor>) {
        self.stack.set_grad_final_state(dh_n, dc_n);
    }

    /// `(∂L/∂h0, ∂L/∂c0)`, `(num_layers·D, batch, hidden)` each, from the last backward.
    pub fn grad_initial_state(&self) -> (&Tensor, &Tensor) {
        self.stack.grad_initial_state()
    }
}

delegate_layer!(Lstm);
