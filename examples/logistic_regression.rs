//! Binary logistic regression on the bundled 8x8 digits: "is this digit an 8?".
//!
//! ```text
//! cargo run --release --example logistic_regression
//! ```
//!
//! The model is one `Dense(64 -> 1)` layer: a weight per pixel and a bias, `z = w·x + b`,
//! read as the probability `σ(z)` that the image shows an 8. It is trained by batch gradient
//! descent written out by hand, the course's vectorised loop over all `m` training images at
//! once (no mini-batches, no `fit`):
//!
//! ```text
//! Z = X·Wᵀ + b                            forward, (m, 1)
//! J = mean(-y·ln σ(Z) - (1-y)·ln(1-σ(Z)))   binary cross-entropy
//! dZ = (σ(Z) - Y)/m, dW = dZᵀ·X, db = Σ dZ  backward
//! W -= α·dW, b -= α·db                      gradient-descent step
//! ```
//!
//! Only about one image in ten is an 8, so accuracy alone flatters the model (always
//! answering "no" scores 90%): the example also prints precision, recall and F1 of the
//! "8" class on the test set.

use keel::kernels::optim::SgdConfig;
use keel::layers::metrics::ConfusionMatrix;
use keel::layers::{
    train_dev_test_split, zero_grad, BceWithLogits, Dataset, Dense, Init, Layer, Loss, Mode, Optimizer, Sgd,
    Tensor,
};
use keel::layers::{SeedableRng, StdRng};

/// The digit the classifier looks for.
const POSITIVE: u32 = 8;
/// Passes of batch gradient descent over the whole training set.
const ITERATIONS: usize = 2000;
/// The learning rate α.
const LEARNING_RATE: f64 = 0.5;

/// The 0/1 targets `(m, 1)` of "is the label `POSITIVE`?" as f32, for the loss.
fn targets(labels: &[u32]) -> keel::layers::Result<Tensor> {
    let values = labels.iter().map(|&label| f32::from(u8::from(label == POSITIVE))).collect();
    Tensor::from_vec(&[labels.len(), 1], values)
}

/// Predicts 1 where `σ(z) > 0.5`, i.e. `z > 0`, and tabulates against the 0/1 truth.
fn confusion(model: &mut Dense, data: &Dataset) -> keel::layers::Result<ConfusionMatrix> {
    model.forward(&data.features, Mode::Eval)?;
    let predicted: Vec<u32> = model.output().data().iter().map(|&z| u32::from(z > 0.0)).collect();
    let truth: Vec<u32> = data.labels.iter().map(|&label| u32::from(label == POSITIVE)).collect();
    ConfusionMatrix::from_predictions(2, &predicted, &truth)
}

fn main() -> keel::layers::Result<()> {
    // 1797 images of 8x8 pixels, values 0..16 scaled to [0, 1]; 80% train, 20% test.
    let data = Dataset::from_csv_gz("data/digits.csv.gz", 16.0)?;
    let (train, _, test) = train_dev_test_split(&data, 0.0, 0.2, 42)?;
    let y_train = targets(&train.labels)?;
    println!(
        "{} train / {} test images; positives (digit {POSITIVE}): {} / {}",
        train.len(),
        test.len(),
        y_train.data().iter().filter(|&&y| y == 1.0).count(),
        test.labels.iter().filter(|&&label| label == POSITIVE).count(),
    );

    // Logistic regression may start from zeros: the cost is convex, no symmetry to break.
    let mut model = Dense::new(64, 1, Init::Zeros, &mut StdRng::seed_from_u64(0))?;
    let mut loss = BceWithLogits::new();
    let mut optimizer = Sgd::new(SgdConfig { lr: LEARNING_RATE, ..SgdConfig::default() })?;

    for iteration in 0..ITERATIONS {
        zero_grad(&mut model); // gradients accumulate: clear them first
        model.forward(&train.features, Mode::Train)?; // Z = X·Wᵀ + b
        let cost = loss.forward(model.output(), &y_train)?; // J
        let dz = loss.backward(&y_train)?; // dZ = (σ(Z) - Y)/m
        model.backward(&train.features, dz)?; // dW, db
        optimizer.step(&mut model)?; // W -= α·dW, b -= α·db
        if iteration % 250 == 0 || iteration == ITERATIONS - 1 {
            println!("iteration {iteration:>4}: cost {cost:.4}");
        }
    }

    let train_accuracy = confusion(&mut model, &train)?.accuracy();
    let test_confusion = confusion(&mut model, &test)?;
    let scores = test_confusion.binary()?;
    println!(
        "train accuracy {:.2}%, test accuracy {:.2}%",
        100.0 * train_accuracy,
        100.0 * test_confusion.accuracy()
    );
    println!(
        "test, class \"{POSITIVE}\": precision {:.3}, recall {:.3}, F1 {:.3} \
         (true positives {}, false positives {}, false negatives {})",
        scores.precision,
        scores.recall,
        scores.f1,
        test_confusion.count(1, 1),
        test_confusion.count(0, 1),
        test_confusion.count(1, 0),
    );
    Ok(())
}
