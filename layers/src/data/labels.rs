//! What a [`Dataset`](super::Dataset) holds for each sample besides its features: class
//! indices, or rows of values (binary and multi-label targets, regression).

use std::fmt;

use crate::tensor::Tensor;

/// The labels of a data set, one per sample, and what a mini-batch of them hands a loss:
/// - `Vec<u32>`: class indices (softmax cross-entropy), batches of `[u32]`;
/// - [`Tensor`] `(samples, ...)`: rows of values (BCE targets, regression targets),
///   batches of `Tensor` `(batch, ...)`.
pub trait Labels: Clone + Default + fmt::Debug {
    /// A batch as a loss reads it (the loss's [`Loss::Target`](crate::loss::Loss::Target)).
    type Batch: ?Sized;

    /// The number of samples labelled.
    fn samples(&self) -> usize;

    /// Overwrites `batch` with the labels of samples `indices` (all below
    /// [`Self::samples`]), in that order, keeping `batch`'s allocation.
    fn gather(&self, indices: &[usize], batch: &mut Self);

    /// `self` as a batch.
    fn as_batch(&self) -> &Self::Batch;
}

impl Labels for Vec<u32> {
    type Batch = [u32];

    fn samples(&self) -> usize {
        self.len()
    }

    fn gather(&self, indices: &[usize], batch: &mut Self) {
        batch.clear();
        batch.extend(indices.iter().map(|&index| self[index]));
    }

    fn as_batch(&self) -> &[u32] {
        self
    }
}

impl Labels for Tensor {
    type Batch = Tensor;

    /// The first dimension (0 for the empty tensor).
    fn samples(&self) -> usize {
        self.shape().first().copied().unwrap_or(0)
    }

    fn gather(&self, indices: &[usize], batch: &mut Self) {
        self.gather_rows(indices, batch);
    }

    fn as_batch(&self) -> &Tensor {
        self
    }
}
