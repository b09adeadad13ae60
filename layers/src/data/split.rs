//! A seeded train/dev/test split of a [`Dataset`] (not stratified: see
//! [`stratified_split`](super::stratified_split)).

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::{Dataset, Labels};
use crate::error::{LayerError, Result};

/// Shuffles `data` with a generator seeded by `seed` and splits it into (train, dev, test)
/// with `round(dev_fraction·n)` dev and `round(test_fraction·n)` test samples, the rest
/// for training. Errors if a fraction is outside [0, 1], they sum past 1, or the features
/// do not have one row per label.
///
/// ```
/// use keel_layers::{train_dev_test_split, Dataset, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let features = Tensor::from_vec(&[10, 1], (0..10).map(|v| v as f32).collect())?;
/// let data = Dataset::new(features, (0..10).collect::<Vec<u32>>())?;
/// let (train, dev, test) = train_dev_test_split(&data, 0.2, 0.1, 42)?;
/// assert_eq!((train.len(), dev.len(), test.len()), (7, 2, 1));
/// let mut all = [train.labels, dev.labels, test.labels].concat();
/// all.sort();
/// assert_eq!(all, (0..10).collect::<Vec<u32>>()); // each sample in exactly one part
/// # Ok(())
/// # }
/// ```
pub fn train_dev_test_split<L: Labels>(
    data: &Dataset<L>,
    dev_fraction: f64,
    test_fraction: f64,
    seed: u64,
) -> Result<(Dataset<L>, Dataset<L>, Dataset<L>)> {
    check_fractions(dev_fraction, test_fraction)?;
    data.check_rows("train_dev_test_split")?;
    let n = data.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    let dev = ((dev_fraction * n as f64).round() as usize).min(n);
    let test = ((test_fraction * n as f64).round() as usize).min(n - dev);
    let (dev_indices, rest) = order.split_at(dev);
    let (test_indices, train_indices) = rest.split_at(test);
    Ok((data.gather(train_indices), data.gather(dev_indices), data.gather(test_indices)))
}

/// Errors unless both fractions are in [0, 1] and sum to at most 1.
pub(super) fn check_fractions(dev_fraction: f64, test_fraction: f64) -> Result<()> {
    let valid = |f: f64| (0.0..=1.0).contains(&f);
    if !valid(dev_fraction) || !valid(test_fraction) || dev_fraction + test_fraction > 1.0 {
        return Err(LayerError::Data(format!(
            "split fractions dev {dev_fraction} and test {test_fraction} must be in [0, 1] and sum to at most 1"
        )));
    }
    Ok(())
}
