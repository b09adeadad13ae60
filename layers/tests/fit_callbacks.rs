//! `fit_with` and its callbacks: every hook called at its point with the figures `fit`
//! returns, a `Control::Stop` ending training, the epoch log to a writer and through the
//! `log` facade; non-finite values in the dev set, in `evaluate` and in `predict_classes`
//! are errors that name the samples.

use std::io::Write;
use std::sync::{Arc, Mutex};

use keel_layers::{
    evaluate, fit, fit_with, predict_classes, Accuracy, Adam, AdamConfig, Callback, Control, Dataset, Dense,
    EpochLog, EpochMetrics, FitConfig, History, Init, Layer, LayerError, Optimizer, Sequential,
    SoftmaxCrossEntropy, StepEnd, Tensor,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// `n` samples of 3 features in two classes split by the sign of their sum.
fn two_blobs(n: usize) -> Dataset {
    let values: Vec<f32> = (0..n * 3).map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0).collect();
    let labels = values.chunks_exact(3).map(|row| u32::from(row.iter().sum::<f32>() > 0.0)).collect();
    Dataset::new(Tensor::from_vec(&[n, 3], values).unwrap(), labels).unwrap()
}

fn model() -> Sequential {
    let mut rng = StdRng::seed_from_u64(3);
    Sequential::new().push(Dense::new(3, 2, Init::Xavier, &mut rng).unwrap())
}

/// Every parameter value, in visiting order.
fn weights(model: &mut Sequential) -> Vec<f32> {
    let mut values = Vec::new();
    model.visit_params(&mut |_, param| values.extend_from_slice(param.value.data()));
    values
}

fn config(epochs: usize) -> FitConfig {
    FitConfig { epochs, batch_size: 10, seed: 1, quiet: true, ..FitConfig::default() }
}

/// Trains `net` on 45 training and 12 dev samples with `optimizer`, `config` and
/// `callbacks`.
fn train_blobs(
    net: &mut Sequential,
    optimizer: &mut dyn Optimizer,
    config: &FitConfig,
    callbacks: &mut [&mut dyn Callback<Accuracy>],
) -> History<Accuracy> {
    let (train, dev) = (two_blobs(45), two_blobs(12));
    fit_with(net, optimizer, &mut SoftmaxCrossEntropy::new(), &train, &dev, config, callbacks).unwrap()
}

/// Records every call, and stops at `stop_at` (epoch, step) when given.
#[derive(Default)]
struct Recorder {
    starts: Vec<(usize, usize, usize)>,
    steps: Vec<(usize, usize, usize, usize)>,
    ends: Vec<EpochMetrics<Accuracy>>,
    finished: Vec<History<Accuracy>>,
    stop_at: Option<(usize, usize)>,
}

impl Callback<Accuracy> for Recorder {
    fn on_epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize) {
        self.starts.push((epoch, epochs, steps));
    }

    fn on_step(&mut self, step: &StepEnd<'_, Accuracy>) -> Control {
        assert!(step.loss.is_finite() && step.running.loss.is_finite());
        self.steps.push((step.epoch, step.step, step.steps_per_epoch, step.samples));
        if self.stop_at == Some((step.epoch, step.step)) {
            Control::Stop
        } else {
            Control::Continue
        }
    }

    fn on_epoch_end(&mut self, metrics: &EpochMetrics<Accuracy>) -> Control {
        self.ends.push(*metrics);
        Control::Continue
    }

    fn on_end(&mut self, history: &History<Accuracy>) {
        self.finished.push(history.clone());
    }
}

/// A writer into a shared buffer.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn every_hook_sees_what_fit_returns_and_the_same_run_as_fit() {
    let (train, dev) = (two_blobs(45), two_blobs(12));
    let mut recorder = Recorder::default();
    let mut net = model();
    let mut adam = Adam::new(AdamConfig { lr: 0.05, ..AdamConfig::default() }).unwrap();
    let history = train_blobs(&mut net, &mut adam, &config(3), &mut [&mut recorder]);
    assert_eq!(recorder.starts, vec![(1, 3, 5), (2, 3, 5), (3, 3, 5)]);
    let expected_steps: Vec<_> =
        (1..=3).flat_map(|e| (1..=5).map(move |s| (e, s, 5, (s * 10).min(45)))).collect();
    assert_eq!(recorder.steps, expected_steps);
    assert_eq!(recorder.ends, history.epochs);
    assert_eq!(recorder.finished, vec![history.clone()]);
    // Callbacks watch: the same seed without them trains the same weights.
    let mut plain = model();
    let mut adam = Adam::new(AdamConfig { lr: 0.05, ..AdamConfig::default() }).unwrap();
    let plain_history =
        fit(&mut plain, &mut adam, &mut SoftmaxCrossEntropy::new(), &train, &dev, &config(3)).unwrap();
    let figures = |h: &History<Accuracy>| h.epochs.iter().map(|m| (m.train, m.dev)).collect::<Vec<_>>();
    assert_eq!(figures(&plain_history), figures(&history));
    assert_eq!(weights(&mut plain), weights(&mut net));
}

