//! `cargo run --release --example transfer_digits`: transfer learning on the bundled MNIST
//! subset (the main job's split, 4000 train / 1000 test). LeNet-5 learns digits 0-4; its two
//! convolution layers are then frozen, its three dense layers replaced by new ones (the last
//! 84→5), and only those train on digits 5-9 (the source's weights go through a checkpoint,
//! `target/transfer_digits_source.safetensors`, as they would from another program). Beside it, on the same budget (epochs, batches,
//! optimizer, seed), the same network trains on 5-9 from scratch, and the transferred one
//! fine-tunes with every layer unfrozen. Each trains on 5, 50 and every labelled image per
//! digit (40, 10 and 2 epochs), three times with different seeds, and prints its mean test
//! accuracy on 5-9 and training time: the frozen model's backward stops at its dense layers
//! ([`freeze`]), so it trains fastest.
//! `RAYON_NUM_THREADS` sets the thread count.

use std::path::Path;
use std::time::Instant;

use keel::kernels::optim::AdamConfig;
use keel::layers::models::lenet5;
use keel::layers::{
    evaluate, fit, freeze, load_safetensors, param_counts, save_safetensors, train_dev_test_split, unfreeze,
    ActivationKind, Adam, Dataset, Dense, FitConfig, Init, Result, Sequential, SoftmaxCrossEntropy,
};
use keel::layers::{SeedableRng, StdRng};

/// The convolution layers of LeNet-5 (`lenet5`'s indices): the features that transfer.
const FEATURES: [&str; 2] = ["0", "2"];

/// The seeds of the new layers and of the shuffling, one run each.
const SEEDS: [u64; 3] = [11, 12, 13];

fn main() -> Result<()> {
    let data = Dataset::from_csv_gz("data/mnist_5k.csv.gz", 255.0)?;
    let (mut train, _, mut test) = train_dev_test_split(&data, 0.0, 0.2, 2026)?;
    let (mean, std) = train.pooled_mean_std();
    train.normalize(mean, std);
    test.normalize(mean, std);
    let train = train.with_sample_shape(&[1, 28, 28])?;
    let test = test.with_sample_shape(&[1, 28, 28])?;
    let (source_train, source_test) = (digits(&train, 0, None)?, digits(&test, 0, None)?);
    let (target_test, target_all) = (digits(&test, 5, None)?, digits(&train, 5, None)?);
    let target_few = digits(&train, 5, Some(5))?;
    let target_mid = digits(&train, 5, Some(50))?;
    println!(
        "MNIST 5k, {} thread(s): digits 0-4 {} train / {} test; digits 5-9 {} train / {} test",
        rayon::current_num_threads(),
        source_train.len(),
        source_test.len(),
        target_all.len(),
        target_test.len()
    );

    // LeNet-5 on digits 0-4, with a 5-way head.
    let mut rng = StdRng::seed_from_u64(3);
    let mut source = lenet5(&mut rng)?;
    new_classifier(&mut source, &mut rng)?;
    let start = Instant::now();
    let accuracy = train_and_test(&mut source, &source_train, &source_test, 6, 1)?;
    println!(
        "source: digits 0-4, {:.2}% test accuracy ({:.1} s)\n",
        100.0 * accuracy,
        start.elapsed().as_secs_f64()
    );
    let source_path = Path::new("target/transfer_digits_source.safetensors");
    save_safetensors(&mut source, source_path)?;

    // Three training sets of digits 5-9, each with its budget in epochs.
    let budgets = [(&target_few, 40), (&target_mid, 10), (&target_all, 2)];
    print!("{:<34}", format!("digits 5-9, mean of {} seeds", SEEDS.len()));
    for (set, epochs) in budgets {
        print!(" {:>20}", format!("{} images, {epochs} ep", set.len()));
    }
    println!();
    for (label, variant) in [
        ("transfer: frozen features", Variant::Frozen),
        ("transfer: fine-tune every layer", Variant::FineTune),
        ("from scratch", Variant::Scratch),
    ] {
        print!("{label:<34}");
        for (target_train, epochs) in budgets {
            let (mut accuracy, mut seconds) = (0.0, 0.0);
            for seed in SEEDS {
                let mut model = variant.model(source_path, seed)?;
                let start = Instant::now();
                accuracy += train_and_test(&mut model, target_train, &target_test, epochs, seed)?;
                seconds += start.elapsed().as_secs_f64();
            }
            let runs = SEEDS.len() as f64;
            print!(" {:>20}", format!("{:.2}% {:.2} s", 100.0 * accuracy / runs, seconds / runs));
        }
        println!();
    }
    Ok(())
}

