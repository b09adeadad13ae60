//! Mean squared error (regression).

use keel_kernels::loss::{mse_backward, mse_forward};

use super::{check_same_shape, Loss};
use crate::error::{LayerError, Result};
use crate::metrics::RegressionTally;
use crate::tensor::Tensor;

/// Mean squared error over every element (PyTorch's `nn.MSELoss`): predictions and targets
/// of the same shape, any shape, e.g. `(batch, outputs)`. `loss = mean((pred - target)²)`;
/// backward gives `∂loss/∂pred = 2·(pred - target)/len`. (The course's `1/(2m)·Σ‖ŷ - y‖²`
/// is half of this loss when each sample has one output.) The metrics are [`Regression`](crate::metrics::Regression)'s
/// MAE and R².
///
/// # Shapes
/// Predictions, targets and [`Loss::backward`]'s gradient all of one shape.
///
/// ```
/// use keel_layers::{Loss, Mse, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut mse = Mse::new();
/// let pred = Tensor::from_vec(&[2, 1], vec![1.0, 3.0])?;
/// let target = Tensor::from_vec(&[2, 1], vec![0.0, 1.0])?;
/// assert_eq!(mse.forward(&pred, &target)?, 2.5); // (1² + 2²)/2
/// assert_eq!(mse.backward(&target)?.data(), &[1.0, 2.0]); // 2·(pred - target)/2
/// # Ok(())
/// # }
/// ```
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

    /// Errors unless a forward has run and `targets` has its shape.
    fn check_forward(&self, targets: &Tensor) -> Result<()> {
        if self.diff.is_empty() {
            return Err(LayerError::State("mse: backward or tally before forward".into()));
        }
        check_same_shape("mse", &self.diff, targets)
    }
}

impl Loss for Mse {
    /// Targets shaped like the predictions.
    type Target = Tensor;
    type Tally = RegressionTally;

    /// The mean loss; keeps the residual `pred - target` for [`Loss::backward`] and
    /// [`Loss::tally`].
    fn forward(&mut self, pred: &Tensor, targets: &Tensor) -> Result<f32> {
        check_same_shape("mse", pred, targets)?;
        self.diff.resize(pred.shape());
        Ok(mse_forward(pred.data(), targets.data(), self.diff.data_mut())?)
    }

    /// `∂loss/∂pred` for the last forward (same shape as the predictions).
    fn backward(&mut self, targets: &Tensor) -> Result<&Tensor> {
        self.check_forward(targets)?;
        self.grad.resize(self.diff.shape());
        mse_backward(self.diff.data(), self.grad.data_mut())?;
        Ok(&self.grad)
    }

    /// Adds the last forward's residuals and `targets` to the MAE and R² sums.
    fn tally(&self, _pred: &Tensor, targets: &Tensor, tally: &mut RegressionTally) -> Result<()> {
        self.check_forward(targets)?;
        tally.add(&self.diff, targets)
    }
}
