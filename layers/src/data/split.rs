//! A seeded train/dev/test split of a [`Dataset`].

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::Dataset;
use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// The samples at `indices` (all in range), in that order, as a new data set.
fn gather(data: &Dataset, indices: &[usize]) -> Result<Dataset> {
    let width = data.features.len() / data.len().max(1);
    let mut values = Vec::with_capacity(indices.len() * width);
    for &index in indices {
        values.extend_from_slice(&data.features.data()[index * width..(index + 1) * width]);
    }
    let mut shape = data.features.shape().to_vec();
    shape[0] = indices.len();
    Ok(Dataset {
        features: Tensor::from_vec(&shape, values)?,
        labels: indices.iter().map(|&index| data.labels[index]).collect(),
    })
}

/// Shuffles `data` with a generator seeded by `seed` and splits it into (train, dev, test)
/// with `round(dev_fraction·n)` dev and `round(test_fraction·n)` test samples, the rest
/// for training. Errors if a fraction is outside [0, 1], they sum past 1, or the features
/// do not have one row per label.
pub fn train_dev_test_split(
    data: &Dataset,
    dev_fraction: f64,
    test_fraction: f64,
    seed: u64,
) -> Result<(Dataset, Dataset, Dataset)> {
    let valid = |f: f64| (0.0..=1.0).contains(&f);
    if !valid(dev_fraction) || !valid(test_fraction) || dev_fraction + test_fraction > 1.0 {
        return Err(LayerError::Data(format!(
            "split fractions dev {dev_fraction} and test {test_fraction} must be in [0, 1] and sum to at most 1"
        )));
    }
    if data.features.shape().first() != Some(&data.len()) {
        return Err(LayerError::Shape {
            layer: "train_dev_test_split".into(),
            expected: format!("features ({}, ...), one row per label", data.len()),
            actual: data.features.shape().to_vec(),
        });
    }
    let n = data.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    let dev = ((dev_fraction * n as f64).round() as usize).min(n);
    let test = ((test_fraction * n as f64).round() as usize).min(n - dev);
    let (dev_indices, rest) = order.split_at(dev);
    let (test_indices, train_indices) = rest.split_at(test);
    Ok((gather(data, train_indices)?, gather(data, dev_indices)?, gather(data, test_indices)?))
}
