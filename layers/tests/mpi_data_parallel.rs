//! Data-parallel training under `mpirun -np 2` (`.ci/run`; a plain run is one rank):
//! `fit` with a [`DataParallel`] model over the world, every rank taking its shard of each
//! global batch of 64, ends with the weights of one process training on the whole batches,
//! within a tolerance for the order of the sums, for an MLP and for one with batch norm
//! (synchronised) and dropout (drawing by global row); the ranks end bit-identical; the
//! summed training figures are the single process's. `KEEL_MPI_FAIL=error` or `panic` makes the
//! last rank fail in the middle of training, which must end every rank (the job's exit code
//! is then not 0) instead of leaving the others waiting.

use std::sync::Arc;

use keel_layers::distributed::{Collective, DataParallel, Mpi};
use keel_layers::{
    fit, Activation, ActivationKind, BatchNorm, Dataset, Dense, Dropout, FitConfig, History, Init, Layer,
    LayerError, Result, SeedableRng, Sequential, Sgd, SgdConfig, SoftmaxCrossEntropy, StdRng, Tensor,
};

/// `n` samples of 12 features in 4 classes by the sign pattern of two feature sums.
fn blobs(n: usize, salt: usize) -> Dataset {
    let values: Vec<f32> = (0..n * 12).map(|i| (((i + salt) * 7919 % 101) as f32 - 50.0) / 29.0).collect();
    let labels = values
        .chunks_exact(12)
        .map(|row| {
            u32::from(row[..6].iter().sum::<f32>() > 0.0) * 2 + u32::from(row[6..].iter().sum::<f32>() > 0.0)
        })
        .collect();
    Dataset::new(Tensor::from_vec(&[n, 12], values).unwrap(), labels).unwrap()
}

/// The same MLP on every rank (rank 0's draw is broadcast anyway).
fn mlp() -> Result<Sequential> {
    let rng = &mut StdRng::seed_from_u64(5);
    Ok(Sequential::new()
        .push(Dense::new(12, 32, Init::He, rng)?.with_activation(ActivationKind::Relu))
        .push(Dense::new(32, 16, Init::He, rng)?.with_activation(ActivationKind::Tanh))
        .push(Dense::new(16, 4, Init::Xavier, rng)?))
}

/// An MLP with batch norm (synchronised over `group` when given) and dropout.
fn mlp_bn_dropout(group: Option<Arc<dyn Collective>>) -> Result<Sequential> {
    let rng = &mut StdRng::seed_from_u64(6);
    let norm = BatchNorm::new_1d(32);
    let norm = match group {
        Some(group) => norm.synchronized(group),
        None => norm,
    };
    Ok(Sequential::new()
        .push(Dense::new(12, 32, Init::He, rng)?)
        .push(norm)
        .push(Activation::new(ActivationKind::Relu))
        .push(Dropout::new(0.3, 9)?)
        .push(Dense::new(32, 4, Init::Xavier, rng)?))
}

/// Checks that `parallel` ended with `alone`'s weights within `tolerance` of the largest,
/// and the same bits on every rank.
fn check_weights(
    mpi: &Mpi,
    what: &str,
    alone: &mut dyn Layer,
    parallel: &mut dyn Layer,
    tolerance: f32,
) -> Result<()> {
    let (rank, ranks) = (mpi.rank(), mpi.ranks());
    let (expected, got) = (weights(alone), weights(parallel));
    let scale = expected.iter().fold(0f32, |m, w| m.max(w.abs()));
    let worst = expected.iter().zip(&got).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    println!("rank {rank} of {ranks}, {what}: largest weight difference from one process {worst:.3e} (scale {scale:.3})");
    assert!(
        worst <= tolerance * scale,
        "rank {rank}, {what}: weights differ from one process's by {worst} (scale {scale})"
    );
    // Every rank holds the same bits: the sum over ranks is `ranks` times each rank's.
    let mut summed: Vec<f64> = got.iter().map(|&w| f64::from(w)).collect();
    mpi.sum(&mut summed)?;
    assert!(
        summed.iter().zip(&got).all(|(s, &w)| *s == ranks as f64 * f64::from(w)),
        "rank {rank}: ranks differ"
    );
    Ok(())
}

