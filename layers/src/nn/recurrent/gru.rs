//! `Gru`: PyTorch's `nn.GRU`.

use rand::rngs::StdRng;

use super::engine::Stack;
use super::pass::Cell;
use super::{delegate_layer, hidden_state_methods, GruConfig};
use crate::error::Result;

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
///
/// ```
/// use keel_layers::{param_counts, Gru, GruConfig, Layer, Mode, SeedableRng, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let config = GruConfig::new(3, 4).with_bidirectional(true).with_batch_first(true);
/// let mut gru = Gru::new(config, &mut StdRng::seed_from_u64(0))?;
/// gru.forward(&Tensor::zeros(&[2, 5, 3]), Mode::Eval)?; // 2 sequences of 5 steps
/// assert_eq!(gru.output().shape(), &[2, 5, 8]); // both directions side by side
/// assert_eq!(gru.final_state().shape(), &[2, 2, 4]);
/// // Per direction, 3 gate blocks: weight_ih (4x3), weight_hh (4x4), two biases (4).
/// assert_eq!(param_counts(&mut gru).trainable, 2 * 3 * (4 * 3 + 4 * 4 + 2 * 4));
/// # Ok(())
/// # }
/// ```
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
}

delegate_layer!(Gru);
hidden_state_methods!(Gru);
