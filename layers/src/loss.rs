//! Losses, each returning the mean over its elements and then its gradient with respect to
//! the network's output: softmax + cross-entropy for classes, sigmoid + binary cross-entropy
//! for binary (or multi-label) targets, mean squared error for regression.

use keel_kernels::activation::{
    bce_with_logits_backward, bce_with_logits_forward, mse_backward, mse_forward,
    softmax_cross_entropy_backward, softmax_cross_entropy_forward,
};

use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// Softmax followed by cross-entropy, averaged over the batch (PyTorch's
/// `nn.CrossEntropyLoss`): logits `(batch, classes)`, targets `batch` class indices.
/// Backward gives `∂loss/∂logits = (softmax(logits) - onehot(targets))/batch`.
#[derive(Debug, Clone, Default)]
pub struct SoftmaxCrossEntropy {
    probs: Tensor,
    grad: Tensor,
}

impl SoftmaxCrossEntropy {
    /// A loss with empty buffers (sized on the first call).
    pub fn new() -> Self {
        SoftmaxCrossEntropy::default()
    }

    fn dims(logits: &Tensor) -> Result<(usize, usize)> {
        match *logits.shape() {
            [batch, classes] if batch >= 1 && classes >= 1 => Ok((batch, classes)),
            _ => Err(LayerError::Shape {
                layer: "softmax_cross_entropy".into(),
                expected: "(batch >= 1, classes >= 1)".into(),
                actual: logits.shape().to_vec(),
            }),
        }
    }

    /// The mean loss; keeps the probabilities for [`Self::backward`] and [`Self::probs`].
    pub fn forward(&mut self, logits: &Tensor, targets: &[u32]) -> Result<f32> {
        let (batch, classes) = Self::dims(logits)?;
        self.probs.resize(logits.shape());
        Ok(softmax_cross_entropy_forward(batch, classes, logits.data(), targets, self.probs.data_mut())?)
    }

    /// `∂loss/∂logits` for the last forward.
    pub fn backward(&mut self, targets: &[u32]) -> Result<&Tensor> {
        let (batch, classes) = Self::dims(&self.probs)?;
        self.grad.resize(self.probs.shape());
        softmax_cross_entropy_backward(batch, classes, self.probs.data(), targets, self.grad.data_mut())?;
        Ok(&self.grad)
    }

    /// The softmax probabilities of the last forward, `(batch, classes)`.
    pub fn probs(&self) -> &Tensor {
        &self.probs
    }
}

/// Checks that `targets` has the shape of the network output `outputs` (at least one value).
fn check_same_shape(loss: &str, outputs: &Tensor, targets: &Tensor) -> Result<()> {
    if outputs.is_empty() {
        return Err(LayerError::Shape {
            layer: loss.into(),
            expected: "a non-empty output (the loss is a mean over it)".into(),
            actual: outputs.shape().to_vec(),
        });
    }
    if targets.shape() != outputs.shape() {
        return Err(LayerError::Shape {
            layer: format!("{loss} (targets)"),
            expected: format!("{:?}, the shape of the output", outputs.shape()),
            actual: targets.shape().to_vec(),
        });
    }
    Ok(())
}

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
