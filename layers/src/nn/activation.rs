//! Element-wise activation layers: ReLU, leaky ReLU, sigmoid, tanh.
//!
//! Any input shape; the output has the same shape. Backward uses the saved output
//! (`σ' = y(1-y)`, `tanh' = 1-y²`, `relu' = [y > 0]`), fused in one kernel pass.

use keel_kernels::activation as kernels;
use keel_kernels::gemm::Activation as EpilogueActivation;

use super::layer::{check_backward_shapes, ensure_forward_ran, Layer, Mode};
use crate::error::Result;
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

impl ActivationKind {
    /// `y = f(x)`; `x` and `y` have the same length.
    pub(crate) fn forward(self, x: &[f32], y: &mut [f32]) -> Result<()> {
        match self {
            ActivationKind::Relu => kernels::relu_forward(x, y)?,
            ActivationKind::LeakyRelu(slope) => kernels::leaky_relu_forward(slope, x, y)?,
            ActivationKind::Sigmoid => kernels::sigmoid_forward(x, y)?,
            ActivationKind::Tanh => kernels::tanh_forward(x, y)?,
        }
        Ok(())
    }

    /// `y = f(y)` in place (the fused activation of `Dense` and `Conv2d`).
    pub(crate) fn forward_inplace(self, y: &mut [f32]) -> Result<()> {
        match self {
            ActivationKind::Relu => kernels::relu_forward_inplace(y),
            ActivationKind::LeakyRelu(slope) => kernels::leaky_relu_forward_inplace(slope, y)?,
            ActivationKind::Sigmoid => kernels::sigmoid_forward_inplace(y),
            ActivationKind::Tanh => kernels::tanh_forward_inplace(y),
        }
        Ok(())
    }

    /// `dx = dy · f'(x)`, with `f'` computed from the output `y = f(x)`; all the same length.
    pub(crate) fn backward(self, y: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<()> {
        match self {
            ActivationKind::Relu => kernels::relu_backward(y, dy, dx)?,
            ActivationKind::LeakyRelu(slope) => kernels::leaky_relu_backward(slope, y, dy, dx)?,
            ActivationKind::Sigmoid => kernels::sigmoid_backward(y, dy, dx)?,
            ActivationKind::Tanh => kernels::tanh_backward(y, dy, dx)?,
        }
        Ok(())
    }

    /// What a matrix product's epilogue can apply of `activation` (ReLU and leaky ReLU),
    /// and what is left to apply in place afterwards (sigmoid, tanh).
    pub(crate) fn split_for_epilogue(
        activation: Option<ActivationKind>,
    ) -> (EpilogueActivation, Option<ActivationKind>) {
        match activation {
            None => (EpilogueActivation::Identity, None),
            Some(ActivationKind::Relu) => (EpilogueActivation::Relu, None),
            Some(ActivationKind::LeakyRelu(slope)) => (EpilogueActivation::LeakyRelu(slope), None),
            Some(other) => (EpilogueActivation::Identity, Some(other)),
        }
    }

    /// The name in layer descriptions, e.g. `relu`.
    pub(crate) fn name(self) -> String {
        format!("{self:?}").to_lowercase()
    }
}

/// The gradient before a layer's optional fused activation: `grad` itself without one, else
/// `grad · f'` (from the layer's `output`) written to `scratch`, which is resized to match.
pub(crate) fn grad_before_activation<'a>(
    activation: Option<ActivationKind>,
    output: &Tensor,
    grad: &'a Tensor,
    scratch: &'a mut Tensor,
) -> Result<&'a [f32]> {
    match activation {
        Some(activation) => {
            scratch.resize(grad.shape());
            activation.backward(output.data(), grad.data(), scratch.data_mut())?;
            Ok(scratch.data())
        }
        None => Ok(grad.data()),
    }
}

/// An element-wise activation layer (see the module docs).
///
/// # Shapes
/// Input any shape; output and input gradient the input's shape.
///
/// ```
/// use keel_layers::{Activation, ActivationKind, Layer, Mode, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut relu = Activation::new(ActivationKind::Relu);
/// let x = Tensor::from_vec(&[1, 3], vec![-1.0, 0.5, 2.0])?;
/// relu.forward(&x, Mode::Train)?;
/// assert_eq!(relu.output().data(), &[0.0, 0.5, 2.0]);
/// relu.backward(&x, &Tensor::from_vec(&[1, 3], vec![1.0; 3])?)?;
/// assert_eq!(relu.grad_input().data(), &[0.0, 1.0, 1.0]);
///
/// let mut sigmoid = Activation::new(ActivationKind::Sigmoid);
/// sigmoid.forward(&Tensor::zeros(&[2, 2]), Mode::Eval)?;
/// assert_eq!(sigmoid.output().data(), &[0.5; 4]);
/// # Ok(())
/// # }
/// ```
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
        self.kind.name()
    }

    fn forward(&mut self, input: &Tensor, _mode: Mode) -> Result<()> {
        self.output.resize(input.shape());
        self.kind.forward(input.data(), self.output.data_mut())
    }

    fn backward(&mut self, input: &Tensor, grad_output: &Tensor) -> Result<()> {
        ensure_forward_ran(&self.output, || self.name())?;
        check_backward_shapes(|| self.name(), self.output.shape(), grad_output, Some(input))?;
        self.grad_input.resize(input.shape());
        self.kind.backward(self.output.data(), grad_output.data(), self.grad_input.data_mut())
    }

    fn output(&self) -> &Tensor {
        &self.output
    }

    fn grad_input(&self) -> &Tensor {
        &self.grad_input
    }
}
