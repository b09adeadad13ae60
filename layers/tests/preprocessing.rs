//! Preprocessing fitted on a training set and applied to others: `Scaler` (standardisation,
//! min-max, the zero-variance policy) and `OneHot`, checked by their algebra.

use keel_layers::{LayerError, OneHot, Scaler, Tensor, ZeroVariance};

/// Training features `(5, 3)` whose columns have very different scales and both signs.
fn training() -> Tensor {
    Tensor::from_vec(
        &[5, 3],
        vec![
            1.0, -200.0, 0.001, //
            2.0, 100.0, 0.004, //
            3.0, 50.0, -0.002, //
            4.0, -25.0, 0.003, //
            10.0, 75.0, 0.009,
        ],
    )
    .unwrap()
}

/// The mean and the biased (`1/n`) standard deviation of column `column` of `(n, width)`.
fn column_mean_std(features: &Tensor, column: usize) -> (f64, f64) {
    let width = features.shape()[1];
    let values: Vec<f64> =
        features.data().iter().skip(column).step_by(width).map(|&v| f64::from(v)).collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
    (mean, var.sqrt())
}

fn message<T: std::fmt::Debug>(result: keel_layers::Result<T>) -> String {
    match result {
        Err(LayerError::Data(message)) => message,
        other => panic!("expected a data error, got {other:?}"),
    }
}

#[test]
fn standardised_training_columns_have_mean_0_and_std_1() {
    let mut train = training();
    let scaler = Scaler::standard(&train, ZeroVariance::Error).unwrap();
    for column in 0..3 {
        let (mean, std) = column_mean_std(&training(), column);
        assert!((f64::from(scaler.center()[column]) - mean).abs() < 1e-6 * mean.abs().max(1.0));
        assert!((f64::from(scaler.scale()[column]) - std).abs() < 1e-6 * std);
    }
    scaler.transform(&mut train).unwrap();
    for column in 0..3 {
        let (mean, std) = column_mean_std(&train, column);
        assert!(mean.abs() < 1e-6, "column {column}: mean {mean}");
        assert!((std - 1.0).abs() < 1e-5, "column {column}: std {std}");
    }
}

#[test]
fn dev_features_use_the_training_statistics() {
    let scaler = Scaler::standard(&training(), ZeroVariance::Error).unwrap();
    let (mean, std) = column_mean_std(&training(), 1);
    let mut dev = Tensor::from_vec(&[2, 3], vec![0.0, 0.0, 0.0, 3.0, 1000.0, 0.5]).unwrap();
    scaler.transform(&mut dev).unwrap();
    // Standardised with the training mean and deviation, not dev's own.
    assert!((f64::from(dev.data()[1]) - (0.0 - mean) / std).abs() < 1e-5);
    assert!((f64::from(dev.data()[4]) - (1000.0 - mean) / std).abs() < 1e-5);
    let (dev_mean, _) = column_mean_std(&dev, 1);
    assert!(dev_mean.abs() > 1.0, "dev's own statistics would center it: {dev_mean}");
    // The inverse gives the values back.
    scaler.inverse_transform(&mut dev).unwrap();
    for (value, expected) in dev.data().iter().zip([0.0, 0.0, 0.0, 3.0, 1000.0, 0.5]) {
        assert!((value - expected).abs() < 1e-3 * expected.abs().max(1.0), "{value} vs {expected}");
    }
}

#[test]
fn min_max_maps_the_training_range_onto_0_1() {
    let mut train = training();
    let scaler = Scaler::min_max(&train, ZeroVariance::Error).unwrap();
    assert_eq!(scaler.center(), [1.0, -200.0, -0.002]);
    scaler.transform(&mut train).unwrap();
    let width = 3;
    for column in 0..width {
        let values: Vec<f32> = train.data().iter().skip(column).step_by(width).copied().collect();
        let min = values.iter().copied().fold(f32::INFINITY, f32::min);
        let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        assert!(min.abs() < 1e-6 && (max - 1.0).abs() < 1e-6, "column {column}: [{min}, {max}]");
    }
    // Held-out values outside the training range fall outside [0, 1].
    let mut dev = Tensor::from_vec(&[1, 3], vec![19.0, 100.0, 0.009]).unwrap();
    scaler.transform(&mut dev).unwrap();
    assert!((dev.data()[0] - 2.0).abs() < 1e-6);
}

#[test]
fn a_constant_feature_is_an_error_or_left_unchanged() {
    let constant = Tensor::from_vec(&[3, 2], vec![1.0, 0.1, 2.0, 0.1, 4.0, 0.1]).unwrap();
    for fit in [Scaler::standard, Scaler::min_max] {
        let error = message(fit(&constant, ZeroVariance::Error));
        assert!(error.contains("feature 1 is 0.1 in every training sample"), "{error}");
        let scaler = fit(&constant, ZeroVariance::Unchanged).unwrap();
        assert_eq!((scaler.center()[1], scaler.scale()[1]), (0.0, 1.0));
        let mut dev = Tensor::from_vec(&[2, 2], vec![3.0, 0.1, 5.0, 7.0]).unwrap();
        scaler.transform(&mut dev).unwrap();
        assert_eq!([dev.data()[1], dev.data()[3]], [0.1, 7.0]);
        assert!(dev.data().iter().all(|v| v.is_finite()));
    }
}

