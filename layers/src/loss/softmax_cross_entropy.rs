//! Softmax + cross-entropy over class indices (multi-class classification).

use keel_kernels::loss::{softmax_cross_entropy_backward, softmax_cross_entropy_forward};

use super::Loss;
use crate::error::{LayerError, Result};
use crate::metrics::{count_correct, AccuracyTally};
use crate::tensor::Tensor;

const NAME: &str = "softmax_cross_entropy";

/// Softmax followed by cross-entropy, averaged over the batch (PyTorch's
/// `nn.CrossEntropyLoss`): logits `(batch, classes)`, targets `batch` class indices.
/// Backward gives `∂loss/∂logits = (softmax(logits) - onehot(targets))/batch`; the metric
/// is the accuracy of the arg-max of the logits (the first maximum on ties).
///
/// # Shapes
/// - logits `(batch, classes)`, targets `batch` class indices below `classes`;
/// - [`Loss::backward`]'s gradient and [`SoftmaxCrossEntropy::probs`] `(batch, classes)`.
///
/// ```
/// use keel_layers::{Loss, SoftmaxCrossEntropy, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut loss = SoftmaxCrossEntropy::new();
/// let logits = Tensor::zeros(&[2, 4]); // every class equally likely
/// assert!((loss.forward(&logits, &[3, 0])? - 4f32.ln()).abs() < 1e-6);
/// let grad = loss.backward(&[3, 0])?.data();
/// // (softmax - onehot)/batch: (1/4 - 1)/2 at a target, (1/4)/2 elsewhere.
/// assert!((grad[3] + 0.375).abs() < 1e-6 && (grad[1] - 0.125).abs() < 1e-6);
/// assert!(loss.forward(&logits, &[4, 0]).is_err()); // there is no class 4
/// # Ok(())
/// # }
/// ```
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
                layer: NAME.into(),
                expected: "(batch >= 1, classes >= 1)".into(),
                actual: logits.shape().to_vec(),
            }),
        }
    }

    /// The softmax probabilities of the last forward, `(batch, classes)`.
    pub fn probs(&self) -> &Tensor {
        &self.probs
    }
}

impl Loss for SoftmaxCrossEntropy {
    /// `batch` class indices, each below `classes`.
    type Target = [u32];
    type Tally = AccuracyTally;

    /// The mean loss of logits `(batch, classes)`; keeps the probabilities for
    /// [`Loss::backward`] and [`SoftmaxCrossEntropy::probs`].
    /// Errors: a target count other than `batch` ([`LayerError::Shape`]), a target not below
    /// `classes` ([`LayerError::Index`] at its row of the batch).
    fn forward(&mut self, logits: &Tensor, targets: &[u32]) -> Result<f32> {
        let (batch, classes) = Self::dims(logits)?;
        if targets.len() != batch {
            return Err(LayerError::Shape {
                layer: format!("{NAME} (targets)"),
                expected: format!("{batch} class indices, one per row of the logits"),
                actual: vec![targets.len()],
            });
        }
        if let Some((position, &value)) = targets.iter().enumerate().find(|(_, &t)| t as usize >= classes) {
            return Err(LayerError::Index {
                layer: NAME.into(),
                position,
                value: value.to_string(),
                expected: format!("a class index in 0..{classes}"),
            });
        }
        self.probs.resize(logits.shape());
        Ok(softmax_cross_entropy_forward(batch, classes, logits.data(), targets, self.probs.data_mut())?)
    }

    /// `∂loss/∂logits` `(batch, classes)` for the last forward.
    fn backward(&mut self, targets: &[u32]) -> Result<&Tensor> {
        let (batch, classes) = Self::dims(&self.probs)?;
        self.grad.resize(self.probs.shape());
        softmax_cross_entropy_backward(batch, classes, self.probs.data(), targets, self.grad.data_mut())?;
        Ok(&self.grad)
    }

    /// Counts the rows of `logits` whose arg-max is the target.
    fn tally(&self, logits: &Tensor, targets: &[u32], tally: &mut AccuracyTally) -> Result<()> {
        tally.add(count_correct(logits, targets)?, targets.len());
        Ok(())
    }
}
