//! [`Collective`]: the processes that train one model together, as the training loop, the
//! batch loader and the layers see them (no MPI here; `distributed` has the MPI world).

use std::ops::Range;

use crate::error::Result;

/// The processes that train one model together: what [`fit`](crate::fit) needs from them.
pub trait Collective: Send + Sync + std::fmt::Debug {
    /// This process's rank, in `0..ranks()`.
    fn rank(&self) -> usize;

    /// The number of processes.
    fn ranks(&self) -> usize;

    /// Replaces `values` on every rank with their element-wise sum over all ranks; every
    /// rank calls it with as many values, at the same point of the program.
    fn sum(&self, values: &mut [f64]) -> Result<()>;
}

/// The rows of a global batch of `rows` that `rank` of `ranks` takes: a contiguous part, the
/// parts differing by at most one row and covering the batch in rank order.
///
/// ```
/// use keel_layers::distributed::shard_rows;
/// let parts: Vec<_> = (0..3).map(|rank| shard_rows(10, rank, 3)).collect();
/// assert_eq!(parts, [0..3, 3..6, 6..10]);
/// ```
pub fn shard_rows(rows: usize, rank: usize, ranks: usize) -> Range<usize> {
    (rank * rows / ranks)..((rank + 1) * rows / ranks)
}
