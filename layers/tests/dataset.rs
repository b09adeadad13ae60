//! `Dataset`: slicing and selecting keep every trailing dimension of the features, and the
//! pooled normalisation statistics are those of all values together.

use keel_layers::{Dataset, LayerError, Scaler, Tensor, ZeroVariance};

/// `n` samples of `sample_shape`, value `100·sample + position`, labelled by their index.
fn numbered(n: usize, sample_shape: &[usize]) -> Dataset {
    let width: usize = sample_shape.iter().product();
    let mut shape = vec![n];
    shape.extend_from_slice(sample_shape);
    let values = (0..n * width).map(|i| (100 * (i / width) + i % width) as f32).collect();
    Dataset::new(Tensor::from_vec(&shape, values).unwrap(), (0..n as u32).collect()).unwrap()
}

#[test]
fn slicing_image_shaped_features_keeps_the_image_shape_and_values() {
    let data = numbered(4, &[1, 3, 3]);
    let slice = data.slice(1..3).unwrap();
    assert_eq!(slice.features.shape(), [2, 1, 3, 3]);
    let expected: Vec<f32> =
        (0..9).map(|p| (100 + p) as f32).chain((0..9).map(|p| (200 + p) as f32)).collect();
    assert_eq!(slice.features.data(), expected);
    assert_eq!(slice.labels, [1, 2]);
}

#[test]
fn slicing_one_dimensional_features() {
    let data = numbered(5, &[]);
    assert_eq!(data.features.shape(), [5]);
    let slice = data.slice(2..5).unwrap();
    assert_eq!(slice.features.shape(), [3]);
    assert_eq!(slice.features.data(), [200.0, 300.0, 400.0]);
    assert_eq!(data.slice(0..0).unwrap().features.shape(), [0]);
}

#[test]
fn select_takes_samples_in_the_given_order_and_checks_indices() {
    let data = numbered(4, &[2]);
    let picked = data.select(&[3, 0, 3]).unwrap();
    assert_eq!(picked.features.data(), [300.0, 301.0, 0.0, 1.0, 300.0, 301.0]);
    assert_eq!(picked.labels, [3, 0, 3]);
    match data.select(&[1, 4]) {
        Err(LayerError::Data(message)) => {
            assert!(message.contains("sample index 4: expected an index below the 4 samples"), "{message}")
        }
        other => panic!("expected a data error, got {other:?}"),
    }
    assert!(matches!(data.slice(3..5), Err(LayerError::Data(_))));
}

#[test]
fn pooled_statistics_pool_every_value_and_per_feature_ones_do_not() {
    // Two columns on very different scales: 1, 3 and 100, 300.
    let data =
        Dataset::new(Tensor::from_vec(&[2, 2], vec![1.0, 100.0, 3.0, 300.0]).unwrap(), vec![0, 1]).unwrap();
    let (mean, std) = data.pooled_mean_std();
    assert_eq!(mean, 101.0);
    let expected_std = ((100.0f64.powi(2) + 98.0f64.powi(2) + 1.0 + 199.0f64.powi(2)) / 4.0).sqrt();
    assert!((f64::from(std) - expected_std).abs() < 1e-3);
    let scaler = Scaler::standard(&data.features, ZeroVariance::Error).unwrap();
    assert_eq!(scaler.center(), [2.0, 200.0]);
    assert_eq!(scaler.scale(), [1.0, 100.0]);
}
