//! Metrics: accuracy, the confusion matrix with per-class precision, recall and F1 (and
//! their macro averages), regression's MAE and R², and the bias/variance diagnosis from
//! train, dev and human-level error.
//!
//! What a loss reports while training ([`Loss`](crate::loss::Loss)) is a [`Metrics`] value
//! (e.g. [`Accuracy`], [`Regression`]), summed up batch by batch in its [`Tally`].
//!
//! Scores are `(n, classes)` row-major (logits or probabilities: only the arg-max matters,
//! ties going to the lowest class); labels are `n` class indices. Mismatched lengths and
//! out-of-range labels are errors, never panics.

mod accuracy;
mod bias_variance;
mod confusion;
mod regression;

pub use accuracy::{accuracy, count_correct, Accuracy, AccuracyTally};
pub use bias_variance::{BiasVariance, Focus};
pub use confusion::{ClassScores, ConfusionMatrix};
pub use regression::{Regression, RegressionTally};

use std::fmt;

use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// Named figures measured over a set of samples besides the loss, e.g. [`Accuracy`] or
/// [`Regression`]. `Display` writes them for a log line (`"acc 97.10%"`).
pub trait Metrics: Copy + fmt::Debug + fmt::Display + PartialEq {
    /// Each figure with its name, in a fixed order, e.g. `("accuracy", 0.971)`.
    fn named(&self) -> impl Iterator<Item = (&'static str, f64)>;
}

/// Running totals from which [`Metrics`] are computed, added to batch by batch (by
/// [`Loss::tally`](crate::loss::Loss::tally)) over an epoch or a data set.
pub trait Tally: Default {
    /// What the totals give.
    type Metrics: Metrics;

    /// Clears the totals, keeping any allocation (a tally is reused every epoch).
    fn reset(&mut self);

    /// The metrics of every batch added since the last reset.
    fn metrics(&self) -> Self::Metrics;

    /// Writes the totals into `sums` (cleared first) as numbers that add up: the
    /// element-wise sum of the `sums` of tallies over disjoint parts of a data set, given to
    /// [`Tally::set_sums`], makes the tally of the whole (data-parallel training sums them
    /// across processes). Tallies of one loss with at least one batch each give as many.
    fn sums(&self, sums: &mut Vec<f64>);

    /// Takes the totals from summed [`Tally::sums`].
    fn set_sums(&mut self, sums: &[f64]);
}

/// `(n, classes)` of `scores`, checked against `labels` (one per row, each `< classes`).
fn check_scores(what: &str, scores: &Tensor, labels: &[u32]) -> Result<(usize, usize)> {
    let (n, classes) = match *scores.shape() {
        [n, classes] if classes >= 1 && n == labels.len() => (n, classes),
        _ => {
            return Err(LayerError::Shape {
                layer: what.into(),
                expected: format!("scores ({}, classes >= 1) for {} labels", labels.len(), labels.len()),
                actual: scores.shape().to_vec(),
            })
        }
    };
    check_labels(what, labels, classes)?;
    Ok((n, classes))
}

/// Errors unless every label is a class index below `classes`.
fn check_labels(what: &str, labels: &[u32], classes: usize) -> Result<()> {
    match labels.iter().position(|&label| label as usize >= classes) {
        Some(index) => Err(LayerError::Data(format!(
            "{what}: label {} of sample {index} is not a class index below {classes}",
            labels[index]
        ))),
        None => Ok(()),
    }
}

/// The class with the highest score in a row (the first one on ties).
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (class, &score) in row.iter().enumerate() {
        if score > row[best] {
            best = class;
        }
    }
    best
}
