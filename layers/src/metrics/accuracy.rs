//! Accuracy: of arg-max predictions against class labels, and as a metric of classification
//! losses.

use std::fmt;

use super::{argmax, check_scores, Metrics, Tally};
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
///
/// ```
/// use keel_layers::{accuracy, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// // Three samples of two classes, predicted 0, 1 and 0.
/// let scores = Tensor::from_vec(&[3, 2], vec![0.9, 0.1, 0.2, 0.8, 0.6, 0.4])?;
/// assert_eq!(accuracy(&scores, &[0, 1, 1])?, 2.0 / 3.0);
/// assert!(accuracy(&scores, &[0, 1, 2]).is_err()); // there is no class 2
/// # Ok(())
/// # }
/// ```
pub fn accuracy(scores: &Tensor, labels: &[u32]) -> Result<f64> {
    let correct = count_correct(scores, labels)?;
    Ok(if labels.is_empty() { 0.0 } else { correct as f64 / labels.len() as f64 })
}

/// The fraction of predictions that were right (classification losses' metric).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accuracy {
    /// Right predictions over all predictions, in [0, 1] (0 when there were none).
    pub accuracy: f64,
}

impl Metrics for Accuracy {
    fn named(&self) -> impl Iterator<Item = (&'static str, f64)> {
        [("accuracy", self.accuracy)].into_iter()
    }
}

impl fmt::Display for Accuracy {
    /// `acc 97.10%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "acc {:.2}%", 100.0 * self.accuracy)
    }
}

/// Counts of right predictions and of predictions, giving [`Accuracy`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccuracyTally {
    /// Predictions that were right.
    pub correct: usize,
    /// Predictions made.
    pub seen: usize,
}

impl AccuracyTally {
    /// Adds `correct` right predictions out of `seen`.
    pub fn add(&mut self, correct: usize, seen: usize) {
        self.correct += correct;
        self.seen += seen;
    }
}

impl Tally for AccuracyTally {
    type Metrics = Accuracy;

    fn reset(&mut self) {
        *self = AccuracyTally::default();
    }

    fn metrics(&self) -> Accuracy {
        let accuracy = if self.seen == 0 { 0.0 } else { self.correct as f64 / self.seen as f64 };
        Accuracy { accuracy }
    }

    /// `[correct, seen]` (exact in `f64` below 2^53).
    fn sums(&self, sums: &mut Vec<f64>) {
        sums.clear();
        sums.extend([self.correct as f64, self.seen as f64]);
    }

    fn set_sums(&mut self, sums: &[f64]) {
        if let [correct, seen] = *sums {
            *self = AccuracyTally { correct: correct as usize, seen: seen as usize };
        }
    }
}
