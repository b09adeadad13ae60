//! `Rnn`: PyTorch's `nn.RNN`, `h_t = act(x_t·W_ihᵀ + b_ih + h_{t-1}·W_hhᵀ + b_hh)`.

use rand::rngs::StdRng;

use super::engine::Stack;
use super::pass::Cell;
use super::{delegate_layer, hidden_state_methods, Nonlinearity, RecurrentConfig};
use crate::error::Result;

/// The configuration of an [`Rnn`]: the shared one and the non-linearity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RnnConfig {
    /// Sizes, layers, directions, layout, dropout.
    pub recurrent: RecurrentConfig,
    /// `tanh` (default) or ReLU.
    pub nonlinearity: Nonlinearity,
}

impl RnnConfig {
    /// [`RecurrentConfig::new`] with `tanh`.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        RnnConfig {
            recurrent: RecurrentConfig::new(input_size, hidden_size),
            nonlinearity: Nonlinearity::Tanh,
        }
    }
}

/// A plain (Elman) recurrent layer, PyTorch's `nn.RNN`: `h_t = act(x_t·W_ihᵀ + b_ih +
/// h_{t-1}·W_hhᵀ + b_hh)` with `act` tanh or ReLU, stacked and bidirectional as configured.
///
/// # Shapes
/// - input `(seq, batch, input_size)`, or `(batch, seq, input_size)` with `batch_first`;
/// - output `(seq, batch, D·hidden_size)` (`(batch, seq, D·hidden_size)` with `batch_first`),
///   `D = 2` if bidirectional else 1;
/// - initial and final states `(num_layers·D, batch, hidden_size)`;
/// - parameters `weight_ih_l{k}[_reverse] (hidden, in_k)`, `weight_hh_l{k}[_reverse]
///   (hidden, hidden)`, `bias_ih_l{k}[_reverse]`, `bias_hh_l{k}[_reverse]` `(hidden)`, with
///   `in_0 = input_size`, `in_k = D·hidden_size` above.
///
/// See the [module docs](super) for the design.
///
/// ```
/// use keel_layers::{Layer, Mode, Nonlinearity, Rnn, RnnConfig, SeedableRng, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let config = RnnConfig { nonlinearity: Nonlinearity::Relu, ..RnnConfig::new(1, 1) };
/// let mut rnn = Rnn::new(config, &mut StdRng::seed_from_u64(0))?;
/// // Weights 1, biases 0: h_t = relu(x_t + h_{t-1}), a running sum.
/// rnn.visit_params(&mut |name, param| {
///     param.value.data_mut().fill(if name.starts_with("weight") { 1.0 } else { 0.0 });
/// });
/// let x = Tensor::from_vec(&[3, 1, 1], vec![1.0, 2.0, 3.0])?; // 3 steps, batch 1
/// rnn.forward(&x, Mode::Eval)?;
/// assert_eq!(rnn.output().data(), &[1.0, 3.0, 6.0]);
/// assert_eq!(rnn.final_state().data(), &[6.0]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Rnn {
    stack: Stack,
    nonlinearity: Nonlinearity,
}

impl Rnn {
    /// A layer with PyTorch's init (every parameter uniform in `±1/√hidden_size`); errors on
    /// a zero size, no layer, or a dropout outside `[0, 1)`.
    pub fn new(config: RnnConfig, rng: &mut StdRng) -> Result<Self> {
        let stack = Stack::new(Cell::Rnn(config.nonlinearity), config.recurrent, rng)?;
        Ok(Rnn { stack, nonlinearity: config.nonlinearity })
    }

    /// The configuration.
    pub fn config(&self) -> RnnConfig {
        RnnConfig { recurrent: *self.stack.config(), nonlinearity: self.nonlinearity }
    }
}

delegate_layer!(Rnn);
hidden_state_methods!(Rnn);
