//! Sigmoid + binary cross-entropy (binary or multi-label classification).

use keel_kernels::loss::{bce_with_logits_backward, bce_with_logits_forward};

use super::{check_same_shape, Loss};
use crate::error::{LayerError, Result};
use crate::metrics::AccuracyTally;
use crate::tensor::Tensor;

/// Sigmoid followed by binary cross-entropy, averaged over every element (PyTorch's
/// `nn.BCEWithLogitsLoss`): logits and targets (probabilities, usually 0 or 1) of the same
/// shape, any shape, e.g. `(batch, 1)` or `(batch, labels)`.
/// `loss = mean(max(z, 0) - z·y + ln(1 + e^{-|z|}))`; backward gives
/// `∂loss/∂logits = (σ(z) - y)/len`.
///
/// The metric is the accuracy over every element: the prediction is positive when
/// `σ(z) > threshold` (0.5 unless [`Self::with_threshold`] says otherwise, as in
/// torchmetrics' `BinaryAccuracy`), the target when `y >= 0.5`.
///
/// # Shapes
/// Logits, targets, [`Loss::backward`]'s gradient and [`BceWithLogits::probs`] all of one
/// shape, e.g. `(batch, 1)` or `(batch, labels)`.
///
/// ```
/// use keel_layers::{BceWithLogits, Loss, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut loss = BceWithLogits::new();
/// let logits = Tensor::from_vec(&[2, 1], vec![0.0, 3.0])?;
/// let targets = Tensor::from_vec(&[2, 1], vec![1.0, 1.0])?;
/// let expected = (2f32.ln() + (1.0 + (-3f32).exp()).ln()) / 2.0; // mean of ln(1 + e^-z)
/// assert!((loss.forward(&logits, &targets)? - expected).abs() < 1e-6);
/// assert_eq!(loss.probs().data()[0], 0.5); // σ(0)
/// let grad = loss.backward(&targets)?;
/// assert!((grad.data()[0] + 0.25).abs() < 1e-6); // (σ(0) - 1)/2
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct BceWithLogits {
    threshold: f32,
    probs: Tensor,
    grad: Tensor,
}

impl Default for BceWithLogits {
    /// Threshold 0.5, empty buffers.
    fn default() -> Self {
        BceWithLogits { threshold: 0.5, probs: Tensor::default(), grad: Tensor::default() }
    }
}

impl BceWithLogits {
    /// A loss with threshold 0.5 and empty buffers (sized on the first call).
    pub fn new() -> Self {
        BceWithLogits::default()
    }

    /// The same loss whose accuracy counts `σ(z) > threshold` as a positive prediction
    /// (`threshold` in [0, 1]; [`Loss::tally`] errors otherwise).
    pub fn with_threshold(self, threshold: f32) -> Self {
        BceWithLogits { threshold, ..self }
    }

    /// The threshold of the accuracy.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The probabilities `σ(logits)` of the last forward.
    pub fn probs(&self) -> &Tensor {
        &self.probs
    }
}

impl Loss for BceWithLogits {
    /// Probabilities shaped like the logits.
    type Target = Tensor;
    type Tally = AccuracyTally;

    /// The mean loss; keeps `σ(logits)` for [`Loss::backward`], [`Loss::tally`] and
    /// [`BceWithLogits::probs`].
    fn forward(&mut self, logits: &Tensor, targets: &Tensor) -> Result<f32> {
        check_same_shape("bce_with_logits", logits, targets)?;
        self.probs.resize(logits.shape());
        Ok(bce_with_logits_forward(logits.data(), targets.data(), self.probs.data_mut())?)
    }

    /// `∂loss/∂logits` for the last forward (same shape as the logits).
    fn backward(&mut self, targets: &Tensor) -> Result<&Tensor> {
        check_same_shape("bce_with_logits", &self.probs, targets)?;
        self.grad.resize(self.probs.shape());
        bce_with_logits_backward(self.probs.data(), targets.data(), self.grad.data_mut())?;
        Ok(&self.grad)
    }

    /// Counts the elements where `σ(z) > threshold` agrees with `y >= 0.5`, from the
    /// probabilities the last forward kept.
    fn tally(&self, _logits: &Tensor, targets: &Tensor, tally: &mut AccuracyTally) -> Result<()> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(LayerError::Data(format!(
                "bce_with_logits: accuracy threshold {} is not a probability in [0, 1]",
                self.threshold
            )));
        }
        check_same_shape("bce_with_logits", &self.probs, targets)?;
        let correct = self
            .probs
            .data()
            .iter()
            .zip(targets.data())
            .filter(|(&p, &y)| (p > self.threshold) == (y >= 0.5))
            .count();
        tally.add(correct, targets.len());
        Ok(())
    }
}
