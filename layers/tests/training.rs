//! Training tests: metrics against hand computation, the mini-batch loader and the split,
//! the `fit` loop (early stopping, NaN detection, empty data, a real digits run that is
//! reproducible from its seed) and the learning-curve SVG.

use keel_layers::kernels::optim::{AdamConfig, SgdConfig};
use keel_layers::metrics::{accuracy, count_correct, BiasVariance, ClassScores, ConfusionMatrix, Focus};
use keel_layers::{
    evaluate, fit, plot_curves, predict, predict_classes, predict_proba, train_dev_test_split, Accuracy,
    Activation, ActivationKind, Adam, BatchNorm, Batches, Dataset, Dense, FitConfig, History, Init, Layer,
    LayerError, Mode, Sequential, Sgd, SoftmaxCrossEntropy, Tensor,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Metric values are ratios of small counts: compared to 1e-12 (f64 rounding only).
fn assert_near(actual: f64, expected: f64, what: &str) {
    assert!((actual - expected).abs() < 1e-12, "{what}: {actual} != {expected}");
}

fn assert_scores(actual: ClassScores, precision: f64, recall: f64, f1: f64, what: &str) {
    assert_near(actual.precision, precision, &format!("{what} precision"));
    assert_near(actual.recall, recall, &format!("{what} recall"));
    assert_near(actual.f1, f1, &format!("{what} f1"));
}

/// Scores `(n, classes)` whose arg-max is `predicted`: -1 everywhere but +2 at the guess.
fn scores_for(predicted: &[u32], classes: usize) -> Tensor {
    let mut values = vec![-1.0; predicted.len() * classes];
    for (row, &guess) in predicted.iter().enumerate() {
        values[row * classes + guess as usize] = 2.0;
    }
    Tensor::from_vec(&[predicted.len(), classes], values).unwrap()
}

fn digits() -> Dataset {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/digits.csv.gz");
    Dataset::from_csv_gz(path, 16.0).unwrap()
}

/// The MLP 64-64-10 with ReLU, weights drawn from `seed`.
fn mlp(seed: u64) -> Sequential {
    let mut rng = StdRng::seed_from_u64(seed);
    Sequential::new()
        .push(Dense::new(64, 64, Init::He, &mut rng).unwrap())
        .push(Activation::new(ActivationKind::Relu))
        .push(Dense::new(64, 10, Init::Xavier, &mut rng).unwrap())
}

fn quiet(epochs: usize, seed: u64) -> FitConfig {
    FitConfig { epochs, batch_size: 32, seed, quiet: true, ..FitConfig::default() }
}

/// `n` samples with features `[i, -i]` and label `i`, so a batch row shows its origin.
fn numbered(n: usize) -> Dataset {
    let values = (0..n).flat_map(|i| [i as f32, -(i as f32)]).collect();
    Dataset { features: Tensor::from_vec(&[n, 2], values).unwrap(), labels: (0..n as u32).collect() }
}

#[test]
fn accuracy_takes_the_first_maximum_and_counts_rows() {
    // Row 1 ties classes 0 and 2: the first maximum (0) is the prediction.
    let scores = Tensor::from_vec(&[3, 3], vec![0.1, 0.7, -0.2, 0.5, -0.5, 0.5, -1.0, -2.0, -0.5]).unwrap();
    assert_eq!(count_correct(&scores, &[1, 0, 2]).unwrap(), 3);
    assert_near(accuracy(&scores, &[1, 2, 2]).unwrap(), 2.0 / 3.0, "accuracy");
    assert_near(accuracy(&Tensor::zeros(&[0, 3]), &[]).unwrap(), 0.0, "empty accuracy");
}

/// Labels    0 0 0 1 1 2 2 2 2, predicted 0 0 1 1 1 2 2 0 2: rows (true class)
/// [2 1 0], [0 2 0], [1 0 3]. By hand: class 0 p = r = 2/3; class 1 p = 2/3, r = 1,
/// F1 = 4/5; class 2 p = 1, r = 3/4, F1 = 6/7; macro p = 7/9, r = 29/36,
/// F1 = (2/3 + 4/5 + 6/7)/3 = 244/315; accuracy 7/9.
#[test]
fn confusion_matrix_and_macro_f1_match_hand_computation() {
    let labels = [0, 0, 0, 1, 1, 2, 2, 2, 2];
    let predicted = [0, 0, 1, 1, 1, 2, 2, 0, 2];
    let from_predictions = ConfusionMatrix::from_predictions(3, &predicted, &labels).unwrap();
    let matrix = ConfusionMatrix::from_scores(&scores_for(&predicted, 3), &labels).unwrap();
    assert_eq!(matrix, from_predictions);
    assert_eq!(matrix.counts(), &[2, 1, 0, 0, 2, 0, 1, 0, 3]);
    assert_eq!((matrix.count(2, 0), matrix.total(), matrix.count(3, 0)), (1, 9, 0));
    assert_near(matrix.accuracy(), 7.0 / 9.0, "accuracy");
    assert_scores(matrix.class_scores(0), 2.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0, "class 0");
    assert_scores(matrix.class_scores(1), 2.0 / 3.0, 1.0, 4.0 / 5.0, "class 1");
    assert_scores(matrix.class_scores(2), 1.0, 3.0 / 4.0, 6.0 / 7.0, "class 2");
    assert_scores(matrix.macro_average(), 7.0 / 9.0, 29.0 / 36.0, 244.0 / 315.0, "macro");
    assert!(matches!(matrix.binary(), Err(LayerError::Data(_))));
    let table = " true\\pred 0 1 2\n         0 2 1 0\n         1 0 2 0\n         2 1 0 3";
    assert_eq!(matrix.to_string(), table);
}

/// Labels 1 1 1 0 0 0 1 0, predicted 1 0 1 1 1 0 1 0: tp 3, fn 1, fp 2, so p = 3/5,
/// r = 3/4, F1 = 2·(9/20)/(27/20) = 2/3. A class never predicted scores 0, not NaN.
#[test]
fn binary_scores_use_class_one_as_positive() {
    let matrix =
        ConfusionMatrix::from_predictions(2, &[1, 0, 1, 1, 1, 0, 1, 0], &[1, 1, 1, 0, 0, 0, 1, 0]).unwrap();
    assert_scores(matrix.binary().unwrap(), 3.0 / 5.0, 3.0 / 4.0, 2.0 / 3.0, "binary");
    let never_positive = ConfusionMatrix::from_predictions(2, &[0, 0], &[1, 0]).unwrap();
    assert_scores(never_positive.binary().unwrap(), 0.0, 0.0, 0.0, "never predicted");
}

#[test]
fn metric_inputs_are_checked() {
    let scores = scores_for(&[0, 1], 2);
    let short = accuracy(&scores, &[0]).unwrap_err();
    assert!(matches!(short, LayerError::Shape { ref actual, .. } if actual == &[2, 2]), "{short}");
    let out_of_range = accuracy(&scores, &[0, 2]).unwrap_err();
    assert!(matches!(out_of_range, LayerError::Data(_)), "{out_of_range}");
    assert!(out_of_range.to_string().contains("label 2 of sample 1"), "{out_of_range}");
    let mismatched = ConfusionMatrix::from_predictions(2, &[0], &[0, 1]).unwrap_err();
    assert!(matches!(mismatched, LayerError::Shape { .. }), "{mismatched}");
    let bad_guess = ConfusionMatrix::from_predictions(2, &[0, 5], &[0, 1]).unwrap_err();
    assert!(bad_guess.to_string().contains("label 5"), "{bad_guess}");
    assert!(ConfusionMatrix::from_scores(&Tensor::zeros(&[2]), &[0, 1]).is_err());
}

#[test]
fn bias_variance_points_at_the_larger_gap() {
    let underfit = BiasVariance::new(0.01, 0.08, 0.10);
    assert_near(underfit.avoidable_bias(), 0.07, "bias");
    assert_near(underfit.variance(), 0.02, "variance");
    assert_eq!(underfit.focus(), Focus::Bias);
    let text = underfit.to_string();
    assert!(text.contains("avoidable bias 7.00%") && text.contains("variance 2.00%"), "{text}");
    assert!(text.contains("reduce bias"), "{text}");
    let overfit = BiasVariance::new(0.01, 0.015, 0.10);
    assert_eq!(overfit.focus(), Focus::Variance);
    assert!(overfit.to_string().contains("reduce variance"), "{overfit}");
}

/// Every sample exactly once per epoch, rows matching their labels, sizes 3 3 3 1; equal
/// seeds give equal epochs, epochs differ from each other; batches reuse one buffer.
#[test]
fn loader_covers_every_sample_once_reproducibly() {
    let data = numbered(10);
    let epochs = |seed: u64| -> Vec<Vec<u32>> {
        let mut loader = Batches::shuffled(&data, 3, seed).unwrap();
        assert_eq!(loader.batches_per_epoch(), 4);
        let (mut epochs, mut buffer) = (Vec::new(), None);
        for epoch in 0..3 {
            if epoch > 0 {
                loader.start_epoch();
            }
            let (mut seen, mut sizes) = (Vec::new(), Vec::new());
            while let Some((x, y)) = loader.next_batch() {
                assert_eq!(x.shape(), &[y.len(), 2]);
                for (row, &label) in x.data().chunks_exact(2).zip(y) {
                    assert_eq!(row, &[label as f32, -(label as f32)]);
                }
                // Steady state: the batch tensor keeps its allocation across batches and epochs.
                assert_eq!(*buffer.get_or_insert(x.data().as_ptr()), x.data().as_ptr());
                sizes.push(y.len());
                seen.extend_from_slice(y);
            }
            assert_eq!(sizes, [3, 3, 3, 1]);
            let mut sorted = seen.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..10).collect::<Vec<u32>>());
            epochs.push(seen);
        }
        epochs
    };
    let first = epochs(5);
    assert_eq!(first, epochs(5));
    assert_ne!(first[0], first[1]);
    assert_ne!(first[1], first[2]);
    assert_ne!(first, epochs(6));
    let mut in_order = Batches::sequential(&data, 4).unwrap();
    assert_eq!(in_order.next_batch().unwrap().1, &[0, 1, 2, 3]);
    assert!(Batches::shuffled(&data, 0, 1).is_err());
}

