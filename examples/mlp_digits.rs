//! Train a small MLP on the bundled 8x8 digits with `fit`:
//!
//! ```text
//! cargo run --release --example mlp_digits
//! ```
//!
//! It splits the data 70/15/15 (seeded), trains a 64-64-10 ReLU network with Adam (a
//! progress bar per epoch and one log line each, stopping early if the dev loss stalls),
//! then prints the test accuracy and where the learning curves were drawn.

use keel::kernels::optim::AdamConfig;
use keel::layers::metrics::{BiasVariance, ConfusionMatrix};
use keel::layers::{
    evaluate, fit, plot_curves, train_dev_test_split, Activation, ActivationKind, Adam, Dataset, Dense,
    FitConfig, Init, Layer, Mode, Sequential, SoftmaxCrossEntropy,
};
use keel::layers::{SeedableRng, StdRng};

fn main() -> keel::layers::Result<()> {
    // 1797 images of 8x8 pixels (values 0..16, scaled to [0, 1]), labels 0..9.
    let data = Dataset::from_csv_gz("data/digits.csv.gz", 16.0)?;
    let (train, dev, test) = train_dev_test_split(&data, 0.15, 0.15, 42)?;
    println!("{} train, {} dev, {} test samples", train.len(), dev.len(), test.len());

    // 64 pixels -> 64 hidden units (ReLU) -> 10 class scores.
    let mut rng = StdRng::seed_from_u64(0);
    let mut model = Sequential::new()
        .push(Dense::new(64, 64, Init::He, &mut rng)?)
        .push(Activation::new(ActivationKind::Relu))
        .push(Dense::new(64, 10, Init::Xavier, &mut rng)?);
    let mut optimizer = Adam::new(AdamConfig { lr: 3e-3, ..AdamConfig::default() })?;
    let mut loss = SoftmaxCrossEntropy::new();

    let config = FitConfig {
        epochs: 30,
        batch_size: 32,
        drop_last: false,
        seed: 1,
        // Stop after 5 epochs without a better dev loss, keeping the best weights.
        patience: Some(5),
        // Halve the learning rate every 10 epochs.
        augment: None,
        lr_schedule: Some(Box::new(|epoch| 3e-3 * 0.5f64.powi((epoch / 10) as i32))),
        data_parallel: None,
        quiet: false,
    };
    let history = fit(&mut model, &mut optimizer, &mut loss, &train, &dev, &config)?;

    let train_accuracy = evaluate(&mut model, &mut loss, &train, 256)?.metrics.accuracy;
    let dev_accuracy = evaluate(&mut model, &mut loss, &dev, 256)?.metrics.accuracy;
    let test_figures = evaluate(&mut model, &mut loss, &test, 256)?;
    let (test_loss, test_accuracy) = (test_figures.loss, test_figures.metrics.accuracy);
    println!("test loss {test_loss:.4}, test accuracy {:.2}%", 100.0 * test_accuracy);

    // Per-class view of the test set and what to improve next (human error on digits ~ 0.5%).
    model.forward(&test.features, Mode::Eval)?;
    let confusion = ConfusionMatrix::from_scores(model.output(), &test.labels)?;
    println!("test macro F1 {:.4}", confusion.macro_average().f1);
    println!("{}", BiasVariance::new(0.005, 1.0 - train_accuracy, 1.0 - dev_accuracy));

    let path = plot_curves(&history, "target/mlp_digits_curves.svg")?;
    println!("learning curves: {}", path.display());
    Ok(())
}