fn weights(model: &mut dyn Layer) -> Vec<f32> {
    let mut values = Vec::new();
    model.visit_params(&mut |_, param| values.extend_from_slice(param.value.data()));
    values
}

/// Trains `model` for 2 epochs of 5 global batches of 64 (the last epoch's last batch is
/// 64 too), with SGD and momentum, sharded over `group` when given.
fn train(model: &mut dyn Layer, group: Option<Arc<dyn Collective>>) -> Result<History> {
    let (train, dev) = (blobs(320, 0), blobs(40, 1));
    let mut sgd = Sgd::new(SgdConfig { lr: 0.1, momentum: 0.9, ..SgdConfig::default() })?;
    let config = FitConfig {
        epochs: 2,
        batch_size: 64,
        seed: 3,
        data_parallel: group,
        quiet: true,
        ..FitConfig::default()
    };
    fit(model, &mut sgd, &mut SoftmaxCrossEntropy::new(), &train, &dev, &config)
}

fn run(mpi: &Arc<Mpi>) -> Result<()> {
    let (rank, ranks) = (mpi.rank(), mpi.ranks());
    let mut alone = mlp()?;
    let alone_history = train(&mut alone, None)?;
    // Buckets of at least 500 values: the 3 layers (416, 528 and 68 values) in 2 buckets.
    let mut parallel = DataParallel::new(mlp()?, Arc::clone(mpi), 500)?;
    assert_eq!(parallel.buckets(), 2);
    if let Ok(how) = std::env::var("KEEL_MPI_FAIL") {
        if rank + 1 == ranks && ranks > 1 {
            match how.as_str() {
                "panic" => panic!("rank {rank}: a panic injected by KEEL_MPI_FAIL"),
                _ => mpi.abort_on_error(Err::<(), _>(LayerError::State(
                    "an error injected by KEEL_MPI_FAIL".into(),
                ))),
            }
        }
    }
    let group: Arc<dyn Collective> = Arc::clone(mpi) as Arc<dyn Collective>;
    let history = train(&mut parallel, Some(group))?;

    // The same weights as one process on the whole batches: each rank's mean gradient over
    // 32 samples, weighted and summed in f32, differs from the mean over 64 by rounding
    // (about 1e-7 relative); after 10 steps of SGD with momentum the weights differ by at
    // most 1e-6 of the largest (measured on 2 ranks: 7e-8).
    check_weights(mpi, "MLP", &mut alone, &mut parallel, 1e-6)?;
    // The training figures are summed over the ranks: the single process's, up to the
    // weights' rounding.
    for (one, all) in alone_history.epochs.iter().zip(&history.epochs) {
        assert!(
            (one.train.loss - all.train.loss).abs() < 1e-4,
            "train loss {} vs {}",
            one.train.loss,
            all.train.loss
        );
        assert!((one.train.metrics.accuracy - all.train.metrics.accuracy).abs() <= 1.0 / 320.0 + 1e-12);
        assert!((one.dev.loss - all.dev.loss).abs() < 1e-4, "dev loss {} vs {}", one.dev.loss, all.dev.loss);
    }
    // Batch norm synchronised over the ranks and dropout drawing by global row: the same
    // statistics and masks as one process, so the same weights, within the rounding of
    // the statistics' sums taken in parts (measured on 2 ranks: see the line printed).
    let mut alone = mlp_bn_dropout(None)?;
    train(&mut alone, None)?;
    let group: Arc<dyn Collective> = Arc::clone(mpi) as Arc<dyn Collective>;
    let mut parallel = DataParallel::new(mlp_bn_dropout(Some(Arc::clone(&group)))?, Arc::clone(mpi), 500)?;
    train(&mut parallel, Some(group))?;
    check_weights(mpi, "MLP with synchronised batch norm and dropout", &mut alone, &mut parallel, 1e-6)?;
    if rank == 0 {
        println!("data parallel over {ranks} ranks: same weights and figures as one process");
    }
    Ok(())
}

fn main() {
    let mpi = Arc::new(Mpi::init().expect("MPI initialises once"));
    let outcome = run(&mpi);
    mpi.abort_on_error(outcome);
}
