//! Element-wise activation layers: ReLU, leaky ReLU, sigmoid, tanh.
//!
//! Any input shape; the output has the same shape. Backward uses the saved output
//! (`σ' = y(1-y)`, `tanh' = 1-y²`, `relu' = [y > 0]`), fused in one kernel pass.

use keel_kernels::activation as kernels;

use crate::error::{LayerError, Result};
use crate::layer::{Layer, Mode};
use crate::tensor::Tensor;

/// Which function an [`Activation`] layer applies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ActivationKind {
    /// `max(x, 0)`.
    Relu,
    /// `x` for `x > 0`, `slope·x` otherwise (`slope >= 0`).
    LeakyRelu(f32),
    /// `1/(1 + e^{-x})`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
}

/// An element-wise activation layer (see the module docs).
#[derive(Debug, Clone)]
pub struct Activation {
    kind: ActivationKind,
    output: Tensor,
    grad_input: Tensor,
}

impl Activation {
    /// A layer applying `kind`.
    pub fn new(kind: ActivationKind) -> Self {
        Activation { kind, output: Tensor::default(), grad_input: Tensor::default() }
    }
}

impl Layer for Activation {
    fn name(&self) -> String {
        format!("{:?}", self.kind).to_lowercase()
    }

    fn forward(&mut self, input: &Tensor, _mode: Mode) -> Result<()> {
        self.output.resize(input.shape());
        let (x, y) = (input.data(), self.output.data_mut());
        match self.kind {
            ActivationKind::Relu => kernels::relu_forward(x, y)?,
            ActivationKind::LeakyRelu(slope) => kernels::leaky_relu_forward(slope, x, y)?,
            ActivationKind::Sigmoid => kernels::sigmoid_forward(x, y)?,
            ActivationKind::Tanh => kernels::tanh_forward(x, y)?,
        }
        Ok(())
    }

    fn backward(&mut self, input: &Tensor, grad_output: &Tensor) -> Result<()> {
        if grad_output.shape() != self.output.shape() || input.shape() != self.output.shape() {
            return Err(LayerError::Shape {
                layer: format!("{} (gradient)", self.name()),
                expected: format!("{:?}, the shape of the last forward", self.output.shape()),
                actual: grad_output.shape().to_vec(),
            });
        }
        self.grad_input.resize(input.shape());
        let (y, dy, dx) = (self.output.data(), grad_output.data(), self.grad_input.data_mut());
        match self.kind {
            ActivationKind::Relu => kernels::relu_backward(y, dy, dx)?,
            ActivationKind::LeakyRelu(slope) => kernels::leaky_relu_backward(slope, y, dy, dx)?,
            ActivationKind::Sigmoid => kernels::sigmoid_backward(y, dy, dx)?,
            ActivationKind::Tanh => kernels::tanh_backward(y, dy, dx)?,
        }
        Ok(())
    }

    fn output(&self) -> &Tensor {
        &self.output
    }

    fn grad_input(&self) -> &Tensor {
        &self.grad_input
    }
}
