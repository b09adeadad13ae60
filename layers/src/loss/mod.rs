//! Losses, each returning the mean over its elements and then its gradient with respect to
//! the network's output: softmax + cross-entropy for classes, sigmoid + binary cross-entropy
//! for binary (or multi-label) targets, mean squared error for regression.

mod bce_with_logits;
mod mse;
mod softmax_cross_entropy;

pub use bce_with_logits::BceWithLogits;
pub use mse::Mse;
pub use softmax_cross_entropy::SoftmaxCrossEntropy;

use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

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
