//! What [`fit_with`](super::fit_with) calls during training: the [`Callback`] trait and the
//! two that [`fit`](super::fit) uses by default, a [`Progress`] bar and an [`EpochLog`].

use std::fmt;
use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::history::{EpochMetrics, Evaluation, History};
use crate::metrics::Metrics;

/// Whether training goes on after a callback returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// End training after this step or epoch; `fit` then returns the history so far (with
    /// `stopped_early` set), restoring the best weights as early stopping does.
    Stop,
}

/// The figures of one training step, for [`Callback::on_step`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepEnd<'a, M> {
    /// The epoch, from 1.
    pub epoch: usize,
    /// The step within the epoch, from 1.
    pub step: usize,
    /// The steps of a whole epoch.
    pub steps_per_epoch: usize,
    /// The mean loss of this step's mini-batch.
    pub loss: f32,
    /// The loss and metrics over the epoch's batches so far.
    pub running: &'a Evaluation<M>,
    /// The samples trained on so far in this epoch.
    pub samples: usize,
    /// The time since the epoch started.
    pub elapsed: Duration,
}

/// Hooks into [`fit_with`](super::fit_with): each method runs on the training thread at its
/// point of the loop; all default to doing nothing. `M` is the loss's metrics
/// ([`Accuracy`](crate::Accuracy) for classification).
///
/// [`fit_with`](super::fit_with)'s example stops training from a callback.
pub trait Callback<M> {
    /// Before the first step of `epoch` (from 1) of `epochs`, with `steps` steps.
    fn on_epoch_start(&mut self, _epoch: usize, _epochs: usize, _steps: usize) {}

    /// After each optimizer step.
    fn on_step(&mut self, _step: &StepEnd<'_, M>) -> Control {
        Control::Continue
    }

    /// After each epoch's evaluation on the dev set.
    fn on_epoch_end(&mut self, _metrics: &EpochMetrics<M>) -> Control {
        Control::Continue
    }

    /// Once training has ended (also after a stop), with everything `fit` returns.
    fn on_end(&mut self, _history: &History<M>) {}
}

/// A terminal progress bar per epoch: the epoch, steps done, running loss and metrics, and
/// throughput; hidden when standard error is not a terminal.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar on standard error.
    pub fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("epoch {prefix} [{bar:20}] {pos}/{len} {wide_msg}")
            .expect("a valid progress template")
            .progress_chars("=> ");
        bar.set_style(style);
        Progress { bar }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl<M: Metrics> Callback<M> for Progress {
    fn on_epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize) {
        self.bar.set_length(steps as u64);
        self.bar.set_prefix(format!("{epoch}/{epochs}"));
        self.bar.set_message("");
        self.bar.reset();
    }

    fn on_step(&mut self, step: &StepEnd<'_, M>) -> Control {
        self.bar.inc(1);
        if !self.bar.is_hidden() {
            let rate = step.samples as f64 / step.elapsed.as_secs_f64().max(1e-9);
            self.bar.set_message(format!("{} {rate:.0} samples/s", step.running));
        }
        Control::Continue
    }

    fn on_epoch_end(&mut self, _metrics: &EpochMetrics<M>) -> Control {
        self.bar.finish_and_clear();
        Control::Continue
    }

    fn on_end(&mut self, _history: &History<M>) {
        self.bar.finish_and_clear();
    }
}

/// Where an [`EpochLog`] writes its lines.
pub enum LogTarget {
    /// Standard output, one line per epoch.
    Stdout,
    /// The `log` crate's facade at level `info`, target `keel::fit`: whatever logger the
    /// program installed decides.
    Log,
    /// Any writer (a file, a buffer); a failed write is ignored, as a lost log line should
    /// not end training.
    Writer(Box<dyn Write + Send>),
}

impl fmt::Debug for LogTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogTarget::Stdout => "Stdout",
            LogTarget::Log => "Log",
            LogTarget::Writer(_) => "Writer",
        })
    }
}

/// One line per epoch (its [`EpochMetrics`]: `epoch   3: train loss 0.1234 acc 97.10% |
/// dev ... | lr 1.00e-3 | 5000 samples/s`), and a last line when early stopping restored
/// the best epoch's weights.
#[derive(Debug)]
pub struct EpochLog {
    target: LogTarget,
}

impl EpochLog {
    /// Lines on standard output.
    pub fn stdout() -> Self {
        EpochLog { target: LogTarget::Stdout }
    }

    /// Lines through the `log` facade ([`LogTarget::Log`]).
    pub fn to_log() -> Self {
        EpochLog { target: LogTarget::Log }
    }

    /// Lines to `writer`.
    pub fn to_writer(writer: impl Write + Send + 'static) -> Self {
        EpochLog { target: LogTarget::Writer(Box::new(writer)) }
    }

    /// Writes one line to the target.
    fn line(&mut self, line: fmt::Arguments<'_>) {
        match &mut self.target {
            LogTarget::Stdout => println!("{line}"),
            LogTarget::Log => log::info!(target: "keel::fit", "{line}"),
            LogTarget::Writer(writer) => {
                let _ = writeln!(writer, "{line}");
            }
        }
    }
}

impl<M: Metrics> Callback<M> for EpochLog {
    fn on_epoch_end(&mut self, metrics: &EpochMetrics<M>) -> Control {
        self.line(format_args!("{metrics}"));
        Control::Continue
    }

    fn on_end(&mut self, history: &History<M>) {
        if let Some(best) = history.restored_best.then(|| history.best()).flatten() {
            self.line(format_args!(
                "restored the weights of epoch {} (dev loss {:.4})",
                best.epoch, best.dev.loss
            ));
        }
        if let LogTarget::Writer(writer) = &mut self.target {
            let _ = writer.flush();
        }
    }
}