#[test]
fn a_stop_ends_training_after_that_step_with_the_epoch_measured() {
    let mut recorder = Recorder { stop_at: Some((2, 3)), ..Recorder::default() };
    let mut adam = Adam::new(AdamConfig::default()).unwrap();
    let history = train_blobs(&mut model(), &mut adam, &config(5), &mut [&mut recorder]);
    assert_eq!(history.epochs.len(), 2);
    assert!(history.stopped_early);
    assert_eq!(recorder.steps.last(), Some(&(2, 3, 5, 30)));
    assert_eq!(recorder.ends.len(), 2);
    assert_eq!(recorder.finished.len(), 1);
}

#[test]
fn the_epoch_log_writes_one_line_per_epoch_and_the_restore() {
    let buffer = Shared::default();
    let mut log = EpochLog::to_writer(buffer.clone());
    // A learning rate large enough that the dev loss rises again: early stopping restores.
    let mut sgd = keel_layers::Sgd::new(keel_layers::SgdConfig { lr: 3.0, ..Default::default() }).unwrap();
    let config = FitConfig { patience: Some(1), ..config(8) };
    let history = train_blobs(&mut model(), &mut sgd, &config, &mut [&mut log]);
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let epochs: Vec<String> = history.epochs.iter().map(|m| m.to_string()).collect();
    assert_eq!(lines[..epochs.len()], epochs.iter().map(String::as_str).collect::<Vec<_>>()[..]);
    assert!(history.restored_best, "the run must end worse than its best epoch: {history:?}");
    let best = history.best().unwrap();
    assert_eq!(lines.len(), epochs.len() + 1);
    assert_eq!(
        lines[epochs.len()],
        format!("restored the weights of epoch {} (dev loss {:.4})", best.epoch, best.dev.loss)
    );
}

/// The records the `log` facade received with target `keel::fit`.
static RECORDS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.target() == "keel::fit" && record.level() == log::Level::Info {
            RECORDS.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

#[test]
fn the_epoch_log_goes_through_the_log_facade() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Info);
    let mut adam = Adam::new(AdamConfig::default()).unwrap();
    let history = train_blobs(&mut model(), &mut adam, &config(2), &mut [&mut EpochLog::to_log()]);
    let expected: Vec<String> = history.epochs.iter().map(|m| m.to_string()).collect();
    assert_eq!(*RECORDS.lock().unwrap(), expected);
}

#[test]
fn non_finite_values_are_errors_naming_the_samples() {
    let train = two_blobs(45);
    let mut dev = two_blobs(25);
    dev.features.data_mut()[3 * 13 + 1] = f32::NAN; // sample 13, in the second batch of 10
    let mut adam = Adam::new(AdamConfig::default()).unwrap();
    let error =
        fit(&mut model(), &mut adam, &mut SoftmaxCrossEntropy::new(), &train, &dev, &config(2)).unwrap_err();
    match &error {
        LayerError::Data(message) => {
            assert!(message.starts_with("dev samples 10..20 after epoch 1: the loss is NaN"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let error = evaluate(&mut model(), &mut SoftmaxCrossEntropy::new(), &dev, 4).unwrap_err();
    assert!(
        matches!(&error, LayerError::Data(m) if m.starts_with("evaluation samples 12..16: the loss is NaN")),
        "{error}"
    );
    let error = predict_classes(&mut model(), &dev.features, 8).unwrap_err();
    assert!(
        matches!(&error, LayerError::Data(m) if m.starts_with("predict_classes: sample 13 has the output NaN"))
    );
}

#[test]
fn a_label_out_of_range_names_the_sample_in_its_data_set_and_the_epoch() {
    let train = two_blobs(45);
    let mut dev = two_blobs(12);
    let mut bad_train = train.clone();
    bad_train.labels[37] = 2; // the model has 2 classes
    let mut adam = Adam::new(AdamConfig::default()).unwrap();
    let error = fit(&mut model(), &mut adam, &mut SoftmaxCrossEntropy::new(), &bad_train, &dev, &config(2));
    match error.unwrap_err() {
        LayerError::InSample { set: "training", sample: 37, epoch: Some(1), error } => {
            assert!(matches!(*error, LayerError::Index { ref value, .. } if value == "2"), "{error}");
            assert!(error.to_string().contains("a class index in 0..2"), "{error}");
        }
        other => panic!("{other}"),
    }
    dev.labels[5] = 7;
    let error =
        fit(&mut model(), &mut adam, &mut SoftmaxCrossEntropy::new(), &train, &dev, &config(2)).unwrap_err();
    assert!(matches!(error, LayerError::InSample { set: "dev", sample: 5, epoch: Some(1), .. }), "{error}");
    assert!(
        error.to_string().starts_with("dev sample 5 (epoch 1): softmax_cross_entropy: index 7"),
        "{error}"
    );
    let error = evaluate(&mut model(), &mut SoftmaxCrossEntropy::new(), &dev, 4).unwrap_err();
    assert!(
        matches!(error, LayerError::InSample { set: "evaluation", sample: 5, epoch: None, .. }),
        "{error}"
    );
}