#[test]
fn scalers_reject_bad_input() {
    let nan = Tensor::from_vec(&[2, 2], vec![1.0, 2.0, f32::NAN, 3.0]).unwrap();
    assert!(message(Scaler::standard(&nan, ZeroVariance::Error))
        .contains("feature 0 of training sample 1 is NaN: expected finite values"));
    let empty = Tensor::zeros(&[0, 3]);
    assert!(message(Scaler::min_max(&empty, ZeroVariance::Error)).contains("at least one sample"));
    let scaler = Scaler::standard(&training(), ZeroVariance::Error).unwrap();
    let mut narrow = Tensor::zeros(&[2, 2]);
    match scaler.transform(&mut narrow) {
        Err(LayerError::Shape { expected, actual, .. }) => {
            assert!(expected.contains("3 values per sample"), "{expected}");
            assert_eq!(actual, [2, 2]);
        }
        other => panic!("expected a shape error, got {other:?}"),
    }
}

#[test]
fn image_features_are_scaled_per_pixel() {
    // (2, 1, 1, 2): two one-channel 1x2 images; each pixel is a feature.
    let mut images = Tensor::from_vec(&[2, 1, 1, 2], vec![0.0, 10.0, 2.0, 30.0]).unwrap();
    let scaler = Scaler::standard(&images, ZeroVariance::Error).unwrap();
    assert_eq!(scaler.center(), [1.0, 20.0]);
    scaler.transform(&mut images).unwrap();
    assert_eq!(images.shape(), [2, 1, 1, 2]);
    assert_eq!(images.data(), [-1.0, -1.0, 1.0, 1.0]);
}

#[test]
fn one_hot_replaces_each_categorical_column_in_place() {
    // Columns: size, colour code (3 categories), weight, a binary flag.
    let train = Tensor::from_vec(
        &[4, 4],
        vec![1.5, 2.0, 10.0, 1.0, 2.5, 7.0, 20.0, 0.0, 3.5, 2.0, 30.0, 0.0, 4.5, 5.0, 40.0, 1.0],
    )
    .unwrap();
    let one_hot = OneHot::fit(&train, &[3, 1]).unwrap();
    assert_eq!(one_hot.categories(1), Some([2.0, 5.0, 7.0].as_slice()));
    assert_eq!(one_hot.categories(3), Some([0.0, 1.0].as_slice()));
    assert_eq!(one_hot.categories(0), None);
    assert_eq!(one_hot.output_width(), 7);
    let encoded = one_hot.transform(&train).unwrap();
    assert_eq!(encoded.shape(), [4, 7]);
    #[rustfmt::skip]
    let expected = [
        1.5, 1.0, 0.0, 0.0, 10.0, 0.0, 1.0,
        2.5, 0.0, 0.0, 1.0, 20.0, 1.0, 0.0,
        3.5, 1.0, 0.0, 0.0, 30.0, 1.0, 0.0,
        4.5, 0.0, 1.0, 0.0, 40.0, 0.0, 1.0,
    ];
    assert_eq!(encoded.data(), expected);
    // Each sample has exactly one hot indicator per categorical column.
    for row in encoded.data().chunks(7) {
        assert_eq!(row[1] + row[2] + row[3], 1.0);
        assert_eq!(row[5] + row[6], 1.0);
    }
    // Dev is encoded with the training categories.
    let dev = Tensor::from_vec(&[1, 4], vec![9.0, 7.0, 0.5, 0.0]).unwrap();
    assert_eq!(one_hot.transform(&dev).unwrap().data(), [9.0, 0.0, 0.0, 1.0, 0.5, 1.0, 0.0]);
}

#[test]
fn one_hot_rejects_unseen_categories_and_bad_columns() {
    let train = Tensor::from_vec(&[2, 2], vec![1.0, 0.0, 2.0, 1.0]).unwrap();
    let one_hot = OneHot::fit(&train, &[1]).unwrap();
    let dev = Tensor::from_vec(&[2, 2], vec![1.0, 1.0, 5.0, 3.0]).unwrap();
    let error = message(one_hot.transform(&dev));
    assert!(
        error.contains(
            "sample 1, column 1: category 3 was not in the training set: expected one of [0.0, 1.0]"
        ),
        "{error}"
    );
    assert!(matches!(one_hot.transform(&Tensor::zeros(&[2, 3])), Err(LayerError::Shape { .. })));
    assert!(message(OneHot::fit(&train, &[2])).contains("column 2: expected a column below the 2 features"));
    assert!(message(OneHot::fit(&train, &[1, 1])).contains("column 1 is given twice"));
    let nan = Tensor::from_vec(&[2, 2], vec![1.0, f32::NAN, 2.0, 1.0]).unwrap();
    assert!(message(OneHot::fit(&nan, &[1])).contains("column 1 holds NaN"));
    assert!(matches!(OneHot::fit(&Tensor::zeros(&[2, 2, 2]), &[0]), Err(LayerError::Shape { .. })));
}
