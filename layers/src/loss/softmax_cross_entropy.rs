//! Softmax + cross-entropy over class indices (multi-class classification).

use keel_kernels::activation::{softmax_cross_entropy_backward, softmax_cross_entropy_forward};

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