#[test]
fn drop_last_ends_each_epoch_before_a_short_batch() {
    let data = numbered(10);
    let mut loader = Batches::shuffled(&data, 3, 5).unwrap().drop_last(true);
    assert_eq!(loader.batches_per_epoch(), 3);
    let mut left_out = Vec::new();
    for epoch in 0..3 {
        if epoch > 0 {
            loader.start_epoch();
        }
        let (mut seen, mut sizes) = (Vec::new(), Vec::new());
        while let Some((_, y)) = loader.next_batch() {
            sizes.push(y.len());
            seen.extend_from_slice(y);
        }
        assert_eq!(sizes, [3, 3, 3], "epoch {epoch}");
        let missing: Vec<u32> = (0..10).filter(|i| !seen.contains(i)).collect();
        assert_eq!(missing.len(), 1);
        left_out.push(missing[0]);
    }
    // The sample left out is the shuffled order's last, so it changes between epochs.
    assert!(left_out.windows(2).any(|w| w[0] != w[1]), "{left_out:?}");
    // A whole number of batches drops nothing.
    let mut exact = Batches::sequential(&data, 5).unwrap().drop_last(true);
    assert_eq!(exact.batches_per_epoch(), 2);
    assert_eq!(exact.next_batch().unwrap().1.len(), 5);
    assert_eq!(exact.next_batch().unwrap().1.len(), 5);
    assert!(exact.next_batch().is_none());
}

