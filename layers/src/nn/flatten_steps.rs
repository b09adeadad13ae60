//! `FlattenSteps`: the many-to-many head of the recurrent layers, `(seq, batch, F)` →
//! `(seq·batch, F)`, so that a [`Dense`](crate::nn::Dense) behind it runs on every time step
//! at once (one GEMM over all steps, Keras' `TimeDistributed(Dense)`) and a
//! [`SoftmaxCrossEntropy`](crate::loss::SoftmaxCrossEntropy) behind that takes one class per
//! step, its mean then being per step: `Sequential[Lstm, FlattenSteps, Dense]` for a language
//! model predicting the next character at every step.
//!
//! The rows keep the input's order, so the targets are laid out to match it: the class of
//! step `t` of sequence `b` at index `t·batch + b` for a time-major input, `b·seq + t` for a
//! `batch_first` one. Nothing moves, so the layer needs no layout flag; as for
//! [`Flatten`](crate::nn::Flatten), the [`Layer`] contract has it own its output and input
//! gradient, so forward and backward are one copy each (reused buffers, no allocation on a
//! fixed shape).
//!
//! Padding of sequences of different lengths is not masked here: the recurrent layer's
//! outputs there are 0, so the dense head still predicts from its bias; give such steps a
//! target and they count in the loss.

use super::layer::{ensure_forward_ran, Layer, Mode};
use super::reshape::Reshaped;
use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// The layer's name in messages.
const NAME: &str = "flatten_steps";

/// Merges the two leading dimensions (time and batch, in either order) into one of rows.
///
/// # Shapes
/// - input `(seq, batch, features)` or `(batch, seq, features)`, any of them possibly 0;
/// - output `(seq·batch, features)`, overwritten, the input's values in the same order;
/// - input gradient: the input's shape, overwritten: `∂L/∂output` reshaped.
///
/// Errors ([`LayerError::Shape`]) on an input that is not 3-D and on a gradient not
/// `(seq·batch, features)`.
///
/// ```
/// use keel_layers::{Dense, FlattenSteps, Init, Layer, Lstm, LstmConfig, Mode};
/// use keel_layers::{SeedableRng, Sequential, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut rng = StdRng::seed_from_u64(0);
/// // A tagger: 5 classes at every step of 3 sequences of 4 steps.
/// let mut model = Sequential::new()
///     .push(Lstm::new(LstmConfig::new(6, 8), &mut rng)?)
///     .push(FlattenSteps::new())
///     .push(Dense::new(8, 5, Init::Xavier, &mut rng)?);
/// model.forward(&Tensor::zeros(&[4, 3, 6]), Mode::Eval)?;
/// assert_eq!(model.output().shape(), &[4 * 3, 5]); // row t·batch + b
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct FlattenSteps {
    buffers: Reshaped,
}

impl FlattenSteps {
    /// The layer.
    pub fn new() -> Self {
        FlattenSteps::default()
    }

    /// `[seq·batch, features]` of a 3-D `input`.
    fn dims_of(&self, input: &Tensor) -> Result<[usize; 2]> {
        match *input.shape() {
            [a, b, features] => Ok([a * b, features]),
            _ => Err(LayerError::Shape {
                layer: self.name(),
                expected: "(seq, batch, features) or (batch, seq, features), 3 dimensions".into(),
                actual: input.shape().to_vec(),
            }),
        }
    }
}

impl Layer for FlattenSteps {
    fn name(&self) -> String {
        NAME.into()
    }

    fn forward(&mut self, input: &Tensor, _mode: Mode) -> Result<()> {
        let dims = self.dims_of(input)?;
        self.buffers.forward(&dims, input);
        Ok(())
    }

    fn backward(&mut self, input: &Tensor, grad_output: &Tensor) -> Result<()> {
        ensure_forward_ran(&self.buffers.output, || NAME.into())?;
        let dims = self.dims_of(input)?;
        self.buffers.backward(|| NAME.into(), &dims, input, grad_output)
    }

    fn output(&self) -> &Tensor {
        &self.buffers.output
    }

    fn grad_input(&self) -> &Tensor {
        &self.buffers.grad_input
    }
}
