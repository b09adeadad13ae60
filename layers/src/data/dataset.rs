//! [`Dataset`]: features and labels, one row each per sample; the bundled CSV files
//! (`data/digits.csv.gz`, `data/mnist_5k.csv.gz`).

use std::io::{BufRead, BufReader};
use std::path::Path;

use flate2::read::GzDecoder;

use super::Labels;
use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// Labelled samples: features `(samples, ...)` (e.g. `(samples, features)` or NCHW images)
/// and a label per sample: `L = Vec<u32>` (the default) holds class indices, `L = Tensor`
/// `(samples, ...)` rows of values (binary or regression targets); see [`Labels`].
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset<L = Vec<u32>> {
    /// `(samples, ...)`, row-major.
    pub features: Tensor,
    /// The label of each sample.
    pub labels: L,
}

impl Dataset {
    /// Reads a gzip-compressed CSV file of numbers whose last column is the class label
    /// (the layout of the bundled data sets), dividing every feature by `scale` (16 for
    /// digits, 255 for MNIST, to bring them into [0, 1]). Errors name the file, the line and
    /// what was wrong: a field that is not a finite number (`NaN` and `inf` tokens included,
    /// naming the column), a ragged row, a negative or fractional label, an empty file; and a
    /// `scale` that is zero or not finite.
    pub fn from_csv_gz(path: impl AsRef<Path>, scale: f32) -> Result<Dataset> {
        let path = path.as_ref();
        if !scale.is_finite() || scale == 0.0 {
            return Err(LayerError::Data(format!(
                "{}: scale must be finite and non-zero, got {scale}",
                path.display()
            )));
        }
        let bad = |line: usize, what: String| LayerError::Data(format!("{}:{line}: {what}", path.display()));
        let file =
            std::fs::File::open(path).map_err(|e| LayerError::Data(format!("{}: {e}", path.display())))?;
        let mut values = Vec::new();
        let mut labels = Vec::new();
        let mut width = None;
        for (index, line) in BufReader::new(GzDecoder::new(file)).lines().enumerate() {
            let number = index + 1;
            let line = line.map_err(|e| bad(number, e.to_string()))?;
            if line.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').collect();
            match width {
                None => width = Some(fields.len()),
                Some(w) if w != fields.len() => {
                    return Err(bad(number, format!("expected {w} fields, got {}", fields.len())))
                }
                Some(_) => {}
            }
            let (label, features) = fields.split_last().ok_or_else(|| bad(number, "empty row".into()))?;
            if features.is_empty() {
                return Err(bad(number, "a row needs at least one feature and a label".into()));
            }
            for (column, field) in features.iter().enumerate() {
                let value: f32 =
                    field.trim().parse().ok().filter(|value: &f32| value.is_finite()).ok_or_else(|| {
                        bad(number, format!("column {}: {field:?} is not a finite number", column + 1))
                    })?;
                values.push(value / scale);
            }
            let label: f64 =
                label.trim().parse().map_err(|_| bad(number, format!("label {label:?} is not a number")))?;
            if label < 0.0 || label.fract() != 0.0 || label > f64::from(u32::MAX) {
                return Err(bad(number, format!("label {label} is not a class index")));
            }
            labels.push(label as u32);
        }
        let Some(width) = width else {
            return Err(LayerError::Data(format!("{}: no samples", path.display())));
        };
        let features = Tensor::from_vec(&[labels.len(), width - 1], values)?;
        Ok(Dataset { features, labels })
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

    /// The mean and standard deviation of every feature value together (as MNIST is usually
    /// normalised), computed in f64: take them from the training set, then [`Self::normalize`]
    /// every split with them.
    pub fn feature_mean_std(&self) -> (f32, f32) {
        let values = self.features.data();
        let n = values.len().max(1) as f64;
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = values.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
        (mean as f32, var.sqrt() as f32)
    }

    /// `x ← (x - mean)/std` for every feature value; a zero `std` is treated as 1.
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

    /// Samples `range` as a new data set (e.g. a train/test split of a shuffled set).
    pub fn slice(&self, range: std::ops::Range<usize>) -> Result<Self> {
        if range.start > range.end || range.end > self.len() {
            return Err(LayerError::Data(format!("samples {range:?} of a set of {}", self.len())));
        }
        self.check_rows("dataset slice")?;
        Ok(self.gather(&range.collect::<Vec<_>>()))
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
