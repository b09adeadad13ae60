//! [`fit`]: mini-batch descent with a progress bar, a log line per epoch, an optional
//! learning-rate schedule and early stopping.

use std::fmt;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::evaluate::{evaluate_batches, Totals};
use super::history::{EpochMetrics, History};
use crate::data::{Augment, Batches, Dataset, Labels};
use crate::error::{LayerError, Result};
use crate::loss::{Loss, LossMetrics};
use crate::nn::{Layer, Mode};
use crate::optim::{zero_grad, LrSchedule, Optimizer};

/// How [`fit`] trains.
pub struct FitConfig {
    /// Passes over the training set (at most: early stopping may end sooner).
    pub epochs: usize,
    /// Samples per mini-batch (the last batch of an epoch may be smaller, unless
    /// `drop_last`).
    pub batch_size: usize,
    /// Skip the last batch of each epoch when it is smaller than `batch_size`
    /// ([`Batches::drop_last`]), as a model with batch norm needs when one sample would be
    /// left over.
    pub drop_last: bool,
    /// Seeds the shuffling of the training set: equal seeds give equal runs.
    pub seed: u64,
    /// Stop after this many epochs (at least 1) without a lower dev loss, and restore the
    /// weights of the best epoch; `None` trains every epoch.
    pub patience: Option<usize>,
    /// Augments the training batches, images `(samples, C, H, W)`, with their own seed
    /// ([`Batches::augment`]); `None` trains on the images as they are. The dev set is
    /// never augmented.
    pub augment: Option<Augment>,
    /// The learning rate per epoch; `None` keeps the optimizer's.
    pub lr_schedule: Option<Box<dyn LrSchedule>>,
    /// No progress bar and no log lines (tests). The bar is also hidden when standard
    /// error is not a terminal.
    pub quiet: bool,
}

impl Default for FitConfig {
    /// 10 epochs of batches of 32 (the last one kept), seed 0, no early stopping, no
    /// augmentation, no schedule, not quiet.
    fn default() -> Self {
        FitConfig {
            epochs: 10,
            batch_size: 32,
            drop_last: false,
            seed: 0,
            patience: None,
            augment: None,
            lr_schedule: None,
            quiet: false,
        }
    }
}

impl fmt::Debug for FitConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FitConfig")
            .field("epochs", &self.epochs)
            .field("batch_size", &self.batch_size)
            .field("drop_last", &self.drop_last)
            .field("seed", &self.seed)
            .field("patience", &self.patience)
            .field("augment", &self.augment)
            .field("lr_schedule", &self.lr_schedule.as_ref().map(|_| "dyn LrSchedule"))
            .field("quiet", &self.quiet)
            .finish()
    }
}