/// A model with batch norm cannot train on a last batch of one sample (the case:
/// 33 samples in batches of 32); `drop_last` skips it. Fewer samples than a batch leave
/// nothing to train on: a named error.
#[test]
fn fit_with_drop_last_trains_batch_norm_past_a_batch_of_one() {
    let mut rng = StdRng::seed_from_u64(3);
    let all = digits();
    let train = all.slice(0..33).unwrap();
    let dev = all.slice(33..99).unwrap();
    let mut model = Sequential::new()
        .push(Dense::new(64, 16, Init::He, &mut rng).unwrap())
        .push(BatchNorm::new_1d(16))
        .push(Activation::new(ActivationKind::Relu))
        .push(Dense::new(16, 10, Init::Xavier, &mut rng).unwrap());
    let mut optimizer = Adam::new(AdamConfig::default()).unwrap();
    let config = FitConfig { epochs: 2, batch_size: 32, quiet: true, ..FitConfig::default() };
    let kept = fit(&mut model, &mut optimizer, &mut SoftmaxCrossEntropy::new(), &train, &dev, &config);
    assert!(kept.is_err(), "a batch of one through batch norm in training mode");
    let dropped = FitConfig { drop_last: true, ..config };
    let history =
        fit(&mut model, &mut optimizer, &mut SoftmaxCrossEntropy::new(), &train, &dev, &dropped).unwrap();
    assert_eq!(history.epochs.len(), 2);
    let small = train.slice(0..20).unwrap();
    let error =
        fit(&mut model, &mut optimizer, &mut SoftmaxCrossEntropy::new(), &small, &dev, &dropped).unwrap_err();
    assert!(error.to_string().contains("fewer than a batch of 32"), "{error}");
}

