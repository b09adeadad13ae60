//! What [`fit`](super::fit) and [`evaluate`](super::evaluate) report: a loss with the
//! loss's metrics, per data set and per epoch.

use std::fmt;

use crate::metrics::{Accuracy, Metrics};

/// The mean loss over a set of samples and the loss's metrics over them (e.g. [`Accuracy`]
/// for classification, [`Regression`](crate::metrics::Regression) for MSE).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation<M = Accuracy> {
    /// The mean loss per sample (batch losses weighted by batch size).
    pub loss: f64,
    /// The loss's metrics.
    pub metrics: M,
}

impl<M: Metrics> fmt::Display for Evaluation<M> {
    /// `loss 0.1234 acc 97.10%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "loss {:.4} {}", self.loss, self.metrics)
    }
}

/// The figures of one epoch: train figures are means over the epoch's mini-batches (as the
/// weights moved), dev figures are measured in eval mode after the epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochMetrics<M = Accuracy> {
    /// The epoch, from 1.
    pub epoch: usize,
    /// Training loss and metrics during the epoch.
    pub train: Evaluation<M>,
    /// Dev-set loss and metrics after the epoch.
    pub dev: Evaluation<M>,
    /// The learning rate used during the epoch.
    pub lr: f64,
    /// Training throughput (forward, backward and step), samples per second.
    pub samples_per_sec: f64,
}

impl<M: Metrics> fmt::Display for EpochMetrics<M> {
    /// `epoch   3: train loss 0.1234 acc 97.10% | dev loss ... | lr 1.00e-3 | 5000 samples/s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "epoch {:>3}: train {} | dev {} | lr {:.2e} | {:.0} samples/s",
            self.epoch, self.train, self.dev, self.lr, self.samples_per_sec,
        )
    }
}

/// What [`fit`](super::fit) did, epoch by epoch.
///
/// ```
/// use keel_layers::{Accuracy, EpochMetrics, Evaluation, History};
/// let epoch = |epoch, dev_loss| EpochMetrics {
///     epoch,
///     train: Evaluation { loss: 0.5, metrics: Accuracy { accuracy: 0.8 } },
///     dev: Evaluation { loss: dev_loss, metrics: Accuracy { accuracy: 0.7 } },
///     lr: 1e-3,
///     samples_per_sec: 1e4,
/// };
/// // What `fit` returns after two epochs, the first one better on the dev set.
/// let history = History { epochs: vec![epoch(1, 0.6), epoch(2, 0.9)], best_epoch: 1, ..History::default() };
/// assert_eq!(history.best().map(|best| best.dev.loss), Some(0.6));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct History<M = Accuracy> {
    /// One entry per epoch trained, in order.
    pub epochs: Vec<EpochMetrics<M>>,
    /// The epoch (from 1) with the lowest dev loss; 0 if no epoch ran.
    pub best_epoch: usize,
    /// Whether training ended before `epochs`: early stopping, or a callback's
    /// [`Control::Stop`](super::Control::Stop).
    pub stopped_early: bool,
    /// Whether the model ends with the weights of `best_epoch`, restored because a later
    /// epoch was worse (with early stopping's `patience` set).
    pub restored_best: bool,
}

impl<M> History<M> {
    /// The figures of `best_epoch`; `None` if no epoch ran.
    pub fn best(&self) -> Option<&EpochMetrics<M>> {
        self.epochs.iter().find(|metrics| metrics.epoch == self.best_epoch)
    }
}

impl<M> Default for History<M> {
    /// No epoch.
    fn default() -> Self {
        History { epochs: Vec::new(), best_epoch: 0, stopped_early: false, restored_best: false }
    }
}
