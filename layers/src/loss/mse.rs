//! Mean squared error (regression).

use keel_kernels::activation::{mse_backward, mse_forward};

use super::check_same_shape;
use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// Mean squared error over every element (PyTorch's `nn.MSELoss`): predictions and targets
/// of the same shape, any shape. `loss = mean((pred - target)²)`; backward gives
/// `∂loss/∂pred = 2·(pred - target)/len`. (The course's `1/(2m)·Σ‖ŷ - y‖²` is half of this
/// loss when each sample has one output.)
#[derive(Debug, Clone, Default)]
pub struct Mse {
    diff: Tensor,
    grad: Tensor,
}

impl Mse {
    /// A loss with empty buffers (sized on the first call).
    pub fn new() -> Self {
        Mse::default()
    }

    /// The mean loss; keeps the residual `pred - target` for [`Self::backward`].
    pub fn forward(&mut self, pred: &Tensor, targets: &Tensor) -> Result<f32> {
        check_same_shape("mse", pred, targets)?;
        self.diff.resize(pred.shape());
        Ok(mse_forward(pred.data(), targets.data(), self.diff.data_mut())?)
    }

    /// `∂loss/∂pred` for the last forward (same shape as the predictions).
    pub fn backward(&mut self) -> Result<&Tensor> {
        if self.diff.is_empty() {
            return Err(LayerError::State("mse: backward before forward".into()));
        }
        self.grad.resize(self.diff.shape());
        mse_backward(self.diff.data(), self.grad.data_mut())?;
        Ok(&self.grad)
    }
}
