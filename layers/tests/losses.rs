//! The `Loss` trait through `fit` and `evaluate`: binary cross-entropy and MSE train real
//! models on the bundled digits, and every loss's evaluation (loss and metrics) matches a
//! hand computation in f64 on a tiny example.
//!
//! The tiny examples evaluate `Flatten`, an identity on `(n, k)` inputs, so the features
//! are the model's output and every figure can be worked out by hand.

use keel_layers::kernels::optim::AdamConfig;
use keel_layers::metrics::Regression;
use keel_layers::{
    evaluate, fit, train_dev_test_split, Accuracy, Adam, BceWithLogits, Dataset, Dense, FitConfig, Flatten,
    Init, Layer, LayerError, Mode, Mse, SoftmaxCrossEntropy, Tensor,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn digits() -> Dataset {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/digits.csv.gz");
    Dataset::from_csv_gz(path, 16.0).unwrap()
}

fn tensor(shape: &[usize], values: &[f32]) -> Tensor {
    Tensor::from_vec(shape, values.to_vec()).unwrap()
}

fn assert_near(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!((actual - expected).abs() <= tolerance, "{what}: {actual} vs {expected}");
}

fn quiet(epochs: usize) -> FitConfig {
    FitConfig { epochs, batch_size: 32, seed: 5, quiet: true, ..FitConfig::default() }
}

/// Digits 0 and 1 of the bundled set (8x8 images, 360 samples), labelled `(n, 1)` with 1.0
/// for a one: two classes a line separates.
fn zeros_and_ones() -> Dataset<Tensor> {
    let data = digits();
    let (mut features, mut labels) = (Vec::new(), Vec::new());
    for (row, &label) in data.features.data().chunks_exact(64).zip(&data.labels) {
        if label <= 1 {
            features.extend_from_slice(row);
            labels.push(label as f32);
        }
    }
    let n = labels.len();
    Dataset::new(tensor(&[n, 64], &features), tensor(&[n, 1], &labels)).unwrap()
}

/// Logistic regression (one dense unit) with BCE on zeros vs ones: the dev accuracy passes
/// 99%, `evaluate` agrees with the last epoch's dev figures, and the accuracy's threshold
/// moves it.
#[test]
fn fit_with_bce_separates_two_digits() {
    let (train, dev, _) = train_dev_test_split(&zeros_and_ones(), 0.25, 0.0, 3).unwrap();
    let mut model = Dense::new(64, 1, Init::Xavier, &mut StdRng::seed_from_u64(1)).unwrap();
    let mut adam = Adam::new(AdamConfig { lr: 1e-2, ..AdamConfig::default() }).unwrap();
    let mut loss = BceWithLogits::new();
    let history = fit(&mut model, &mut adam, &mut loss, &train, &dev, &quiet(10)).unwrap();
    let (first, last) = (history.epochs[0], *history.epochs.last().unwrap());
    assert!(last.train.loss < 0.2 * first.train.loss, "{history:?}");
    assert!(last.dev.metrics.accuracy > 0.99, "{last}");
    let evaluation = evaluate(&mut model, &mut loss, &dev, 32).unwrap();
    assert_eq!(evaluation, last.dev);
    let mut strict = BceWithLogits::new().with_threshold(0.999_999);
    let strict_accuracy = evaluate(&mut model, &mut strict, &dev, 32).unwrap().metrics.accuracy;
    assert!(strict_accuracy < evaluation.metrics.accuracy, "{strict_accuracy}");
}

/// Two real-valued targets per digit image, each a linear function of its pixels (the ink
/// in the top half minus the bottom half, and in the middle four columns): one dense layer
/// with MSE learns them. The loss falls tenfold, dev R² passes 0.9, and the MAE and R² that
/// `evaluate` reports equal the ones computed here from the model's outputs in f64
/// (scikit-learn's `mean_absolute_error` and `r2_score`).
#[test]
fn fit_with_mse_learns_a_regression_and_reports_mae_and_r2() {
    let data = digits();
    let n = data.len();
    let targets: Vec<f32> = data
        .features
        .data()
        .chunks_exact(64)
        .flat_map(|image| {
            let top: f32 = image[..32].iter().sum();
            let bottom: f32 = image[32..].iter().sum();
            let middle: f32 = image.chunks_exact(8).map(|row| row[2..6].iter().sum::<f32>()).sum();
            [(top - bottom) / 8.0, middle / 16.0 - 1.0]
        })
        .collect();
    let data = Dataset::new(data.features, tensor(&[n, 2], &targets)).unwrap();
    let (train, dev, _) = train_dev_test_split(&data, 0.2, 0.0, 9).unwrap();
    let mut model = Dense::new(64, 2, Init::Xavier, &mut StdRng::seed_from_u64(2)).unwrap();
    let mut adam = Adam::new(AdamConfig { lr: 1e-2, ..AdamConfig::default() }).unwrap();
    let mut loss = Mse::new();
    let history = fit(&mut model, &mut adam, &mut loss, &train, &dev, &quiet(20)).unwrap();
    let (first, last) = (history.epochs[0], *history.epochs.last().unwrap());
    assert!(last.train.loss < 0.1 * first.train.loss, "{history:?}");
    assert!(last.dev.metrics.r2 > 0.9 && last.dev.metrics.r2 > first.dev.metrics.r2, "{last}");

    let evaluation = evaluate(&mut model, &mut loss, &dev, 50).unwrap();
    model.forward(&dev.features, Mode::Eval).unwrap();
    let (pred, truth) = (model.output().data(), dev.labels.data());
    let mae = pred.iter().zip(truth).map(|(&p, &y)| f64::from(p - y).abs()).sum::<f64>() / pred.len() as f64;
    let r2_of = |output: usize| {
        let column = |v: &[f32]| v.iter().skip(output).step_by(2).map(|&x| f64::from(x)).collect::<Vec<_>>();
        let (p, y) = (column(pred), column(truth));
        let mean = y.iter().sum::<f64>() / y.len() as f64;
        let ss_res: f64 = p.iter().zip(&y).map(|(p, y)| (y - p) * (y - p)).sum();
        let ss_tot: f64 = y.iter().map(|y| (y - mean) * (y - mean)).sum();
        1.0 - ss_res / ss_tot
    };
    let r2 = (r2_of(0) + r2_of(1)) / 2.0;
    assert_near(evaluation.metrics.mae, mae, 1e-6 * mae, "mae");
    assert_near(evaluation.metrics.r2, r2, 1e-9, "r2");
    assert!(evaluation.metrics.mae > 0.0 && evaluation.metrics.r2 < 1.0, "{evaluation}");
}

/// Predictions `[1.5, 2, 2, 5]` for targets `[1, 2, 3, 4]`: residuals `[0.5, 0, -1, 1]`,
/// MSE `2.25/4`, MAE `2.5/4`, `SS_tot = 5` around the mean 2.5, so R² = `1 - 2.25/5`.
/// Batches of 3 and 1: the sums run across batches. A second output whose targets are
/// constant (all 7) and predictions `[7, 7, 7, 8]` has R² 0 (scikit-learn's
/// `force_finite`), and R² averages the outputs.
#[test]
fn mse_evaluation_matches_a_hand_computation() {
    let one_output =
        Dataset::new(tensor(&[4, 1], &[1.5, 2.0, 2.0, 5.0]), tensor(&[4, 1], &[1.0, 2.0, 3.0, 4.0]));
    let evaluation = evaluate(&mut Flatten::new(), &mut Mse::new(), &one_output.unwrap(), 3).unwrap();
    assert_near(evaluation.loss, 0.5625, 1e-7, "loss");
    assert_near(evaluation.metrics.mae, 0.625, 1e-12, "mae");
    assert_near(evaluation.metrics.r2, 0.55, 1e-12, "r2");

    let pred = tensor(&[4, 2], &[1.5, 7.0, 2.0, 7.0, 2.0, 7.0, 5.0, 8.0]);
    let targets = tensor(&[4, 2], &[1.0, 7.0, 2.0, 7.0, 3.0, 7.0, 4.0, 7.0]);
    let two_outputs = Dataset::new(pred, targets).unwrap();
    let evaluation = evaluate(&mut Flatten::new(), &mut Mse::new(), &two_outputs, 3).unwrap();
    assert_near(evaluation.loss, 3.25 / 8.0, 1e-7, "loss");
    assert_eq!(evaluation.metrics, Regression { mae: 3.5 / 8.0, r2: 0.55 / 2.0 });
    assert_eq!(evaluation.to_string(), "loss 0.4062 mae 0.4375 r2 0.2750");
}

/// Logits `[-2, -0.5, 0.5, 2]` for targets `[0, 1, 0, 1]`: the loss is the mean of
/// `-(y·ln σ(z) + (1-y)·ln(1-σ(z)))` in f64; σ is `[0.12, 0.38, 0.62, 0.88]`, so at the
/// threshold 0.5 the predictions are `[0, 0, 1, 1]` (2 of 4 right), at 0.3 `[0, 1, 1, 1]`
/// (3 of 4), at 0.9 all 0 (2 of 4). A threshold outside [0, 1] is an error.
#[test]
fn bce_evaluation_matches_a_hand_computation() {
    let logits = [-2.0f32, -0.5, 0.5, 2.0];
    let labels = [0.0f32, 1.0, 0.0, 1.0];
    let data = Dataset::new(tensor(&[4, 1], &logits), tensor(&[4, 1], &labels)).unwrap();
    let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
    let expected_loss = logits
        .iter()
        .zip(&labels)
        .map(|(&z, &y)| {
            let (p, y) = (sigmoid(f64::from(z)), f64::from(y));
            -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
        })
        .sum::<f64>()
        / 4.0;
    for (threshold, accuracy) in [(0.5, 0.5), (0.3, 0.75), (0.9, 0.5)] {
        let mut loss = BceWithLogits::new().with_threshold(threshold);
        let evaluation = evaluate(&mut Flatten::new(), &mut loss, &data, 3).unwrap();
        assert_near(evaluation.loss, expected_loss, 1e-6 * expected_loss, "loss");
        assert_eq!(evaluation.metrics, Accuracy { accuracy }, "threshold {threshold}");
    }
    let mut bad = BceWithLogits::new().with_threshold(1.5);
    let error = evaluate(&mut Flatten::new(), &mut bad, &data, 4).unwrap_err();
    assert!(matches!(&error, LayerError::Data(message) if message.contains("1.5")), "{error}");
}

/// Logits of 3 samples over 3 classes with labels `[0, 2, 1]`: the loss is the mean of
/// `ln Σ e^x - x_label` in f64; the arg-maxes `[0, 1, 1]` get 2 of 3 right.
#[test]
fn softmax_cross_entropy_evaluation_matches_a_hand_computation() {
    let logits = [2.0f32, 1.0, -1.0, 0.5, 1.5, 1.0, -0.5, 3.0, 0.0];
    let labels = vec![0u32, 2, 1];
    let data = Dataset::new(tensor(&[3, 3], &logits), labels.clone()).unwrap();
    let expected_loss = logits
        .chunks_exact(3)
        .zip(&labels)
        .map(|(row, &label)| {
            let log_sum: f64 = row.iter().map(|&x| f64::from(x).exp()).sum::<f64>().ln();
            log_sum - f64::from(row[label as usize])
        })
        .sum::<f64>()
        / 3.0;
    let evaluation = evaluate(&mut Flatten::new(), &mut SoftmaxCrossEntropy::new(), &data, 2).unwrap();
    assert_near(evaluation.loss, expected_loss, 1e-6 * expected_loss, "loss");
    assert_eq!(evaluation.metrics, Accuracy { accuracy: 2.0 / 3.0 });
}

/// A data set whose labels do not have one row per sample is refused up front.
#[test]
fn dataset_new_checks_one_label_per_sample() {
    let error = Dataset::new(Tensor::zeros(&[4, 2]), Tensor::zeros(&[3, 1])).unwrap_err();
    assert!(matches!(error, LayerError::Shape { .. }), "{error}");
    assert!(Dataset::new(Tensor::zeros(&[2, 2]), vec![0u32, 1]).is_ok());
}
