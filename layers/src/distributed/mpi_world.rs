//! [`Mpi`]: the MPI world of a program started by `mpirun`, as a [`Collective`].

use std::sync::Mutex;

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives};
use mpi::Threading;

use super::Collective;
use crate::error::{LayerError, Result};

/// The processes `mpirun` started (MPI's world communicator), initialised once per program.
///
/// Only the thread that called [`Mpi::init`] talks to MPI (MPI's "funneled" level): the
/// kernels' rayon threads compute, the training loop communicates. A failure anywhere ends
/// the whole job rather than leaving the other ranks waiting: a panic on any thread aborts
/// every rank (the hook that `init` installs), and [`Mpi::abort_on_error`] does the same
/// for an error a program returns. A rank killed from outside is detected by `mpirun`,
/// which ends the others.
///
/// The example does not run as a doc test: it needs the processes of `mpirun -np 2`.
///
/// ```no_run
/// use keel_layers::distributed::{Collective, Mpi};
///
/// let mpi = Mpi::init().expect("MPI initialises once per process");
/// // Each rank adds its rank + 1: with 2 ranks, both get 3.
/// let mut values = [mpi.rank() as f64 + 1.0];
/// let outcome = mpi.sum(&mut values);
/// mpi.abort_on_error(outcome); // an error on one rank ends them all
/// assert_eq!(values[0], (1..=mpi.ranks()).sum::<usize>() as f64);
/// ```
pub struct Mpi {
    universe: Universe,
    rank: usize,
    ranks: usize,
    /// The receive buffer of [`Collective::sum`], kept between calls.
    sums: Mutex<Vec<f64>>,
}

impl Mpi {
    /// Initialises MPI and installs the abort-on-panic hook; errors
    /// ([`LayerError::State`]) if MPI was initialised before in this process or gives less
    /// than the funneled threading level.
    pub fn init() -> Result<Self> {
        let (universe, threading) = mpi::initialize_with_threading(Threading::Funneled)
            .ok_or_else(|| LayerError::State("mpi: already initialised in this process".into()))?;
        if threading < Threading::Funneled {
            return Err(LayerError::State(format!(
                "mpi: the library gives threading {threading:?}, keel needs Funneled"
            )));
        }
        let world = universe.world();
        let (rank, ranks) = (world.rank() as usize, world.size() as usize);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            eprintln!("rank {rank}: panicked; aborting every rank");
            SimpleCommunicator::world().abort(101);
        }));
        Ok(Mpi { universe, rank, ranks, sums: Mutex::new(Vec::new()) })
    }

    /// The world communicator.
    pub(crate) fn world(&self) -> SimpleCommunicator {
        self.universe.world()
    }

    /// The value of `result`, or, for an error, a message on standard error naming this
    /// rank and the end of every rank's process (`MPI_Abort`, exit code 1): a rank that
    /// stops alone would leave the others waiting in their next collective call.
    pub fn abort_on_error<T>(&self, result: Result<T>) -> T {
        match result {
            Ok(value) => value,
            Err(error) => {
                eprintln!("rank {}: {error}; aborting every rank", self.rank);
                self.world().abort(1)
            }
        }
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }

    fn ranks(&self) -> usize {
        self.ranks
    }

    fn sum(&self, values: &mut [f64]) -> Result<()> {
        let mut sums =
            self.sums.lock().map_err(|_| LayerError::State("mpi: a sum panicked before".into()))?;
        sums.clear();
        sums.resize(values.len(), 0.0);
        self.world().all_reduce_into(&values[..], &mut sums[..], SystemOperation::sum());
        values.copy_from_slice(&sums);
        Ok(())
    }
}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mpi {{ rank: {}, ranks: {} }}", self.rank, self.ranks)
    }
}
