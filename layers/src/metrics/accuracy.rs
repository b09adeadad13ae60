//! Accuracy of arg-max predictions against class labels.

use super::{argmax, check_scores};
use crate::error::Result;
use crate::tensor::Tensor;

/// The number of rows of `scores` `(n, classes)` whose arg-max is the label.
pub fn count_correct(scores: &Tensor, labels: &[u32]) -> Result<usize> {
    let (_, classes) = check_scores("accuracy", scores, labels)?;
    Ok(scores
        .data()
        .chunks_exact(classes)
        .zip(labels)
        .filter(|(row, &label)| argmax(row) == label as usize)
        .count())
}

/// The fraction of rows of `scores` `(n, classes)` whose arg-max is the label; 0 for n = 0.
pub fn accuracy(scores: &Tensor, labels: &[u32]) -> Result<f64> {
    let correct = count_correct(scores, labels)?;
    Ok(if labels.is_empty() { 0.0 } else { correct as f64 / labels.len() as f64 })
}
