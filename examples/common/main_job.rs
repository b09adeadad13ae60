//! The main job's recipe, shared by `src/main.rs` (one process) and the `mpi_lenet5` example
//! (data-parallel): the data, the model's seed, the optimizer, the training settings and the
//! closing line.

use keel::layers::{
    lenet5_bn, train_dev_test_split, Accuracy, Adam, AdamConfig, Dataset, Evaluation, FitConfig, History,
    InverseTimeDecay, Result, SeedableRng, Sequential, StdRng,
};

/// The bundled MNIST subset split 4000/1000 (seeded, classes mixed), normalised with the
/// training set's mean and deviation, as images `(1, 28, 28)`: `(train, test)`.
pub fn data() -> Result<(Dataset, Dataset)> {
    let data = Dataset::from_csv_gz("data/mnist_5k.csv.gz", 255.0)?;
    let (mut train, _, mut test) = train_dev_test_split(&data, 0.0, 0.2, 2026)?;
    let (mean, std) = train.pooled_mean_std();
    train.normalize(mean, std);
    test.normalize(mean, std);
    Ok((train.with_sample_shape(&[1, 28, 28])?, test.with_sample_shape(&[1, 28, 28])?))
}

/// LeNet-5 with batch norm and dropout (its PyTorch twin is in `lenet5_bn`'s docs), seed 7.
pub fn model() -> Result<Sequential> {
    lenet5_bn(&mut StdRng::seed_from_u64(7))
}

/// Adam with L2 weight decay 1e-4.
pub fn optimizer() -> Result<Adam> {
    Adam::new(AdamConfig { lr: 2e-3, weight_decay: 1e-4, ..AdamConfig::default() })
}

/// 20 epochs of batches of 64 reshuffled from seed 1, the learning rate `2e-3/(1 + 0.3·epoch)`.
pub fn fit_config() -> FitConfig {
    FitConfig {
        epochs: 20,
        batch_size: 64,
        seed: 1,
        lr_schedule: Some(Box::new(InverseTimeDecay { initial: 2e-3, decay_rate: 0.3 })),
        ..FitConfig::default()
    }
}

/// The closing line: accuracy and loss on the `measured` set ("test", "dev"), epochs,
/// seconds and training images per second, for `history` of `fit` over `train_len` images
/// that took `seconds`.
pub fn summary(
    measured: &str,
    evaluation: &Evaluation<Accuracy>,
    history: &History,
    train_len: usize,
    seconds: f64,
) -> String {
    let images = (train_len * history.epochs.len()) as f64;
    format!(
        "{measured} accuracy {:.2}% (loss {:.4}) after {} epochs in {seconds:.1} s: {:.0} training images/s",
        100.0 * evaluation.metrics.accuracy,
        evaluation.loss,
        history.epochs.len(),
        images / seconds
    )
}