/// `predict` runs the model batch by batch in eval mode: the same outputs as one forward of
/// everything (to f32 rounding: the products' shapes differ), for any batch size; the
/// probabilities are a softmax per row (or σ of one column) and the classes their arg-max.
#[test]
fn predict_gives_outputs_probabilities_and_classes_in_batches() {
    let data = digits().slice(0..100).unwrap();
    let mut model = mlp(4);
    model.forward(&data.features, Mode::Eval).unwrap();
    let whole = model.output().clone();
    for batch_size in [1, 7, 32, 100, 1000] {
        let outputs = predict(&mut model, &data.features, batch_size).unwrap();
        assert_eq!(outputs.shape(), &[100, 10]);
        for (got, want) in outputs.data().iter().zip(whole.data()) {
            assert!((got - want).abs() <= 1e-5 * (1.0 + want.abs()), "batch {batch_size}: {got} vs {want}");
        }
    }
    let probabilities = predict_proba(&mut model, &data.features, 32).unwrap();
    let classes = predict_classes(&mut model, &data.features, 32).unwrap();
    for ((row, logits), &class) in
        probabilities.data().chunks_exact(10).zip(whole.data().chunks_exact(10)).zip(&classes)
    {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        let best = (0..10).fold(0, |b, j| if logits[j] > logits[b] { j } else { b });
        assert_eq!(class as usize, best);
        assert!(row.iter().all(|&p| p <= row[best]));
    }
    // One output column: σ(z) and z > 0.
    let mut rng = StdRng::seed_from_u64(5);
    let mut binary = Sequential::new().push(Dense::new(64, 1, Init::Xavier, &mut rng).unwrap());
    let p = predict_proba(&mut binary, &data.features, 16).unwrap();
    let z = predict(&mut binary, &data.features, 16).unwrap();
    let c = predict_classes(&mut binary, &data.features, 16).unwrap();
    for ((&p, &z), &c) in p.data().iter().zip(z.data()).zip(&c) {
        assert!((p - 1.0 / (1.0 + (-z).exp())).abs() < 1e-6);
        assert_eq!(c, u32::from(z > 0.0));
    }
    assert!(c.contains(&0) && c.contains(&1), "both classes predicted: {c:?}");
    // No batch, no sample, features the model does not take.
    assert!(predict(&mut model, &data.features, 0).unwrap_err().to_string().contains("batch size"));
    assert!(predict(&mut model, &Tensor::zeros(&[0, 64]), 8).is_err());
    assert!(matches!(predict(&mut model, &Tensor::zeros(&[4, 63]), 8), Err(LayerError::Shape { .. })));
}

