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
/// spread as the whole set is: of the `n_c` samples of class `c`, each part gets its exact
/// share `fraction·n_c` rounded down or up (so within one sample of it), and each part's
/// total is its exact share `fraction·n` rounded down or up, where train's fraction is
/// `1 - dev_fraction - test_fraction`. The parts' totals are rounded by largest remainder
/// (ties to train, then dev), so they agree with
/// [`train_dev_test_split`](super::train_dev_test_split)'s except when both dev and test
/// fall half-way. Which samples of a class go where is drawn from a generator seeded with
/// `seed`.
///
/// # Shapes
/// `labels`: one class index per sample, `n` of them; the three index lists hold `n`
/// indices together.
///
/// # Errors
/// A fraction outside [0, 1], or fractions summing past 1.
///
/// ```
/// use keel_layers::{stratified_split, Dataset, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// // 8 samples of class 0, then 4 of class 1.
/// let labels: Vec<u32> = [0; 8].into_iter().chain([1; 4]).collect();
/// let split = stratified_split(&labels, 0.25, 0.25, 0)?;
/// assert_eq!((split.train.len(), split.dev.len(), split.test.len()), (6, 3, 3));
/// for part in [&split.train, &split.dev, &split.test] {
///     let ones = part.iter().filter(|&&i| labels[i] == 1).count();
///     assert_eq!(3 * ones, part.len()); // a third of class 1 in each part
/// }
/// let data = Dataset::new(Tensor::zeros(&[12, 2]), labels)?;
/// assert_eq!(data.select(&split.dev)?.len(), 3);
/// # Ok(())
/// # }
/// ```
pub fn stratified_split(
    labels: &[u32],
    dev_fraction: f64,
    test_fraction: f64,
    seed: u64,
) -> Result<SplitIndices> {
    check_fractions(dev_fraction, test_fraction)?;
    let fractions = [(1.0 - dev_fraction - test_fraction).max(0.0), dev_fraction, test_fraction];
    let classes = labels.iter().max().map_or(0, |&max| max as usize + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (sample, &label) in labels.iter().enumerate() {
        members[label as usize].push(sample);
    }
    let counts: Vec<usize> = members.iter().map(Vec::len).collect();

    let mut rng = StdRng::seed_from_u64(seed);
    let mut split = SplitIndices { train: Vec::new(), dev: Vec::new(), test: Vec::new() };
    for (mut samples, [train, dev, _]) in members.into_iter().zip(apportion(&counts, fractions)) {
        samples.shuffle(&mut rng);
        split.train.extend_from_slice(&samples[..train]);
        split.dev.extend_from_slice(&samples[train..train + dev]);
        split.test.extend_from_slice(&samples[train + dev..]);
    }
    for part in [&mut split.train, &mut split.dev, &mut split.test] {
        part.shuffle(&mut rng);
    }
    Ok(split)
}

/// The exact shares `fraction·count` of `count` for each fraction (summing to 1), each
/// rounded down, and the remainders: `count` minus the rounded-down shares is the number of
/// shares to round up.
fn floors(count: usize, fractions: [f64; 3]) -> ([usize; 3], [f64; 3]) {
    let shares = fractions.map(|fraction| fraction * count as f64);
    (shares.map(|share| share.floor() as usize), shares.map(|share| share - share.floor()))
}

/// Rounds the `(class, part)` table of exact shares `fractions[part]·counts[class]` to whole
/// samples, every entry down or up, so that each class's row sums to its count and each
/// part's column to its total share rounded down or up (largest remainder).
///
/// Rounding down leaves `supply[c]` samples of class `c` (at most 2: fewer than 3 parts'
/// remainders) and `demand[p]` places in part `p` to fill, one per entry at most. Ryser's
/// construction fills each part's places from the classes with the most samples left (then
/// the largest remainder, then the lower class), the parts in decreasing demand; it always
/// succeeds, because a part's demand never exceeds the number of classes with a non-zero
/// remainder in it.
fn apportion(counts: &[usize], fractions: [f64; 3]) -> Vec<[usize; 3]> {
    let (mut totals, total_remainders) = floors(counts.iter().sum(), fractions);
    let missing = counts.iter().sum::<usize>() - totals.iter().sum::<usize>();
    let mut by_remainder = [0, 1, 2];
    by_remainder.sort_by(|&a, &b| total_remainders[b].total_cmp(&total_remainders[a]));
    for part in by_remainder.into_iter().take(missing) {
        totals[part] += 1;
    }

    let rounded: Vec<([usize; 3], [f64; 3])> = counts.iter().map(|&count| floors(count, fractions)).collect();
    let mut table: Vec<[usize; 3]> = rounded.iter().map(|(down, _)| *down).collect();
    let mut supply: Vec<usize> =
        counts.iter().zip(&table).map(|(count, down)| count - down.iter().sum::<usize>()).collect();
    let mut demand =
        [0, 1, 2].map(|part| totals[part].saturating_sub(table.iter().map(|row| row[part]).sum()));
    let mut parts = [0, 1, 2];
    parts.sort_by_key(|&part| std::cmp::Reverse(demand[part]));
    for part in parts {
        let mut classes: Vec<usize> = (0..counts.len()).filter(|&class| supply[class] > 0).collect();
        classes.sort_by(|&a, &b| {
            supply[b].cmp(&supply[a]).then_with(|| rounded[b].1[part].total_cmp(&rounded[a].1[part]))
        });
        for class in classes.into_iter().take(demand[part]) {
            table[class][part] += 1;
            supply[class] -= 1;
            demand[part] -= 1;
        }
    }
    // Rounding errors in the shares could leave a sample unplaced; it goes to train so that
    // every class is still split whole.
    for (row, left) in table.iter_mut().zip(supply) {
        row[0] += left;
    }
    table
}
