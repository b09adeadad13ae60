//! The main job (LeNet-5 with batch norm and dropout on MNIST 5k, 20 epochs, global batches
//! of 64) trained data-parallel over the ranks `mpirun` starts:
//!
//! ```sh
//! cargo build --release --features mpi --example mpi_lenet5
//! RAYON_NUM_THREADS=1 mpirun -np 2 target/release/examples/mpi_lenet5
//! ```
//!
//! Every rank loads the data and draws the same shuffle; each takes its half of every batch
//! of 64, the gradients are summed across ranks after each backward, and every rank steps
//! the same weights. Rank 0 prints the per-epoch log, the test accuracy and the throughput,
//! and saves the weights. The batch norms are synchronised (statistics over the 64 images of
//! all ranks) and dropout draws by position in the global batch, so the run is the
//! single-process run's (`cargo run --release`) up to the rounding of sums taken in parts.

use std::sync::Arc;
use std::time::Instant;

use keel::layers::distributed::{Collective, DataParallel, Mpi, DEFAULT_BUCKET_VALUES};
use keel::layers::{evaluate, fit, save_safetensors, FitConfig, Layer, Result, SoftmaxCrossEntropy};

#[path = "common/main_job.rs"]
mod main_job;

fn main() {
    let mpi = Arc::new(Mpi::init().expect("MPI initialises once"));
    let outcome = run(&mpi);
    mpi.abort_on_error(outcome);
}

fn run(mpi: &Arc<Mpi>) -> Result<()> {
    let (train, test) = main_job::data()?;
    let group: Arc<dyn Collective> = Arc::clone(mpi) as Arc<dyn Collective>;
    let mut lenet = main_job::model()?;
    lenet.synchronize_batch_norm(&group);
    let mut model = DataParallel::new(lenet, Arc::clone(mpi), DEFAULT_BUCKET_VALUES)?;
    let mut optimizer = main_job::optimizer()?;
    let mut loss = SoftmaxCrossEntropy::new();
    let config = FitConfig { data_parallel: Some(group), ..main_job::fit_config() };
    let leader = mpi.rank() == 0;
    if leader {
        println!(
            "MNIST 5k: {} train / {} test images; LeNet-5 on {} ranks x {} thread(s), {} gradient bucket(s)",
            train.len(),
            test.len(),
            mpi.ranks(),
            rayon::current_num_threads(),
            model.buckets()
        );
    }
    let start = Instant::now();
    let history = fit(&mut model, &mut optimizer, &mut loss, &train, &test, &config)?;
    let seconds = start.elapsed().as_secs_f64();
    let evaluation = evaluate(&mut model, &mut loss, &test, 500)?;
    if leader {
        println!("{}", main_job::summary("test", &evaluation, &history, train.len(), seconds));
        std::fs::create_dir_all("target").map_err(|e| {
            keel::layers::LayerError::Data(format!("cannot create target/ for the outputs: {e}"))
        })?;
        let weights = "target/lenet5_mnist_mpi.safetensors";
        save_safetensors(model.model_mut(), weights)?;
        println!("trained weights: {weights}");
    }
    Ok(())
}
