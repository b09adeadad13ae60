//! [`Dataset`]: features and labels, one row each per sample; the bundled CSV files
//! (`data/digits.csv.gz`, `data/mnist_5k.csv.gz`).

use std::path::Path;

use super::{CsvReader, Labels};
use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// Labelled samples: features `(samples, ...)` (e.g. `(samples, features)` or NCHW images)
/// and a label per sample: `L = Vec<u32>` (the default) holds class indices, `L = Tensor`
/// `(samples, ...)` rows of values (binary or regression targets); see [`Labels`].
///
/// ```
/// use keel_layers::{Dataset, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// // Four samples of two features and their classes.
/// let features = Tensor::from_vec(&[4, 2], vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0])?;
/// let data = Dataset::new(features, vec![0, 1, 1, 0])?;
/// assert_eq!(data.len(), 4);
/// assert_eq!(data.slice(2..4)?.labels, [1, 0]);
/// assert_eq!(data.select(&[3, 0])?.labels, [0, 0]);
/// // Each sample as a 1x1x2 image (NCHW), for a convolution.
/// let images = data.clone().with_sample_shape(&[1, 1, 2])?;
/// assert_eq!(images.features.shape(), &[4, 1, 1, 2]);
/// // Real-valued targets, one row per sample.
/// let targets = Tensor::from_vec(&[4, 1], vec![0.5, 1.5, 2.5, 3.5])?;
/// let regression = Dataset::new(data.features.clone(), targets)?;
/// assert_eq!(regression.len(), 4);
/// assert!(Dataset::new(Tensor::zeros(&[3, 2]), vec![0, 1]).is_err()); // one label per row
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset<L = Vec<u32>> {
    /// `(samples, ...)`, row-major.
    pub features: Tensor,
    /// The label of each sample.
    pub labels: L,
}

impl Dataset {
    /// Reads a CSV file in the layout of the bundled data sets: no header row, numbers
    /// separated by commas, the class index in the last column; gzip-compressed or plain.
    /// Every feature is divided by `scale` (16 for digits, 255 for MNIST, to bring them into
    /// [0, 1]). This is [`CsvReader::headerless`]`().scale(scale).read_class_indices(path)`
    /// without the names; its errors are that reader's (naming the file, the line and the
    /// column): a field that is not a finite number (`NaN` and `inf` included), a ragged
    /// row, a negative or fractional label, an empty file, a `scale` zero or not finite.
    ///
    /// # Shapes
    /// A file of `n` rows of `c` numbers gives features `(n, c - 1)` and `n` labels.
    pub fn from_csv_gz(path: impl AsRef<Path>, scale: f32) -> Result<Dataset> {
        Ok(CsvReader::headerless().scale(scale).read_class_indices(path)?.dataset)
    }
}

impl<L: Labels> Dataset<L> {
    /// A data set of `features` `(samples, ...)` and their `labels`; errors unless there is
    /// one label per row of features.
    pub fn new(features: Tensor, labels: L) -> Result<Self> {
        let data = Dataset { features, labels };
        data.check_rows("dataset")?;
        Ok(data)
    }

    /// Errors unless `features` has one row per label (`what` names the caller).
    pub(crate) fn check_rows(&self, what: &str) -> Result<()> {
        if self.features.shape().first() != Some(&self.len()) {
            return Err(LayerError::Shape {
                layer: what.into(),
                expected: format!("features ({}, ...), one row per label", self.len()),
                actual: self.features.shape().to_vec(),
            });
        }
        Ok(())
    }

    /// Views each sample as `sample_shape` (e.g. `[1, 28, 28]` for MNIST images, so the
    /// features become NCHW); errors if the sizes differ.
    pub fn with_sample_shape(mut self, sample_shape: &[usize]) -> Result<Self> {
        let mut shape = vec![self.len()];
        shape.extend_from_slice(sample_shape);
        self.features = std::mem::take(&mut self.features).reshape(&shape)?;
        Ok(self)
    }

    /// One mean and one standard deviation over all feature values pooled together (as
    /// MNIST's pixels are usually normalised), computed in f64: take them from the training
    /// set, then [`Self::normalize`] every split with them. For a mean and deviation per
    /// feature (per column), see [`Scaler::standard`](super::Scaler::standard).
    pub fn pooled_mean_std(&self) -> (f32, f32) {
        let values = self.features.data();
        let n = values.len().max(1) as f64;
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = values.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
        (mean as f32, var.sqrt() as f32)
    }

    /// `x ← (x - mean)/std` for every feature value, with the scalars of
    /// [`Self::pooled_mean_std`]; a zero `std` is treated as 1.
    pub fn normalize(&mut self, mean: f32, std: f32) {
        let scale = if std > 0.0 { 1.0 / std } else { 1.0 };
        self.features.data_mut().iter_mut().for_each(|v| *v = (*v - mean) * scale);
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.labels.samples()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Samples `range` as a new data set (e.g. a train/test split of a shuffled set); errors
    /// if the range is reversed or past the end.
    ///
    /// # Shapes
    /// Features `(samples, ...)` give `(range.len(), ...)`: every trailing dimension is kept
    /// (`(n,)`, `(n, features)`, NCHW images).
    pub fn slice(&self, range: std::ops::Range<usize>) -> Result<Self> {
        if range.start > range.end || range.end > self.len() {
            return Err(LayerError::Data(format!("samples {range:?} of a set of {}", self.len())));
        }
        self.select(&range.collect::<Vec<_>>())
    }

    /// The samples at `indices`, in that order (repeats allowed), as a new data set: how the
    /// index lists of [`stratified_split`](super::stratified_split) become data sets; errors
    /// if an index is not below [`Self::len`].
    ///
    /// # Shapes
    /// Features `(samples, ...)` give `(indices.len(), ...)`.
    pub fn select(&self, indices: &[usize]) -> Result<Self> {
        if let Some(&index) = indices.iter().find(|&&index| index >= self.len()) {
            return Err(LayerError::Data(format!(
                "sample index {index}: expected an index below the {} samples",
                self.len()
            )));
        }
        self.check_rows("dataset select")?;
        Ok(self.gather(indices))
    }

    /// The samples at `indices` (all below [`Self::len`], features with one row per label),
    /// in that order, as a new data set.
    pub(crate) fn gather(&self, indices: &[usize]) -> Self {
        let mut subset = Dataset { features: Tensor::default(), labels: L::default() };
        self.features.gather_rows(indices, &mut subset.features);
        self.labels.gather(indices, &mut subset.labels);
        subset
    }
}
