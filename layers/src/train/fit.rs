//! [`fit`] and [`fit_with`]: mini-batch descent with callbacks (by default a progress bar
//! and a log line per epoch), an optional learning-rate schedule and early stopping.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use super::callbacks::{Callback, Control, EpochLog, Progress, StepEnd};
use super::evaluate::{at_sample, evaluate_batches, Totals};
use super::history::{EpochMetrics, History};
use crate::collective::Collective;
use crate::data::{Augment, Batches, Dataset, Labels};
use crate::error::{LayerError, Result};
use crate::loss::{Loss, LossMetrics};
use crate::nn::{Layer, Mode};
use crate::optim::{zero_grad, LrSchedule, Optimizer};

/// How [`fit`] trains: set the fields that differ from the defaults,
/// `FitConfig { epochs: 5, quiet: true, ..FitConfig::default() }` (as [`fit`]'s example does).
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
    /// The processes training this model together (data parallelism; `None`: this process
    /// alone). Each rank trains on its shard of every global batch of `batch_size`
    /// ([`Batches::shard`]): wrap the model so that its gradients are summed across ranks
    /// (`distributed::DataParallel` with the `mpi` feature). The epoch's training figures
    /// are summed across ranks, every rank evaluates the whole dev set, the callbacks run
    /// on rank 0 only, and a stop from them stops every rank.
    pub data_parallel: Option<Arc<dyn Collective>>,
    /// No progress bar and no log lines from [`fit`] (tests); [`fit_with`] does not read
    /// it, its callbacks decide. The bar is also hidden when standard error is not a
    /// terminal.
    pub quiet: bool,
}

impl Default for FitConfig {
    /// 10 epochs of batches of 32 (the last one kept), seed 0, no early stopping, no
    /// augmentation, no schedule, one process, not quiet.
    fn default() -> Self {
        FitConfig {
            epochs: 10,
            batch_size: 32,
            drop_last: false,
            seed: 0,
            patience: None,
            augment: None,
            lr_schedule: None,
            data_parallel: None,
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
            .field(
                "data_parallel",
                &self.data_parallel.as_ref().map(|c| format!("rank {} of {}", c.rank(), c.ranks())),
            )
            .field("quiet", &self.quiet)
            .finish()
    }
}

/// Trains `model` on `train` and measures it on `dev` after every epoch, with a progress
/// bar and a log line per epoch on standard output (none when `config.quiet`): [`fit_with`]
/// with the callbacks [`Progress`] and [`EpochLog::stdout`].
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
/// naming the epoch and step as soon as a training loss is NaN or infinite; a
/// [`LayerError::Data`] naming the dev samples and the epoch for a non-finite dev loss; a
/// label that is not a class of the output as [`LayerError::InSample`] (the sample's index
/// in its data set and the epoch); any layer, loss or optimizer error.
///
/// A two-layer network learning XOR:
///
/// ```
/// use keel_layers::{fit, ActivationKind, Adam, AdamConfig, Dataset, Dense, FitConfig, Init};
/// use keel_layers::{SeedableRng, Sequential, SoftmaxCrossEntropy, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut rng = StdRng::seed_from_u64(0);
/// let x = Tensor::from_vec(&[4, 2], vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0])?;
/// let data = Dataset::new(x, vec![0, 1, 1, 0])?; // class 1 when exactly one input is 1
/// let mut model = Sequential::new()
///     .push(Dense::new(2, 8, Init::Xavier, &mut rng)?.with_activation(ActivationKind::Tanh))
///     .push(Dense::new(8, 2, Init::Xavier, &mut rng)?);
/// let mut adam = Adam::new(AdamConfig { lr: 0.05, ..AdamConfig::default() })?;
/// let config = FitConfig { epochs: 100, batch_size: 4, quiet: true, ..FitConfig::default() };
/// let history = fit(&mut model, &mut adam, &mut SoftmaxCrossEntropy::new(), &data, &data, &config)?;
/// let (first, last) = (&history.epochs[0], history.epochs.last().unwrap());
/// assert!(last.dev.loss < first.dev.loss / 10.0);
/// assert_eq!(last.dev.metrics.accuracy, 1.0);
/// # Ok(())
/// # }
/// ```
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
    let (mut progress, mut log) = (Progress::new(), EpochLog::stdout());
    let mut callbacks: Vec<&mut dyn Callback<LossMetrics<L>>> =
        if config.quiet { Vec::new() } else { vec![&mut progress, &mut log] };
    fit_with(model, optimizer, loss, train, dev, config, &mut callbacks)
}

