//! What [`fit`](super::fit) reports: the metrics of each epoch.

use std::fmt;

/// The metrics of one epoch: train figures are means over the epoch's mini-batches (as the
/// weights moved), dev figures are measured in eval mode after the epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochMetrics {
    /// The epoch, from 1.
    pub epoch: usize,
    /// Mean training loss, weighted by batch size.
    pub train_loss: f64,
    /// Fraction of training samples classified right during the epoch.
    pub train_accuracy: f64,
    /// Dev-set loss after the epoch.
    pub dev_loss: f64,
    /// Dev-set accuracy after the epoch.
    pub dev_accuracy: f64,
    /// The learning rate used during the epoch.
    pub lr: f64,
    /// Training throughput (forward, backward and step), samples per second.
    pub samples_per_sec: f64,
}

impl fmt::Display for EpochMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "epoch {:>3}: train loss {:.4} acc {:.2}% | dev loss {:.4} acc {:.2}% | lr {:.2e} | {:.0} samples/s",
            self.epoch,
            self.train_loss,
            100.0 * self.train_accuracy,
            self.dev_loss,
            100.0 * self.dev_accuracy,
            self.lr,
            self.samples_per_sec,
        )
    }
}

/// What [`fit`] did, epoch by epoch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct History {
    /// One entry per epoch trained, in order.
    pub epochs: Vec<EpochMetrics>,
    /// The epoch (from 1) with the lowest dev loss; 0 if no epoch ran.
    pub best_epoch: usize,
    /// Whether early stopping ended training before `epochs`.
    pub stopped_early: bool,
}
