//! Data-parallel training across processes: every process (a *rank*) holds the whole model,
//! trains on its shard of each global mini-batch, and the ranks sum their gradients before
//! each identical optimizer step, as PyTorch's `DistributedDataParallel` and Horovod do.
//!
//! The pieces, each usable alone:
//! - [`Collective`]: what the training loop needs from the processes: the rank, the number of
//!   ranks and element-wise sums. [`fit`](crate::fit) takes one in
//!   [`FitConfig::data_parallel`](crate::FitConfig::data_parallel): it shards every global
//!   batch ([`Batches::shard`](crate::Batches::shard)), sums the epoch's training figures
//!   across ranks, runs the callbacks (progress bar, log) on rank 0 only, and stops every
//!   rank when rank 0's callbacks stop.
//! - With the `mpi` feature, `Mpi` (the MPI world, through rsmpi) implements it, and
//!   `DataParallel` wraps a [`Sequential`](crate::Sequential) model: it broadcasts rank 0's
//!   parameters when built, and in each backward sums the gradients across ranks in a few
//!   flat buckets, each started (non-blocking) as soon as the layers it holds are done, so
//!   communication overlaps the backward of earlier layers.
//!
//! Batch norm keeps per-rank statistics by default (PyTorch's default without
//! `SyncBatchNorm`), or takes them over the global batch with
//! [`BatchNorm::synchronized`](crate::BatchNorm::synchronized); dropout draws by position in
//! the global batch ([`Layer::set_batch_offset`](crate::Layer::set_batch_offset), which `fit`
//! sets), so the ranks' masks differ and together are one process's.

#[cfg(feature = "mpi")]
mod data_parallel;
#[cfg(feature = "mpi")]
mod mpi_world;

#[cfg(feature = "mpi")]
pub use data_parallel::{DataParallel, DEFAULT_BUCKET_VALUES};
#[cfg(feature = "mpi")]
pub use mpi_world::Mpi;

pub use crate::collective::{shard_rows, Collective};
