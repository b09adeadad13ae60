//! The buffers and passes of a layer that only reshapes ([`Flatten`](super::Flatten),
//! [`FlattenSteps`](super::FlattenSteps)): row-major data keeps its order, but the
//! [`Layer`](super::Layer) contract has each layer own its output and input gradient, so
//! forward and backward are one copy each into buffers reused across calls.

use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// The output and input-gradient buffers of a reshaping layer.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reshaped {
    pub(crate) output: Tensor,
    pub(crate) grad_input: Tensor,
}

impl Reshaped {
    /// The output: `input`'s values with the shape `dims`.
    pub(crate) fn forward(&mut self, dims: &[usize], input: &Tensor) {
        self.output.resize(dims);
        self.output.data_mut().copy_from_slice(input.data());
    }

    /// The input gradient: `grad_output` (which must have the shape `dims`, else an error
    /// naming the layer, whose name `layer` makes only then) with `input`'s shape.
    pub(crate) fn backward(
        &mut self,
        layer: impl FnOnce() -> String,
        dims: &[usize],
        input: &Tensor,
        grad_output: &Tensor,
    ) -> Result<()> {
        if grad_output.shape() != dims {
            return Err(LayerError::Shape {
                layer: format!("{} (gradient)", layer()),
                expected: format!("{dims:?}"),
                actual: grad_output.shape().to_vec(),
            });
        }
        self.grad_input.resize(input.shape());
        self.grad_input.data_mut().copy_from_slice(grad_output.data());
        Ok(())
    }
}
