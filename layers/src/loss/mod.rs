//! Losses: the [`Loss`] trait that [`fit`](crate::fit) and [`evaluate`](crate::evaluate)
//! drive, and its implementations, each returning the mean over its elements and then its
//! gradient with respect to the network's output, and tallying its metrics:
//!
//! | loss | targets | metrics |
//! |---|---|---|
//! | [`SoftmaxCrossEntropy`] (classes) | `[u32]` class indices | [`Accuracy`] of the arg-max |
//! | [`BceWithLogits`] (binary, multi-label) | [`Tensor`] of 0/1, shaped like the output | [`Accuracy`] at a threshold |
//! | [`Mse`] (regression) | [`Tensor`] shaped like the output | [`Regression`]: MAE and R² |

mod bce_with_logits;
mod mse;
mod softmax_cross_entropy;

pub use bce_with_logits::BceWithLogits;
pub use mse::Mse;
pub use softmax_cross_entropy::SoftmaxCrossEntropy;

use crate::error::{LayerError, Result};
use crate::metrics::Tally;
#[cfg(doc)]
use crate::metrics::{Accuracy, Regression};
use crate::tensor::Tensor;

/// A loss over a network's output `(batch, ...)`: what a training loop drives.
///
/// A step calls [`Self::forward`], then [`Self::backward`] and [`Self::tally`] on the same
/// batch, in either order. Implementations keep their buffers from one call to the next, so
/// a step on a fixed batch shape allocates nothing.
///
/// ```
/// use keel_layers::metrics::{AccuracyTally, Tally};
/// use keel_layers::{Loss, SoftmaxCrossEntropy, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut loss = SoftmaxCrossEntropy::new();
/// // Two samples of three classes: the first predicted right, the second wrong.
/// let logits = Tensor::from_vec(&[2, 3], vec![2.0, 0.0, 0.0, 0.0, 0.0, 1.0])?;
/// let targets = [0, 1];
/// let value = loss.forward(&logits, &targets)?;
/// assert!(value > 0.0);
/// assert_eq!(loss.backward(&targets)?.shape(), logits.shape());
/// let mut tally = AccuracyTally::default();
/// loss.tally(&logits, &targets, &mut tally)?;
/// assert_eq!(tally.metrics().accuracy, 0.5);
/// # Ok(())
/// # }
/// ```
pub trait Loss {
    /// The targets of a batch: `[u32]` class indices, or a [`Tensor`] shaped like the output.
    type Target: ?Sized;
    /// The running totals of the loss's metrics (whose [`Tally::Metrics`] `fit` and
    /// `evaluate` report).
    type Tally: Tally;

    /// The mean loss of `output` `(batch, ...)` against `target`; keeps what
    /// [`Self::backward`] and [`Self::tally`] need. Errors on mismatched shapes or an
    /// empty batch.
    fn forward(&mut self, output: &Tensor, target: &Self::Target) -> Result<f32>;

    /// `∂loss/∂output` for the last forward, shaped like the output; overwritten by the
    /// next call. Errors before any forward or if `target` does not match it.
    fn backward(&mut self, target: &Self::Target) -> Result<&Tensor>;

    /// Adds the last forward's batch (`output` and `target` as passed to it) to `tally`.
    fn tally(&self, output: &Tensor, target: &Self::Target, tally: &mut Self::Tally) -> Result<()>;
}

/// The metrics a loss `L` reports (e.g. [`Accuracy`] for [`SoftmaxCrossEntropy`]).
pub type LossMetrics<L> = <<L as Loss>::Tally as Tally>::Metrics;

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
