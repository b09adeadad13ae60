//! Sigmoid + binary cross-entropy (binary or multi-label classification).

use keel_kernels::activation::{bce_with_logits_backward, bce_with_logits_forward};

use super::check_same_shape;
use crate::error::Result;
use crate::tensor::Tensor;

/// Sigmoid followed by binary cross-entropy, averaged over every element (PyTorch's
/// `nn.BCEWithLogitsLoss`): logits and targets (probabilities, usually 0 or 1) of the same
/// shape, any shape, e.g. `(batch, 1)` or `(batch, labels)`.
/// `loss = mean(max(z, 0) - z·y + ln(1 + e^{-|z|}))`; backward gives
/// `∂loss/∂logits = (σ(z) - y)/len`.
#[derive(Debug, Clone, Default)]
pub struct BceWithLogits {
    probs: Tensor,
    grad: Tensor,
}

impl BceWithLogits {
    /// A loss with empty buffers (sized on the first call).
    pub fn new() -> Self {
        BceWithLogits::default()
    }

    /// The mean loss; keeps `σ(logits)` for [`Self::backward`] and [`Self::probs`].
    pub fn forward(&mut self, logits: &Tensor, targets: &Tensor) -> Result<f32> {
        check_same_shape("bce_with_logits", logits, targets)?;
        self.probs.resize(logits.shape());
        Ok(bce_with_logits_forward(logits.data(), targets.data(), self.probs.data_mut())?)
    }

    /// `∂loss/∂logits` for the last forward (same shape as the logits).
    pub fn backward(&mut self, targets: &Tensor) -> Result<&Tensor> {
        check_same_shape("bce_with_logits", &self.probs, targets)?;
        self.grad.resize(self.probs.shape());
        bce_with_logits_backward(self.probs.data(), targets.data(), self.grad.data_mut())?;
        Ok(&self.grad)
    }

    /// The probabilities `σ(logits)` of the last forward.
    pub fn probs(&self) -> &Tensor {
        &self.probs
    }
}
