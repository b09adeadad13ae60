//! Mini-batches over a [`Dataset`], shuffled from a seed or in order, optionally augmented.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use std::ops::Range;

use super::{Augment, Augmenter, Dataset, Labels};
use crate::collective::shard_rows;
use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// Mini-batches of a data set, copied into two tensors the loader owns and reuses: once the
/// first full batch has been made, later batches allocate nothing.
///
/// A sample is a row of `features` (shape `(samples, ...)`: any trailing shape, e.g. NCHW
/// images) and its label; a batch has shape `(batch, ...)` and the last one of an epoch may
/// be smaller.
/// A shuffling loader draws a new order at each [`Batches::start_epoch`] from its seeded
/// generator, so the sequence of epochs is reproducible from the seed.
/// An augmenting loader ([`Batches::augment`]) transforms each image as it copies it.
///
/// ```
/// use keel_layers::{Batches, Dataset, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let data = Dataset::new(Tensor::from_vec(&[5, 1], vec![0.0, 1.0, 2.0, 3.0, 4.0])?, vec![0, 1, 2, 3, 4])?;
/// let mut batches = Batches::sequential(&data, 2)?;
/// let mut sizes = Vec::new();
/// while let Some((x, y)) = batches.next_batch() {
///     assert_eq!(x.shape(), &[y.len(), 1]);
///     sizes.push(y.len());
/// }
/// assert_eq!(sizes, [2, 2, 1]);
/// // Shuffled: every sample once per epoch, in a new order each epoch.
/// let mut shuffled = Batches::shuffled(&data, 2, 7)?.drop_last(true);
/// assert_eq!(shuffled.batches_per_epoch(), 2);
/// let first = shuffled.order().to_vec();
/// let mut sorted = first.clone();
/// sorted.sort();
/// assert_eq!(sorted, [0, 1, 2, 3, 4]);
/// shuffled.start_epoch();
/// assert_ne!(shuffled.order(), &first[..]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Batches<'a, L = Vec<u32>> {
    data: &'a Dataset<L>,
    batch_size: usize,
    rng: Option<StdRng>,
    order: Vec<usize>,
    /// The positions in `order` of the last batch (this rank's part of it).
    batch: Range<usize>,
    /// Where the next global batch starts in `order`.
    cursor: usize,
    drop_last: bool,
    /// `(rank, ranks)`: the part of every global batch this loader gives.
    shard: (usize, usize),
    epoch: u64,
    augmenter: Option<Augmenter>,
    features: Tensor,
    labels: L,
}

impl<'a, L: Labels> Batches<'a, L> {
    /// A loader that visits the samples in a new random order each epoch, drawn from a
    /// generator seeded with `seed`; errors if `batch_size` is 0.
    pub fn shuffled(data: &'a Dataset<L>, batch_size: usize, seed: u64) -> Result<Self> {
        Self::new(data, batch_size, Some(StdRng::seed_from_u64(seed)))
    }

    /// A loader that visits the samples in order (evaluation); errors if `batch_size` is 0.
    pub fn sequential(data: &'a Dataset<L>, batch_size: usize) -> Result<Self> {
        Self::new(data, batch_size, None)
    }

