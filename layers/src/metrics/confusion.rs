//! The confusion matrix, with per-class precision, recall and F1 and their macro averages.

use super::{argmax, check_labels, check_scores};
use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// `numerator / denominator`, 0 when the denominator is 0 (scikit-learn's
/// `zero_division=0`: a class never predicted has precision 0).
fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// Harmonic mean of precision and recall, 0 when both are 0.
fn f1(precision: f64, recall: f64) -> f64 {
    if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}

/// A `classes x classes` table of counts: row = true class, column = predicted class.
///
/// ```
/// use keel_layers::ConfusionMatrix;
/// # fn main() -> keel_layers::Result<()> {
/// let predicted = [1, 1, 0, 1];
/// let labels = [1, 0, 0, 1];
/// let matrix = ConfusionMatrix::from_predictions(2, &predicted, &labels)?;
/// assert_eq!(matrix.count(0, 1), 1); // one sample of class 0 predicted as 1
/// assert_eq!(matrix.accuracy(), 0.75);
/// let positive = matrix.binary()?; // class 1: 2 true positives, 1 false positive, 0 missed
/// assert!((positive.precision - 2.0 / 3.0).abs() < 1e-12);
/// assert_eq!(positive.recall, 1.0);
/// assert!((positive.f1 - 0.8).abs() < 1e-12);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfusionMatrix {
    classes: usize,
    counts: Vec<u64>,
}

/// Precision, recall and F1 of one class (or their average).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassScores {
    /// Of the samples predicted as the class, the fraction that are: `tp / (tp + fp)`.
    pub precision: f64,
    /// Of the samples of the class, the fraction predicted as it: `tp / (tp + fn)`.
    pub recall: f64,
    /// `2·p·r / (p + r)`.
    pub f1: f64,
}

impl ConfusionMatrix {
    /// A zero table over `classes` classes.
    pub fn new(classes: usize) -> Self {
        ConfusionMatrix { classes, counts: vec![0; classes * classes] }
    }

    /// The table of arg-max predictions of `scores` `(n, classes)` against `labels`.
    pub fn from_scores(scores: &Tensor, labels: &[u32]) -> Result<Self> {
        let (_, classes) = check_scores("confusion_matrix", scores, labels)?;
        let mut matrix = ConfusionMatrix::new(classes);
        for (row, &label) in scores.data().chunks_exact(classes).zip(labels) {
            matrix.counts[label as usize * classes + argmax(row)] += 1;
        }
        Ok(matrix)
    }

    /// The table of `predicted` class indices against `labels` (same length, all `< classes`).
    pub fn from_predictions(classes: usize, predicted: &[u32], labels: &[u32]) -> Result<Self> {
        if predicted.len() != labels.len() {
            return Err(LayerError::Shape {
                layer: "confusion_matrix".into(),
                expected: format!("{} predictions, one per label", labels.len()),
                actual: vec![predicted.len()],
            });
        }
        check_labels("confusion_matrix", labels, classes)?;
        check_labels("confusion_matrix (predictions)", predicted, classes)?;
        let mut matrix = ConfusionMatrix::new(classes);
        for (&guess, &label) in predicted.iter().zip(labels) {
            matrix.counts[label as usize * classes + guess as usize] += 1;
        }
        Ok(matrix)
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// How many samples of class `actual` were predicted as `predicted` (0 outside the table).
    pub fn count(&self, actual: usize, predicted: usize) -> u64 {
        if actual < self.classes && predicted < self.classes {
            self.counts[actual * self.classes + predicted]
        } else {
            0
        }
    }

    /// The counts, row-major `(classes, classes)`, rows = true class.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// The number of samples counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The fraction on the diagonal (0 for an empty table).
    pub fn accuracy(&self) -> f64 {
        ratio((0..self.classes).map(|c| self.count(c, c)).sum(), self.total())
    }

    /// Precision, recall and F1 of `class` (all 0 outside the table); a ratio with a zero
    /// denominator counts as 0.
    pub fn class_scores(&self, class: usize) -> ClassScores {
        let tp = self.count(class, class);
        let predicted: u64 = (0..self.classes).map(|actual| self.count(actual, class)).sum();
        let actual: u64 = (0..self.classes).map(|guess| self.count(class, guess)).sum();
        let (precision, recall) = (ratio(tp, predicted), ratio(tp, actual));
        ClassScores { precision, recall, f1: f1(precision, recall) }
    }

    /// The unweighted means over classes of precision, recall and F1 (scikit-learn's
    /// `average="macro"`: the F1 is the mean of the per-class F1s).
    pub fn macro_average(&self) -> ClassScores {
        let mut sum = ClassScores { precision: 0.0, recall: 0.0, f1: 0.0 };
        for class in 0..self.classes {
            let scores = self.class_scores(class);
            sum.precision += scores.precision;
            sum.recall += scores.recall;
            sum.f1 += scores.f1;
        }
        let k = self.classes.max(1) as f64;
        ClassScores { precision: sum.precision / k, recall: sum.recall / k, f1: sum.f1 / k }
    }

    /// The binary scores with class 1 as the positive class; an error unless there are
    /// exactly 2 classes.
    pub fn binary(&self) -> Result<ClassScores> {
        if self.classes != 2 {
            return Err(LayerError::Data(format!(
                "binary scores need 2 classes, the table has {}",
                self.classes
            )));
        }
        Ok(self.class_scores(1))
    }
}

/// The counts as a table: one row per true class, one column per predicted class, each
/// headed by its class index, columns as wide as the largest count.
impl std::fmt::Display for ConfusionMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let largest = self.counts.iter().max().copied().unwrap_or(0).max(self.classes as u64);
        let width = largest.to_string().len() + 1;
        write!(f, "{:>width$}", "true\\pred", width = width.max(10))?;
        for class in 0..self.classes {
            write!(f, "{class:>width$}")?;
        }
        for (class, row) in self.counts.chunks_exact(self.classes.max(1)).enumerate() {
            write!(f, "\n{class:>width$}", width = width.max(10))?;
            for count in row {
                write!(f, "{count:>width$}")?;
            }
        }
        Ok(())
    }
}
