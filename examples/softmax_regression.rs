//! Softmax regression on the bundled 8x8 digits: logistic regression grown to 10 classes.
//!
//! ```text
//! cargo run --release --example softmax_regression
//! ```
//!
//! One `Dense(64 -> 10)` layer gives a score per digit, `z = W·x + b`; softmax turns the
//! scores into probabilities and the loss is their cross-entropy with the true digit
//! (`SoftmaxCrossEntropy`). There is no hidden layer, so the classes are separated by
//! hyperplanes in pixel space. Training uses `fit` (shuffled mini-batches of 32, SGD with
//! momentum, a log line per epoch); the example then prints the test accuracy and the
//! confusion matrix (rows: true digit, columns: predicted digit).

use keel::kernels::optim::SgdConfig;
use keel::layers::metrics::ConfusionMatrix;
use keel::layers::{
    evaluate, fit, train_dev_test_split, Dataset, Dense, FitConfig, Init, Layer, Mode, Sgd,
    SoftmaxCrossEntropy,
};
use keel::layers::{SeedableRng, StdRng};

fn main() -> keel::layers::Result<()> {
    // 1797 images of 8x8 pixels, values 0..16 scaled to [0, 1]; split 70/15/15.
    let data = Dataset::from_csv_gz("data/digits.csv.gz", 16.0)?;
    let (train, dev, test) = train_dev_test_split(&data, 0.15, 0.15, 42)?;
    println!("{} train, {} dev, {} test images", train.len(), dev.len(), test.len());

    let mut model = Dense::new(64, 10, Init::Xavier, &mut StdRng::seed_from_u64(0))?;
    let mut loss = SoftmaxCrossEntropy::new();
    let mut optimizer = Sgd::new(SgdConfig { lr: 0.05, momentum: 0.9, ..SgdConfig::default() })?;
    let config = FitConfig { epochs: 20, batch_size: 32, seed: 1, ..FitConfig::default() };
    fit(&mut model, &mut optimizer, &mut loss, &train, &dev, &config)?;

    let evaluation = evaluate(&mut model, &mut loss, &test, 256)?;
    println!("test {evaluation}");

    model.forward(&test.features, Mode::Eval)?;
    let confusion = ConfusionMatrix::from_scores(model.output(), &test.labels)?;
    println!("confusion matrix (rows: true digit, columns: predicted digit)\n{confusion}");
    println!("macro F1 {:.4}", confusion.macro_average().f1);
    Ok(())
}
