//! `stratified_split`: disjoint index lists covering every sample, each class's share kept
//! within one sample in every part, reproducible from the seed.

use keel_layers::{stratified_split, CsvReader, LayerError, SplitIndices};

/// Checks that the three lists partition `0..n` and that every class's count in each part
/// is within one sample of its exact share; returns the part sizes.
fn check(labels: &[u32], dev_fraction: f64, test_fraction: f64, split: &SplitIndices) -> [usize; 3] {
    let mut all: Vec<usize> = split.train.iter().chain(&split.dev).chain(&split.test).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..labels.len()).collect::<Vec<_>>(), "disjoint and covering every sample");
    let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    for class in 0..classes as u32 {
        let count = labels.iter().filter(|&&l| l == class).count() as f64;
        let in_part = |part: &[usize]| part.iter().filter(|&&i| labels[i] == class).count() as f64;
        let train_fraction = 1.0 - dev_fraction - test_fraction;
        for (part, fraction, name) in [
            (&split.train, train_fraction, "train"),
            (&split.dev, dev_fraction, "dev"),
            (&split.test, test_fraction, "test"),
        ] {
            let share = fraction * count;
            assert!(
                (in_part(part) - share).abs() <= 1.0 + 1e-9,
                "class {class}: {} in {name}, exact share {share}",
                in_part(part)
            );
        }
    }
    [split.train.len(), split.dev.len(), split.test.len()]
}

#[test]
fn classes_keep_their_proportions_in_every_part() {
    // Imbalanced classes of 50, 7, 30, 3 and 1 samples, interleaved.
    let mut labels = Vec::new();
    for (class, count) in [(0u32, 50), (1, 7), (2, 30), (3, 3), (4, 1)] {
        labels.extend(std::iter::repeat_n(class, count));
    }
    labels.rotate_left(17);
    for (dev, test) in [(0.2, 0.2), (0.0, 0.25), (0.15, 0.1), (0.5, 0.5), (0.0, 0.0), (0.0, 1.0)] {
        let split = stratified_split(&labels, dev, test, 7).unwrap();
        let lengths = check(&labels, dev, test, &split);
        let n = labels.len() as f64;
        for (length, fraction) in lengths.into_iter().zip([1.0 - dev - test, dev, test]) {
            assert!((length as f64 - fraction * n).abs() < 1.0, "dev {dev}, test {test}: {lengths:?}");
        }
    }
}

#[test]
fn the_split_is_reproducible_and_mixes_classes() {
    let labels: Vec<u32> = (0..200).map(|i| u32::from(i >= 120)).collect();
    let first = stratified_split(&labels, 0.1, 0.2, 3).unwrap();
    assert_eq!(first, stratified_split(&labels, 0.1, 0.2, 3).unwrap());
    assert_ne!(first, stratified_split(&labels, 0.1, 0.2, 4).unwrap());
    assert_eq!(check(&labels, 0.1, 0.2, &first), [140, 20, 40]);
    // The sorted input does not come out sorted by class.
    let classes: Vec<u32> = first.train.iter().map(|&i| labels[i]).collect();
    assert!(classes.windows(2).filter(|pair| pair[0] != pair[1]).count() > 10);
}

#[test]
fn the_bundled_classes_split_evenly() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/breast_cancer.csv.gz");
    let data = CsvReader::with_header().label(keel_layers::Column::Index(0)).read_classes(path).unwrap();
    let split = stratified_split(&data.dataset.labels, 0.2, 0.2, 42).unwrap();
    assert_eq!(check(&data.dataset.labels, 0.2, 0.2, &split), [341, 114, 114]);
}

#[test]
fn bad_fractions_and_empty_labels() {
    for (dev, test) in [(-0.1, 0.2), (0.6, 0.6), (0.1, f64::NAN)] {
        assert!(matches!(stratified_split(&[0, 1], dev, test, 0), Err(LayerError::Data(_))), "{dev} {test}");
    }
    let empty = stratified_split(&[], 0.2, 0.2, 0).unwrap();
    assert!(empty.train.is_empty() && empty.dev.is_empty() && empty.test.is_empty());
}

#[test]
fn random_classes_and_fractions_keep_every_share_within_one() {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for case in 0..300 {
        let classes = rng.random_range(1..8u32);
        let labels: Vec<u32> = (0..rng.random_range(0..120)).map(|_| rng.random_range(0..classes)).collect();
        let dev = f64::from(rng.random_range(0..=100u32)) / 100.0;
        let test = f64::from(rng.random_range(0..=100u32)) / 100.0 * (1.0 - dev);
        let split = stratified_split(&labels, dev, test, case).unwrap();
        let lengths = check(&labels, dev, test, &split);
        let n = labels.len() as f64;
        for (length, fraction) in lengths.into_iter().zip([1.0 - dev - test, dev, test]) {
            assert!((length as f64 - fraction * n).abs() < 1.0 + 1e-9, "case {case}: {lengths:?}");
        }
    }
}
