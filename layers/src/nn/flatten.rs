//! `Flatten`: `(n, d1, d2, ...) → (n, d1·d2·...)`, e.g. between a conv stack and a dense
//! head (PyTorch's `nn.Flatten()`, `start_dim = 1`).
//!
//! Row-major data does not move when flattened, but the [`Layer`] contract has each layer
//! own its output and input-gradient tensors (with their own shapes), so forward copies the
//! input into the output buffer and backward copies `grad_output` into the input-gradient
//! buffer, both reused across calls (no allocation on a fixed batch shape). The copies cost
//! one read and one write of the activations, small beside the layers around it.

use super::layer::{ensure_forward_ran, Layer, Mode};
use super::reshape::Reshaped;
use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// The layer's name in messages.
const NAME: &str = "flatten";

/// Flattens every dimension after the batch (see the module docs).
///
/// # Shapes
/// - input `(n, d1, d2, ...)`, `n >= 1`, at least two dimensions;
/// - output `(n, d1·d2·...)`, the values in the same order.
///
/// ```
/// use keel_layers::{Flatten, Layer, Mode, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut flatten = Flatten::new();
/// flatten.forward(&Tensor::zeros(&[2, 16, 5, 5]), Mode::Eval)?;
/// assert_eq!(flatten.output().shape(), &[2, 400]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Flatten {
    buffers: Reshaped,
}

impl Flatten {
    /// The layer.
    pub fn new() -> Self {
        Flatten::default()
    }

    /// `(n, prod)` of `input`, if it has a batch dimension `n >= 1` and at least one more.
    fn dims_of(&self, input: &Tensor) -> Result<[usize; 2]> {
        match input.shape() {
            [n, rest @ ..] if *n >= 1 && !rest.is_empty() => Ok([*n, rest.iter().product()]),
            _ => Err(LayerError::Shape {
                layer: self.name(),
                expected: "(batch >= 1, d1, ...) with at least 2 dimensions".into(),
                actual: input.shape().to_vec(),
            }),
        }
    }
}

impl Layer for Flatten {
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