#[test]
fn split_partitions_the_samples_reproducibly() {
    let data = numbered(20);
    let (train, dev, test) = train_dev_test_split(&data, 0.2, 0.1, 3).unwrap();
    assert_eq!((train.len(), dev.len(), test.len()), (14, 4, 2));
    assert_eq!(train.features.shape(), &[14, 2]);
    for set in [&train, &dev, &test] {
        for (row, &label) in set.features.data().chunks_exact(2).zip(&set.labels) {
            assert_eq!(row[0], label as f32);
        }
    }
    let mut all: Vec<u32> = [&train, &dev, &test].iter().flat_map(|set| set.labels.clone()).collect();
    all.sort_unstable();
    assert_eq!(all, (0..20).collect::<Vec<u32>>());
    assert_eq!(train_dev_test_split(&data, 0.2, 0.1, 3).unwrap(), (train.clone(), dev, test));
    assert_ne!(train_dev_test_split(&data, 0.2, 0.1, 4).unwrap().0, train);
    assert!(train_dev_test_split(&data, 0.7, 0.5, 3).is_err());
    assert!(train_dev_test_split(&data, -0.1, 0.0, 3).is_err());
}

/// Everything but the wall-clock throughput.
fn learning_figures(history: &History) -> Vec<[f64; 5]> {
    history
        .epochs
        .iter()
        .map(|m| [m.train.loss, m.train.metrics.accuracy, m.dev.loss, m.dev.metrics.accuracy, m.lr])
        .collect()
}

/// MLP 64-64-10 (ReLU), Adam at 3e-3 halved every 5 epochs, batches of 32, 12 epochs on a
/// 70/15/15 split of the digits: the dev accuracy passes 95% (it ends at 97.8%, test
/// 95.6%), the same seeds give the same history, and the curves are written.
#[test]
fn fit_learns_the_digits_deterministically() {
    let (train, dev, test) = train_dev_test_split(&digits(), 0.15, 0.15, 7).unwrap();
    let run = || {
        let mut model = mlp(1);
        let mut adam = Adam::new(AdamConfig::default()).unwrap();
        let mut loss = SoftmaxCrossEntropy::new();
        let config = FitConfig {
            augment: None,
            lr_schedule: Some(Box::new(|epoch| 3e-3 * 0.5f64.powi((epoch / 5) as i32))),
            ..quiet(12, 11)
        };
        let history = fit(&mut model, &mut adam, &mut loss, &train, &dev, &config).unwrap();
        let test = evaluate(&mut model, &mut loss, &test, 100).unwrap();
        (history, test.loss, test.metrics.accuracy)
    };
    let (history, test_loss, test_accuracy) = run();
    assert_eq!(history.epochs.len(), 12);
    assert!(!history.stopped_early);
    let last = history.epochs.last().unwrap();
    assert!(last.dev.metrics.accuracy > 0.95, "dev accuracy {}", last.dev.metrics.accuracy);
    assert!(test_accuracy > 0.93, "test accuracy {test_accuracy}");
    assert!(last.train.loss < 0.5 * history.epochs[0].train.loss, "{history:?}");
    assert!(test_loss.is_finite() && last.samples_per_sec > 0.0);
    assert_eq!(history.epochs.iter().map(|m| m.lr).collect::<Vec<_>>()[4..6], [3e-3, 1.5e-3]);
    let (again, again_loss, _) = run();
    assert_eq!(learning_figures(&history), learning_figures(&again));
    assert_eq!((history.best_epoch, test_loss), (again.best_epoch, again_loss));

    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("keel_training_curves.svg");
    let written = plot_curves(&history, &path).unwrap();
    assert_eq!(written, path);
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("accuracy") && svg.contains("<polyline"), "{svg:.200}");
    assert!(plot_curves(&History::<Accuracy>::default(), &path).is_err());
}