/// Trains `model` on `train` and measures it on `dev` after every epoch.
///
/// Training never reads the gradient of the data, so `fit` first turns the model's input
/// gradient off ([`Layer::set_input_grad`]`(false)`); turn it back on to differentiate with
/// respect to inputs afterwards.
///
/// `train` and `dev` are labelled with what `loss` takes as targets: class indices for
/// [`SoftmaxCrossEntropy`](crate::SoftmaxCrossEntropy), a tensor `(samples, ...)` shaped
/// like the model's output for [`BceWithLogits`](crate::BceWithLogits) and
/// [`Mse`](crate::Mse); the history carries the loss's metrics ([`LossMetrics`]).
///
/// Each step on a mini-batch `x` `(batch, ...)` with targets `y`: zero the gradients, forward
/// in [`Mode::Train`], loss forward, tally and backward, model backward, optimizer step. With
/// `config.patience`, training stops once the dev loss has not improved for that many
/// epochs, and the model ends with the parameter values of the best epoch (kept in one
/// buffer, copied without allocating after the first time).
///
/// Errors: an empty `train` or `dev` set, a batch size of 0 or a patience of 0; an
/// augmentation of samples that are not images `(C, H, W)` or out of range; [`LayerError::NonFiniteLoss`]
/// naming the epoch and step as soon as a loss is NaN or infinite; any layer, loss or
/// optimizer error.
pub fn fit<L, T>(
    model: &mut dyn Layer,
    optimizer: &mut dyn Optimizer,
    loss: &mut L,
    train: &Dataset<T>,
    dev: &Dataset<T>,
    config: &FitConfig,
) -> Result<History<LossMetrics<L>>>
where
    L: Loss,
    T: Labels<Batch = L::Target>,
{
    if train.is_empty() || dev.is_empty() {
        return Err(LayerError::Data(format!(
            "fit needs samples to train and evaluate on, got {} train and {} dev",
            train.len(),
            dev.len()
        )));
    }
    if config.patience == Some(0) {
        return Err(LayerError::Data("early-stopping patience must be at least 1 epoch".into()));
    }
    model.set_input_grad(false);
    let mut batches = Batches::shuffled(train, config.batch_size, config.seed)?.drop_last(config.drop_last);
    if let Some(augment) = &config.augment {
        batches = batches.augment(augment.clone())?;
    }
    if batches.batches_per_epoch() == 0 {
        return Err(LayerError::Data(format!(
            "fit: drop_last with {} training samples, fewer than a batch of {}: no batch to train on",
            batches.len(),
            config.batch_size
        )));
    }
    let mut dev_batches = Batches::sequential(dev, config.batch_size)?;
    let bar = progress_bar(batches.batches_per_epoch(), config.quiet);
    let mut history = History::default();
    let mut best_loss = f64::INFINITY;
    let mut best_params = Vec::new();
    let (mut train_totals, mut dev_totals) = (Totals::default(), Totals::default());
    for index in 0..config.epochs {
        let epoch = index + 1;
        if let Some(schedule) = &config.lr_schedule {
            optimizer.set_learning_rate(schedule.learning_rate(index));
        }
        if index > 0 {
            batches.start_epoch();
        }
        bar.set_prefix(format!("{epoch}/{}", config.epochs));
        bar.set_message("");
        bar.reset();
        let start = Instant::now();
        train_totals.reset();
        let mut step = 0;
        while let Some((x, y)) = batches.next_batch() {
            step += 1;
            zero_grad(model);
            model.forward(x, Mode::Train)?;
            let batch_loss = loss.forward(model.output(), y)?;
            if !batch_loss.is_finite() {
                bar.abandon();
                return Err(LayerError::NonFiniteLoss { epoch, step, loss: batch_loss });
            }
            train_totals.add(loss, batch_loss, model.output(), y)?;
            let grad = loss.backward(y)?;
            model.backward(x, grad)?;
            optimizer.step(model)?;
            bar.inc(1);
            if !bar.is_hidden() {
                let rate = train_totals.samples() as f64 / start.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!("{} {rate:.0} samples/s", train_totals.evaluation()));
            }
        }
        let samples_per_sec = train_totals.samples() as f64 / start.elapsed().as_secs_f64().max(1e-9);
        let dev_figures = evaluate_batches(model, loss, &mut dev_batches, &mut dev_totals)?;
        bar.finish_and_clear();
        let metrics = EpochMetrics {
            epoch,
            train: train_totals.evaluation(),
            dev: dev_figures,
            lr: optimizer.learning_rate(),
            samples_per_sec,
        };
        if !config.quiet {
            println!("{metrics}");
        }
        history.epochs.push(metrics);
        if dev_figures.loss < best_loss {
            best_loss = dev_figures.loss;
            history.best_epoch = epoch;
            if config.patience.is_some() {
                snapshot(model, &mut best_params);
            }
        }
        if let Some(patience) = config.patience {
            if epoch - history.best_epoch >= patience && epoch < config.epochs {
                history.stopped_early = true;
                break;
            }
        }
    }
    let last_epoch = history.epochs.last().map_or(0, |metrics| metrics.epoch);
    if config.patience.is_some() && history.best_epoch != last_epoch && !best_params.is_empty() {
        restore(model, &best_params);
        if !config.quiet {
            println!("restored the weights of epoch {} (dev loss {best_loss:.4})", history.best_epoch);
        }
    }
    Ok(history)
}

/// Copies every parameter value of `model`, in visiting order, into `buffer` (which keeps
/// its allocation from one snapshot to the next).
fn snapshot(model: &mut dyn Layer, buffer: &mut Vec<f32>) {
    buffer.clear();
    model.visit_params(&mut |_, param| buffer.extend_from_slice(param.value.data()));
}

/// Writes back the values [`snapshot`] saved (same model, same parameter order).
fn restore(model: &mut dyn Layer, buffer: &[f32]) {
    let mut offset = 0;
    model.visit_params(&mut |_, param| {
        let values = param.value.data_mut();
        values.copy_from_slice(&buffer[offset..offset + values.len()]);
        offset += values.len();
    });
}

/// A bar of `steps` per epoch showing the epoch, running loss, metrics and throughput;
/// hidden when `quiet` or when standard error is not a terminal.
fn progress_bar(steps: usize, quiet: bool) -> ProgressBar {
    let target = if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
    let bar = ProgressBar::with_draw_target(Some(steps as u64), target);
    let style = ProgressStyle::with_template("epoch {prefix} [{bar:20}] {pos}/{len} {wide_msg}")
        .expect("a valid progress template")
        .progress_chars("=> ");
    bar.set_style(style);
    bar
}
