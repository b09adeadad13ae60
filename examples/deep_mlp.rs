//! A deep (L-layer) MLP on the bundled 8x8 digits with the course's toolbox for training
//! deeper networks:
//!
//! ```text
//! cargo run --release --example deep_mlp
//! ```
//!
//! - the layer sizes come from one `const` array: `LAYER_SIZES = [64, 128, 64, 32, 10]` is
//!   64 inputs, three ReLU hidden layers and 10 class scores (change it and rerun);
//! - He initialisation (weights with deviation `√(2/fan_in)`, which keeps ReLU activations
//!   from shrinking or exploding through the layers);
//! - Adam, with L2 weight decay (`weight_decay`), and a learning rate decayed by 5% per
//!   epoch (`α = 0.95^epoch·α0`);
//! - dropout after each hidden layer (only while training; evaluation uses every unit);
//! - early stopping on the dev set: stop once the dev loss has not improved for `PATIENCE`
//!   epochs and keep the weights of the best epoch.
//!
//! It ends with the bias/variance report: train and dev error against human-level error
//! (about 0.5% on these digits), and which gap to work on next.

use keel::kernels::optim::AdamConfig;
use keel::layers::{
    evaluate, fit, train_dev_test_split, Activation, ActivationKind, Adam, BiasVariance, Dataset, Dense,
    Dropout, ExponentialDecay, FitConfig, Init, Sequential, SoftmaxCrossEntropy,
};
use keel::layers::{SeedableRng, StdRng};

/// Units per layer, input first: L = 4 weight layers.
const LAYER_SIZES: [usize; 5] = [64, 128, 64, 32, 10];
/// Probability of dropping a hidden unit during training.
const DROPOUT: f32 = 0.1;
/// L2 regularisation strength, added as `weight_decay·W` to every gradient.
const WEIGHT_DECAY: f64 = 1e-4;
/// The initial learning rate α0.
const LEARNING_RATE: f64 = 2e-3;
/// Epochs without a better dev loss before stopping.
const PATIENCE: usize = 5;
/// Human-level error on the 8x8 digits (a proxy for the Bayes error).
const HUMAN_ERROR: f64 = 0.005;

/// The MLP `LAYER_SIZES[0] -> ... -> LAYER_SIZES[L]`: Dense, ReLU, Dropout for each hidden
/// layer, a plain Dense for the class scores.
fn deep_mlp(rng: &mut StdRng) -> Sequential {
    let mut model = Sequential::new();
    let layers = LAYER_SIZES.len() - 1;
    for (index, sizes) in LAYER_SIZES.windows(2).enumerate() {
        model = model.push(Dense::new(sizes[0], sizes[1], Init::He, rng).unwrap());
        if index + 1 < layers {
            model = model
                .push(Activation::new(ActivationKind::Relu))
                .push(Dropout::new(DROPOUT, index as u64).unwrap());
        }
    }
    model
}

fn main() -> keel::layers::Result<()> {
    // 1797 images of 8x8 pixels, values 0..16 scaled to [0, 1]; split 70/15/15.
    let data = Dataset::from_csv_gz("data/digits.csv.gz", 16.0)?;
    let (train, dev, test) = train_dev_test_split(&data, 0.15, 0.15, 42)?;
    println!("{} train, {} dev, {} test images; layers {LAYER_SIZES:?}", train.len(), dev.len(), test.len());

    let mut model = deep_mlp(&mut StdRng::seed_from_u64(0));
    let mut loss = SoftmaxCrossEntropy::new();
    let mut optimizer =
        Adam::new(AdamConfig { lr: LEARNING_RATE, weight_decay: WEIGHT_DECAY, ..AdamConfig::default() })?;
    let config = FitConfig {
        epochs: 100,
        batch_size: 32,
        drop_last: false,
        seed: 1,
        patience: Some(PATIENCE),
        augment: None,
        lr_schedule: Some(Box::new(ExponentialDecay { initial: LEARNING_RATE, gamma: 0.95 })),
        data_parallel: None,
        quiet: false,
    };
    let history = fit(&mut model, &mut optimizer, &mut loss, &train, &dev, &config)?;
    if history.stopped_early {
        println!("stopped early after {} epochs; best epoch {}", history.epochs.len(), history.best_epoch);
    }

    // Errors measured in eval mode (no dropout) with the kept weights.
    let train_accuracy = evaluate(&mut model, &mut loss, &train, 256)?.metrics.accuracy;
    let dev_accuracy = evaluate(&mut model, &mut loss, &dev, 256)?.metrics.accuracy;
    let test_figures = evaluate(&mut model, &mut loss, &test, 256)?;
    let (test_loss, test_accuracy) = (test_figures.loss, test_figures.metrics.accuracy);
    println!(
        "train accuracy {:.2}%, dev accuracy {:.2}%, test accuracy {:.2}% (test loss {test_loss:.4})",
        100.0 * train_accuracy,
        100.0 * dev_accuracy,
        100.0 * test_accuracy
    );
    println!("{}", BiasVariance::new(HUMAN_ERROR, 1.0 - train_accuracy, 1.0 - dev_accuracy));
    Ok(())
}