/// Dev = the training samples with every label shifted by one: learning the training set
/// makes the dev loss rise from the start, so the best epoch is early, patience 2 stops two
/// epochs later, and the restored weights give back exactly the best epoch's dev loss.
#[test]
fn early_stopping_restores_the_best_weights() {
    let train = digits().slice(0..400).unwrap();
    let dev =
        Dataset { labels: train.labels.iter().map(|&label| (label + 1) % 10).collect(), ..train.clone() };
    let mut model = mlp(2);
    let mut adam = Adam::new(AdamConfig { lr: 1e-2, ..AdamConfig::default() }).unwrap();
    let mut loss = SoftmaxCrossEntropy::new();
    let config = FitConfig { patience: Some(2), ..quiet(30, 3) };
    let history = fit(&mut model, &mut adam, &mut loss, &train, &dev, &config).unwrap();
    assert!(history.stopped_early, "{history:?}");
    assert_eq!(history.epochs.len(), history.best_epoch + 2);
    let best = history.epochs[history.best_epoch - 1].dev.loss;
    let last = history.epochs.last().unwrap().dev.loss;
    assert!(last > best, "{history:?}");
    let restored = evaluate(&mut model, &mut loss, &dev, 32).unwrap();
    assert_eq!(restored.loss, best);
}

#[test]
fn a_diverging_loss_names_epoch_and_step() {
    let train = digits().slice(0..200).unwrap();
    let mut model = mlp(3);
    let mut sgd = Sgd::new(SgdConfig { lr: 1e30, ..SgdConfig::default() }).unwrap();
    let mut loss = SoftmaxCrossEntropy::new();
    let error = fit(&mut model, &mut sgd, &mut loss, &train, &train, &quiet(3, 1)).unwrap_err();
    let LayerError::NonFiniteLoss { epoch, step, loss } = error else { panic!("{error}") };
    // Step 1 starts from sane weights; its update makes them ~1e29, and two such layers
    // overflow f32 in the next forward pass.
    assert_eq!((epoch, step), (1, 2), "{error}");
    assert!(!loss.is_finite());
    assert!(error.to_string().contains("epoch 1, step 2"), "{error}");
}

#[test]
fn empty_data_and_bad_settings_are_errors() {
    let empty = Dataset { features: Tensor::zeros(&[0, 64]), labels: Vec::new() };
    let train = digits().slice(0..50).unwrap();
    let mut model = mlp(4);
    let mut adam = Adam::new(AdamConfig::default()).unwrap();
    let mut loss = SoftmaxCrossEntropy::new();
    for (train, dev) in [(&empty, &train), (&train, &empty)] {
        let error = fit(&mut model, &mut adam, &mut loss, train, dev, &quiet(1, 0)).unwrap_err();
        assert!(matches!(error, LayerError::Data(_)), "{error}");
    }
    assert!(evaluate(&mut model, &mut loss, &empty, 8).is_err());
    let zero_batch = FitConfig { batch_size: 0, ..quiet(1, 0) };
    assert!(fit(&mut model, &mut adam, &mut loss, &train, &train, &zero_batch).is_err());
    let no_patience = FitConfig { patience: Some(0), ..quiet(1, 0) };
    assert!(fit(&mut model, &mut adam, &mut loss, &train, &train, &no_patience).is_err());
}
