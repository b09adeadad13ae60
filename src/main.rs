//! `cargo run --release`: keel's main job. Trains LeNet-5 on the bundled MNIST subset
//! (5000 handwritten digits, 28x28) and reports test accuracy, throughput and the learning
//! curves.
//!
//! The recipe (what the course teaches, chosen to pass 97% on the held-out 1000):
//! - a fixed, seeded, class-mixed 4000/1000 train/test split (the file is sorted by class);
//! - inputs scaled to [0, 1], then normalised with the training set's mean and deviation;
//! - LeNet-5 (ReLU, max pooling, He initialisation) with batch norm after each convolution
//!   and dropout 0.2 after the two hidden dense layers (plain LeNet-5 overfits 4000 images:
//!   99.9% train, 96.6% test);
//! - mini-batches of 64 reshuffled each epoch, Adam with L2 weight decay 1e-4, and the
//!   learning rate decayed as `α0/(1 + k·epoch)` with α0 = 2e-3, k = 0.3, for 20 epochs;
//! - a fixed number of epochs: no early stopping, since the only held-out set is the test
//!   set, which is shown per epoch but never used to choose anything.
//!
//! The thread count follows rayon (`RAYON_NUM_THREADS`, default: all cores); the same seed
//! and thread count give the same run.

use std::time::Instant;

use keel::layers::{evaluate, fit, plot_curves, save_safetensors, SoftmaxCrossEntropy};

#[path = "../examples/common/main_job.rs"]
mod main_job;

fn main() -> keel::layers::Result<()> {
    let (train, test) = main_job::data()?;
    println!(
        "MNIST 5k: {} train / {} test images, 28x28; LeNet-5 on {} thread(s)",
        train.len(),
        test.len(),
        rayon::current_num_threads()
    );
    let mut model = main_job::model()?;
    let mut optimizer = main_job::optimizer()?;
    let mut loss = SoftmaxCrossEntropy::new();
    let config = main_job::fit_config();

    let start = Instant::now();
    let history = fit(&mut model, &mut optimizer, &mut loss, &train, &test, &config)?;
    let seconds = start.elapsed().as_secs_f64();
    let evaluation = evaluate(&mut model, &mut loss, &test, 500)?;
    println!("{}", main_job::summary("test", &evaluation, &history, train.len(), seconds));
    // The outputs go to `target/` under the working directory, made if missing (a build with
    // `CARGO_TARGET_DIR` elsewhere leaves none here).
    std::fs::create_dir_all("target")
        .map_err(|e| keel::layers::LayerError::Data(format!("cannot create target/ for the outputs: {e}")))?;
    let path = plot_curves(&history, "target/lenet5_mnist_curves.svg")?;
    println!("learning curves: {}", path.display());
    let weights = "target/lenet5_mnist.safetensors";
    save_safetensors(&mut model, weights)?;
    println!("trained weights: {weights}");
    Ok(())
}