    fn new(data: &'a Dataset<L>, batch_size: usize, rng: Option<StdRng>) -> Result<Self> {
        if batch_size == 0 {
            return Err(LayerError::Argument {
                owner: "batches".into(),
                what: "batch_size".into(),
                expected: "at least 1".into(),
                actual: "0".into(),
            });
        }
        data.check_rows("batches")?;
        let mut loader = Batches {
            data,
            batch_size,
            rng,
            order: (0..data.len()).collect(),
            batch: 0..0,
            cursor: 0,
            drop_last: false,
            shard: (0, 1),
            epoch: 0,
            augmenter: None,
            features: Tensor::default(),
            labels: L::default(),
        };
        loader.shuffle();
        Ok(loader)
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the data set has no samples (then there are no batches).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// With `drop`, each epoch ends before a last batch smaller than the batch size
    /// (PyTorch's `DataLoader(drop_last=True)`): a model with batch norm in training mode
    /// cannot normalise a batch of one sample. The samples left out change with each
    /// shuffled epoch.
    pub fn drop_last(mut self, drop: bool) -> Self {
        self.drop_last = drop;
        self
    }

    /// Augments every batch: each image is transformed as `augment` draws for (its seed,
    /// the epoch, the sample's index in the data set), so the bits do not depend on the
    /// batch size, the order or the thread count (see [`augment`](super::augment)). Attach
    /// it to the training loader only: evaluation reads the images as they are.
    ///
    /// Errors if the samples are not images `(C, H, W)` (features `(samples, C, H, W)`,
    /// e.g. after [`Dataset::with_sample_shape`]) or a parameter is out of range
    /// ([`Augment::validate`]).
    pub fn augment(mut self, augment: Augment) -> Result<Self> {
        self.augmenter = Some(Augmenter::new(augment, &self.data.features.shape()[1..])?);
        Ok(self)
    }

    /// The epoch, counted from 0 by [`Batches::start_epoch`] (what an augmenter draws with).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Gives only `rank`'s part of every batch, for data-parallel training over `ranks`
    /// processes: every rank draws the same order from the same seed, so each global batch
    /// of `batch_size` samples is split into contiguous parts in rank order, differing by at
    /// most one sample ([`shard_rows`]). A last global batch smaller than `ranks` is left
    /// out on every rank, so that no rank runs a step the others do not.
    ///
    /// Errors if `rank >= ranks` or the batch size is smaller than `ranks`.
    pub fn shard(mut self, rank: usize, ranks: usize) -> Result<Self> {
        if rank >= ranks || self.batch_size < ranks {
            return Err(LayerError::Argument {
                owner: "batches".into(),
                what: "(rank, ranks)".into(),
                expected: format!("rank < ranks <= the batch size {}", self.batch_size),
                actual: format!("({rank}, {ranks})"),
            });
        }
        self.shard = (rank, ranks);
        Ok(self)
    }

    /// The number of batches per epoch: `ceil(samples / batch_size)`, or
    /// `floor(samples / batch_size)` with [`Batches::drop_last`]; with a
    /// [`Batches::shard`], a last batch smaller than the number of ranks does not count.
    pub fn batches_per_epoch(&self) -> usize {
        let (full, rest) = (self.len() / self.batch_size, self.len() % self.batch_size);
        full + usize::from(!self.drop_last && rest > 0 && rest >= self.shard.1)
    }

    /// The sample indices of the current epoch, in visiting order.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// The data set's indices of the samples in the last batch [`Batches::next_batch`]
    /// returned, in batch order (empty before the epoch's first batch): row `i` of the batch
    /// is sample `batch_indices()[i]`.
    pub fn batch_indices(&self) -> &[usize] {
        &self.order[self.batch.clone()]
    }

    /// Where the next batch starts in its global batch: 0 without [`Batches::shard`], this
    /// rank's first row otherwise ([`Layer::set_batch_offset`](crate::Layer::set_batch_offset)).
    pub fn next_batch_offset(&self) -> usize {
        let rows = (self.cursor + self.batch_size).min(self.order.len()).saturating_sub(self.cursor);
        let (rank, ranks) = self.shard;
        shard_rows(rows, rank, ranks).start
    }

    /// Starts an epoch: rewinds, counts the epoch and, for a shuffling loader, draws a new
    /// order (a fresh loader has already started its first epoch, epoch 0).
    pub fn start_epoch(&mut self) {
        self.epoch += 1;
        self.shuffle();
    }

    /// Rewinds and, for a shuffling loader, draws a new order.
    fn shuffle(&mut self) {
        self.batch = 0..0;
        self.cursor = 0;
        if let Some(rng) = &mut self.rng {
            self.order.shuffle(rng);
        }
    }

    /// The next batch of the epoch as (features `(batch, ...)`, labels of `batch` samples),
    /// or `None` once every sample has been visited. Both are overwritten by the next call.
    pub fn next_batch(&mut self) -> Option<(&Tensor, &L::Batch)> {
        let end = (self.cursor + self.batch_size).min(self.order.len());
        let rows = end.saturating_sub(self.cursor);
        let (rank, ranks) = self.shard;
        if rows == 0 || rows < ranks || (self.drop_last && rows < self.batch_size) {
            return None;
        }
        let part = shard_rows(rows, rank, ranks);
        self.batch = self.cursor + part.start..self.cursor + part.end;
        self.cursor = end;
        let indices = &self.order[self.batch.clone()];
        match &mut self.augmenter {
            Some(augmenter) => augmenter.gather(&self.data.features, indices, self.epoch, &mut self.features),
            None => self.data.features.gather_rows(indices, &mut self.features),
        }
        self.data.labels.gather(indices, &mut self.labels);
        Some((&self.features, self.labels.as_batch()))
    }
}