/// [`fit`] with `callbacks` in place of the default progress bar and log (`config.quiet` is
/// not read): each is called, in order, at the start of every epoch, after every step and
/// after every epoch's dev evaluation, and once at the end. A [`Control::Stop`] ends
/// training after the epoch (from a step: the epoch ends at that step, and its dev figures
/// are still measured and recorded). Errors as [`fit`].
///
/// A [`Callback`] that stops training once the dev loss is low enough, on a regression:
///
/// ```
/// use keel_layers::{fit_with, Callback, Control, Dataset, Dense, EpochMetrics, FitConfig, Init, Mse};
/// use keel_layers::{Regression, SeedableRng, Sgd, SgdConfig, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// struct StopBelow(f64);
/// impl Callback<Regression> for StopBelow {
///     fn on_epoch_end(&mut self, metrics: &EpochMetrics<Regression>) -> Control {
///         if metrics.dev.loss < self.0 { Control::Stop } else { Control::Continue }
///     }
/// }
/// let x = Tensor::from_vec(&[3, 1], vec![-1.0, 0.0, 1.0])?;
/// let data = Dataset::new(x, Tensor::from_vec(&[3, 1], vec![-1.0, 1.0, 3.0])?)?; // y = 2x + 1
/// let mut model = Dense::new(1, 1, Init::Zeros, &mut StdRng::seed_from_u64(0))?;
/// let mut sgd = Sgd::new(SgdConfig { lr: 0.5, ..SgdConfig::default() })?;
/// let config = FitConfig { epochs: 100, batch_size: 3, ..FitConfig::default() };
/// let mut stop = StopBelow(1e-4);
/// let history = fit_with(&mut model, &mut sgd, &mut Mse::new(), &data, &data, &config, &mut [&mut stop])?;
/// assert!(history.stopped_early && history.epochs.len() < 100);
/// assert!(history.epochs.last().unwrap().dev.metrics.r2 > 0.999);
/// # Ok(())
/// # }
/// ```
pub fn fit_with<L, T>(
    model: &mut dyn Layer,
    optimizer: &mut dyn Optimizer,
    loss: &mut L,
    train: &Dataset<T>,
    dev: &Dataset<T>,
    config: &FitConfig,
    callbacks: &mut [&mut dyn Callback<LossMetrics<L>>],
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
    let refuse = |what: &str, expected: &str| LayerError::Argument {
        owner: "fit".into(),
        what: what.into(),
        expected: expected.into(),
        actual: "0".into(),
    };
    if config.batch_size == 0 {
        return Err(refuse("batch_size", "at least 1"));
    }
    if config.patience == Some(0) {
        return Err(refuse("patience", "at least 1 epoch, or None"));
    }
    model.set_input_grad(false);
    let mut batches = Batches::shuffled(train, config.batch_size, config.seed)?.drop_last(config.drop_last);
    let group = config.data_parallel.as_deref();
    if let Some(group) = group {
        batches = batches.shard(group.rank(), group.ranks())?;
    }
    let callbacks = if group.is_some_and(|group| group.rank() != 0) { &mut [] } else { callbacks };
    if let Some(augment) = &config.augment {
        batches = batches.augment(augment.clone())?;
    }
    let steps_per_epoch = batches.batches_per_epoch();
    if steps_per_epoch == 0 {
        return Err(LayerError::Data(format!(
            "fit: drop_last with {} training samples, fewer than a batch of {}: no batch to train on",
            batches.len(),
            config.batch_size
        )));
    }
    let mut dev_batches = Batches::sequential(dev, config.batch_size)?;
    let mut history = History::default();
    let mut best_loss = f64::INFINITY;
    let mut best_params = Vec::new();
    let (mut train_totals, mut dev_totals) = (Totals::default(), Totals::default());
    let mut sums = Vec::new();
    'epochs: for index in 0..config.epochs {
        let epoch = index + 1;
        if let Some(schedule) = &config.lr_schedule {
            optimizer.set_learning_rate(schedule.learning_rate(index));
        }
        if index > 0 {
            batches.start_epoch();
        }
        callbacks
            .iter_mut()
            .for_each(|callback| callback.on_epoch_start(epoch, config.epochs, steps_per_epoch));
        let start = Instant::now();
        train_totals.reset();
        let mut step = 0;
        let mut stop = false;
        loop {
            let batch_offset = batches.next_batch_offset();
            let Some((x, y)) = batches.next_batch() else { break };
            step += 1;
            zero_grad(model);
            if group.is_some() {
                model.set_batch_offset(batch_offset);
            }
            model.forward(x, Mode::Train)?;
            let batch_loss = match loss.forward(model.output(), y) {
                Ok(batch_loss) => batch_loss,
                Err(error) => return Err(at_sample(error, "training", batches.batch_indices(), Some(epoch))),
            };
            if !batch_loss.is_finite() {
                return Err(LayerError::NonFiniteLoss { epoch, step, loss: batch_loss });
            }
            train_totals.add(loss, batch_loss, model.output(), y)?;
            let grad = loss.backward(y)?;
            model.backward(x, grad)?;
            optimizer.step(model)?;
            if !callbacks.is_empty() {
                let running = train_totals.evaluation();
                let figures = StepEnd {
                    epoch,
                    step,
                    steps_per_epoch,
                    loss: batch_loss,
                    running: &running,
                    samples: train_totals.samples(),
                    elapsed: start.elapsed(),
                };
                stop = any_stop(callbacks, |callback| callback.on_step(&figures));
            }
            if let Some(group) = group {
                stop = any_across(group, stop)?;
            }
            if stop {
                break;
            }
        }
        if let Some(group) = group {
            train_totals.sum_across(group, &mut sums)?;
        }
        let samples_per_sec = train_totals.samples() as f64 / start.elapsed().as_secs_f64().max(1e-9);
        let dev_figures =
            evaluate_batches(model, loss, &mut dev_batches, &mut dev_totals, "dev", Some(epoch))?;
        let metrics = EpochMetrics {
            epoch,
            train: train_totals.evaluation(),
            dev: dev_figures,
            lr: optimizer.learning_rate(),
            samples_per_sec,
        };
        stop |= any_stop(callbacks, |callback| callback.on_epoch_end(&metrics));
        if let Some(group) = group {
            stop = any_across(group, stop)?;
        }
        history.epochs.push(metrics);
        if dev_figures.loss < best_loss {
            best_loss = dev_figures.loss;
            history.best_epoch = epoch;
            if config.patience.is_some() {
                snapshot(model, &mut best_params);
            }
        }
        let patience_over = config.patience.is_some_and(|patience| epoch - history.best_epoch >= patience);
        if (stop || patience_over) && epoch < config.epochs {
            history.stopped_early = true;
            break 'epochs;
        }
    }
    let last_epoch = history.epochs.last().map_or(0, |metrics| metrics.epoch);
    if config.patience.is_some() && history.best_epoch != last_epoch && !best_params.is_empty() {
        restore(model, &best_params);
        history.restored_best = true;
    }
    callbacks.iter_mut().for_each(|callback| callback.on_end(&history));
    Ok(history)
}

/// Calls `hook` on every callback, in order; whether any asked to stop.
fn any_stop<M>(
    callbacks: &mut [&mut dyn Callback<M>],
    mut hook: impl FnMut(&mut dyn Callback<M>) -> Control,
) -> bool {
    let mut stop = false;
    for callback in callbacks.iter_mut() {
        stop |= hook(&mut **callback) == Control::Stop;
    }
    stop
}

/// Whether `flag` is set on any rank of `group`.
fn any_across(group: &dyn Collective, flag: bool) -> Result<bool> {
    let mut count = [f64::from(u8::from(flag))];
    group.sum(&mut count)?;
    Ok(count[0] > 0.0)
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
