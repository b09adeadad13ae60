//! Training throughput of LeNet-5 (global batches of 64) and the MLP 784-256-128-10
//! (global batches of 128), Adam, on MNIST 5k: one process alone, or data-parallel over the
//! ranks `mpirun` starts, each rank taking its shard of every global batch.
//!
//! ```sh
//! cargo build --release --features mpi --example mpi_throughput
//! RAYON_NUM_THREADS=1 target/release/examples/mpi_throughput            # 1 process x 1 thread
//! RAYON_NUM_THREADS=2 target/release/examples/mpi_throughput            # 1 process x 2 threads
//! RAYON_NUM_THREADS=1 mpirun -np 2 target/release/examples/mpi_throughput  # 2 ranks x 1 thread
//! ```
//!
//! `benches/peers/mpi_throughput.sh` runs the three in interleaved rounds. Rank 0 prints,
//! per model, the samples per second of the whole group over warm steps, and, with several
//! ranks, the values summed per step and the share of the step spent waiting for the sums
//! after the backward.

use std::sync::Arc;
use std::time::Instant;

use keel::layers::distributed::{Collective, DataParallel, Mpi, DEFAULT_BUCKET_VALUES};
use keel::layers::{
    lenet5, zero_grad, ActivationKind, Adam, AdamConfig, Batches, Dataset, Dense, Init, Layer, LayerError,
    Loss, Mode, Optimizer, Result, SeedableRng, Sequential, SoftmaxCrossEntropy, StdRng,
};

// Only the main job's data is used here.
#[allow(dead_code)]
#[path = "common/main_job.rs"]
mod main_job;

/// Warm-up steps, then timed steps, per model.
const WARM: usize = 20;
const TIMED: usize = 300;

fn main() {
    let mpi = Arc::new(Mpi::init().expect("MPI initialises once"));
    let outcome = run(&mpi);
    mpi.abort_on_error(outcome);
}

fn mlp() -> Result<Sequential> {
    let rng = &mut StdRng::seed_from_u64(3);
    Ok(Sequential::new()
        .push(Dense::new(784, 256, Init::He, rng)?.with_activation(ActivationKind::Relu))
        .push(Dense::new(256, 128, Init::He, rng)?.with_activation(ActivationKind::Relu))
        .push(Dense::new(128, 10, Init::Xavier, rng)?))
}

fn run(mpi: &Arc<Mpi>) -> Result<()> {
    let (images, _) = main_job::data()?;
    let flat = Dataset::new(images.features.clone().reshape(&[images.len(), 784])?, images.labels.clone())?;
    let lenet = lenet5(&mut StdRng::seed_from_u64(7))?;
    measure(mpi, "LeNet-5", lenet, &images, 64)?;
    measure(mpi, "MLP 784-256-128-10", mlp()?, &flat, 128)
}

/// Times `TIMED` steps of `model` on global batches of `batch` from `data` (after `WARM`),
/// data-parallel over the ranks when there are several, and prints the figures on rank 0.
fn measure(mpi: &Arc<Mpi>, name: &str, model: Sequential, data: &Dataset, batch: usize) -> Result<()> {
    let (rank, ranks) = (mpi.rank(), mpi.ranks());
    let (seconds, communication) = if ranks > 1 {
        let mut parallel = DataParallel::new(model, Arc::clone(mpi), DEFAULT_BUCKET_VALUES)?;
        let seconds = time_steps(mpi, &mut parallel, data, batch)?;
        let waited = parallel.waited().as_secs_f64() * TIMED as f64 / (TIMED + WARM) as f64;
        (seconds, Some((parallel.values_per_step(), waited)))
    } else {
        let mut alone = model;
        (time_steps(mpi, &mut alone, data, batch)?, None)
    };
    if rank == 0 {
        let rate = (TIMED * batch) as f64 / seconds;
        let threads = rayon::current_num_threads();
        let per_step = 1e3 * seconds / TIMED as f64;
        print!("{name}: {ranks} rank(s) x {threads} thread(s): {rate:.0} samples/s ({per_step:.3} ms/step)");
        if let Some((values, waited)) = communication {
            let share = 100.0 * waited / seconds;
            print!(
                "; {values} values ({} KiB) summed per step, waiting {share:.1}% of the time",
                values * 4 / 1024
            );
        }
        println!();
    }
    Ok(())
}

/// The seconds of `TIMED` training steps of `model` (Adam, softmax cross-entropy) on this
/// rank's shards of global batches of `batch`, after `WARM` steps.
fn time_steps(mpi: &Mpi, model: &mut dyn Layer, data: &Dataset, batch: usize) -> Result<f64> {
    model.set_input_grad(false);
    let mut adam = Adam::new(AdamConfig::default())?;
    let mut loss = SoftmaxCrossEntropy::new();
    let mut batches = Batches::shuffled(data, batch, 1)?.drop_last(true).shard(mpi.rank(), mpi.ranks())?;
    let (per_epoch, mut taken) = (batches.batches_per_epoch(), 0);
    let mut step = |model: &mut dyn Layer| -> Result<()> {
        if taken == per_epoch {
            batches.start_epoch();
            taken = 0;
        }
        taken += 1;
        let (x, y) =
            batches.next_batch().ok_or_else(|| LayerError::Data("no batch left in the epoch".into()))?;
        zero_grad(model);
        model.forward(x, Mode::Train)?;
        loss.forward(model.output(), y)?;
        model.backward(x, loss.backward(y)?)?;
        adam.step(model)
    };
    for _ in 0..WARM {
        step(model)?;
    }
    let mut ready = [0.0];
    mpi.sum(&mut ready)?; // every rank starts the clock together
    let start = Instant::now();
    for _ in 0..TIMED {
        step(model)?;
    }
    Ok(start.elapsed().as_secs_f64())
}