/// How the network for digits 5-9 starts.
#[derive(Clone, Copy)]
enum Variant {
    /// The source's layers frozen, a new head.
    Frozen,
    /// The source's layers trainable, a new head.
    FineTune,
    /// A new network.
    Scratch,
}

impl Variant {
    /// The model for digits 5-9, its new layers drawn from `seed`; a transferred one reads
    /// the source's weights from `source`.
    fn model(self, source: &Path, seed: u64) -> Result<Sequential> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut model = lenet5(&mut rng)?;
        new_classifier(&mut model, &mut rng)?;
        if let Variant::Frozen | Variant::FineTune = self {
            load_safetensors(&mut model, source)?;
            new_classifier(&mut model, &mut rng)?;
        }
        if let Variant::Frozen = self {
            for name in FEATURES {
                freeze(&mut model, name)?;
            }
        } else {
            unfreeze(&mut model, "")?;
        }
        let counts = param_counts(&mut model);
        assert_eq!(counts.frozen > 0, matches!(self, Variant::Frozen));
        Ok(model)
    }
}

/// Puts new dense layers (`lenet5`'s 400→120→84, then 84→5) in place of LeNet-5's.
fn new_classifier(model: &mut Sequential, rng: &mut StdRng) -> Result<()> {
    let relu = ActivationKind::Relu;
    model.replace("5", Dense::new(400, 120, Init::He, rng)?.with_activation(relu))?;
    model.replace("6", Dense::new(120, 84, Init::He, rng)?.with_activation(relu))?;
    model.replace("7", Dense::new(84, 5, Init::He, rng)?)?;
    Ok(())
}

/// Trains `model` for `epochs` on `train` (Adam, batches of 32 shuffled from `seed`) and
/// returns its test accuracy on `test`.
fn train_and_test(
    model: &mut Sequential,
    train: &Dataset,
    test: &Dataset,
    epochs: usize,
    seed: u64,
) -> Result<f64> {
    let mut optimizer = Adam::new(AdamConfig { lr: 1e-3, ..AdamConfig::default() })?;
    let mut loss = SoftmaxCrossEntropy::new();
    let config = FitConfig { epochs, batch_size: 32, seed, quiet: true, ..FitConfig::default() };
    fit(model, &mut optimizer, &mut loss, train, test, &config)?;
    Ok(evaluate(model, &mut loss, test, 500)?.metrics.accuracy)
}

/// The samples of digits `first..first + 5` (at most `per_digit` of each, in order), with
/// labels shifted to 0-4.
fn digits(data: &Dataset, first: u32, per_digit: Option<usize>) -> Result<Dataset> {
    let mut taken = [0usize; 5];
    let indices: Vec<usize> = (0..data.len())
        .filter(|&i| {
            let label = data.labels[i];
            if !(first..first + 5).contains(&label) {
                return false;
            }
            let count = &mut taken[(label - first) as usize];
            *count += 1;
            per_digit.is_none_or(|limit| *count <= limit)
        })
        .collect();
    let mut subset = data.select(&indices)?;
    subset.labels.iter_mut().for_each(|label| *label -= first);
    Ok(subset)
}
