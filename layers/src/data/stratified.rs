//! A seeded train/dev/test split that keeps each class's share in every part
//! ([`stratified_split`]), returned as sample indices.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::split::check_fractions;
use crate::error::Result;

/// The sample indices of a train/dev/test split: disjoint, together every index once, each
/// list in a seeded random order (classes mixed). [`Dataset::select`](super::Dataset::select)
/// turns a list into a data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitIndices {
    /// The training samples.
    pub train: Vec<usize>,
    /// The dev (validation) samples.
    pub dev: Vec<usize>,
    /// The test samples.
    pub test: Vec<usize>,
}

/// Splits the samples of class `labels` into train, dev and test so that each class is
/// spread as the whole set is: of the `n_c` samples of class `c`, test gets
/// `⌊test_fraction·n_c⌋` or one more and dev `⌊dev_fraction·n_c⌋` or one more (within one
/// sample of the exact share), the rest train; the extra samples go to the classes with the
/// largest remainders, so that test holds `round(test_fraction·n)` samples and dev
/// `round(dev_fraction·n)` overall, as [`train_dev_test_split`](super::train_dev_test_split)
/// gives. Which samples of a class go where is drawn from a generator seeded with `seed`.
///
/// # Shapes
/// `labels`: one class index per sample, `n` of them; the three index lists hold `n`
/// indices together.
///
/// # Errors
/// A fraction outside [0, 1], or fractions summing past 1.
pub fn stratified_split(
    labels: &[u32],
    dev_fraction: f64,
    test_fraction: f64,
    seed: u64,
) -> Result<SplitIndices> {
    check_fractions(dev_fraction, test_fraction)?;
    let classes = labels.iter().max().map_or(0, |&max| max as usize + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (sample, &label) in labels.iter().enumerate() {
        members[label as usize].push(sample);
    }
    let counts: Vec<usize> = members.iter().map(Vec::len).collect();
    let test = apportion(&counts, test_fraction, &counts);
    let room: Vec<usize> = counts.iter().zip(&test).map(|(count, test)| count - test).collect();
    let dev = apportion(&counts, dev_fraction, &room);

    let mut rng = StdRng::seed_from_u64(seed);
    let mut split = SplitIndices { train: Vec::new(), dev: Vec::new(), test: Vec::new() };
    for ((mut samples, test), dev) in members.into_iter().zip(test).zip(dev) {
        samples.shuffle(&mut rng);
        split.test.extend_from_slice(&samples[..test]);
        split.dev.extend_from_slice(&samples[test..test + dev]);
        split.train.extend_from_slice(&samples[test + dev..]);
    }
    for part in [&mut split.train, &mut split.dev, &mut split.test] {
        part.shuffle(&mut rng);
    }
    Ok(split)
}

/// How many samples of each class (of `counts[c]` samples) a part holding `fraction` of
/// them takes, at most `room[c]`: first `⌊fraction·counts[c]⌋` each, then one more each to
/// the classes with the largest remainders (ties to the lower class) until the part holds
/// `round(fraction·Σcounts)` or no class has room.
fn apportion(counts: &[usize], fraction: f64, room: &[usize]) -> Vec<usize> {
    let total: usize = counts.iter().sum();
    let target = (fraction * total as f64).round() as usize;
    let shares: Vec<f64> = counts.iter().map(|&count| fraction * count as f64).collect();
    let mut taken: Vec<usize> =
        shares.iter().zip(room).map(|(&share, &room)| (share.floor() as usize).min(room)).collect();
    let mut by_remainder: Vec<usize> = (0..counts.len()).collect();
    by_remainder
        .sort_by(|&a, &b| (shares[b] - shares[b].floor()).total_cmp(&(shares[a] - shares[a].floor())));
    let mut missing = target.saturating_sub(taken.iter().sum());
    for class in by_remainder {
        if missing == 0 {
            break;
        }
        if taken[class] < room[class] && counts[class] > 0 {
            taken[class] += 1;
            missing -= 1;
        }
    }
    taken
}
