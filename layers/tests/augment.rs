//! Seeded augmentation of image batches (`Augment`, `Augmenter`, `Batches::augment`): exact
//! identities (identity config, flips, crops, rotations by 0 and 90 degrees, elastic with
//! alpha 0) against direct references, reproducibility (seeds, thread counts, batch sizes),
//! the range of the outputs, labels, `fit`'s hook, and the errors of bad configurations.

use keel_layers::{
    fit, Adam, Augment, Augmenter, Batches, Dataset, Dense, Elastic, FitConfig, Flatten, Init, LayerError,
    Sequential, SoftmaxCrossEntropy, Tensor,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// `n` images `(c, h, w)` of values of both signs in `[-1, 1)`, no two alike.
fn images(n: usize, c: usize, h: usize, w: usize, seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let values = (0..n * c * h * w).map(|_| 2.0 * rng.random::<f32>() - 1.0).collect();
    Tensor::from_vec(&[n, c, h, w], values).unwrap()
}

/// Every sample of `source` (indices `0..n`) augmented by `config` at `epoch`.
fn augment_all(config: &Augment, source: &Tensor, epoch: u64) -> Tensor {
    let mut augmenter = Augmenter::new(config.clone(), &source.shape()[1..]).unwrap();
    let indices: Vec<usize> = (0..source.shape()[0]).collect();
    let mut out = Tensor::default();
    augmenter.apply(source, &indices, epoch, &mut out).unwrap();
    out
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.data().iter().map(|v| v.to_bits()).collect()
}

/// `x[n, c, y, x]` of an NCHW tensor.
fn at(t: &Tensor, n: usize, c: usize, y: usize, x: usize) -> f32 {
    let s = t.shape();
    t.data()[((n * s[1] + c) * s[2] + y) * s[3] + x]
}

/// Sample `n` shifted so that `out[y][x] = in[y + dy][x + dx]`, `fill` outside.
fn shifted(t: &Tensor, n: usize, dy: isize, dx: isize, fill: f32) -> Vec<f32> {
    let s = t.shape();
    let mut out = Vec::new();
    for c in 0..s[1] {
        for y in 0..s[2] as isize {
            for x in 0..s[3] as isize {
                let (yy, xx) = (y + dy, x + dx);
                let inside = yy >= 0 && xx >= 0 && (yy as usize) < s[2] && (xx as usize) < s[3];
                out.push(if inside { at(t, n, c, yy as usize, xx as usize) } else { fill });
            }
        }
    }
    out
}

/// Sample `n` of an NCHW tensor, `(C, H, W)` flat.
fn sample(t: &Tensor, n: usize) -> &[f32] {
    let len: usize = t.shape()[1..].iter().product();
    &t.data()[n * len..(n + 1) * len]
}

/// A configuration that uses every transform.
fn everything(seed: u64) -> Augment {
    Augment {
        flip: 0.5,
        pad: 2,
        rotation: (-15.0, 15.0),
        scale: (0.9, 1.1),
        shear: (-10.0, 10.0),
        translate: (0.1, 0.05),
        elastic: Some(Elastic { alpha: 6.0, sigma: 3.0 }),
        fill: -0.4,
        seed,
    }
}

#[test]
fn identity_config_leaves_images_bitwise_unchanged() {
    let mut source = images(5, 3, 7, 9, 1);
    source.data_mut()[4] = -0.0;
    for config in [
        Augment::default(),
        Augment { rotation: (0.0, 0.0), fill: 3.0, seed: 9, ..Augment::default() },
        Augment { elastic: Some(Elastic { alpha: 0.0, sigma: 4.0 }), fill: -2.0, ..Augment::default() },
    ] {
        let out = augment_all(&config, &source, 3);
        assert_eq!(out.shape(), source.shape());
        assert_eq!(bits(&out), bits(&source), "{config:?}");
    }
}

#[test]
fn flip_matches_a_mirror_and_twice_is_identity() {
    let source = images(4, 2, 5, 6, 2);
    let flip = Augment { flip: 1.0, fill: 9.0, ..Augment::default() };
    let once = augment_all(&flip, &source, 0);
    for n in 0..4 {
        for c in 0..2 {
            for y in 0..5 {
                for x in 0..6 {
                    assert_eq!(at(&once, n, c, y, x).to_bits(), at(&source, n, c, y, 5 - x).to_bits());
                }
            }
        }
    }
    let twice = augment_all(&flip, &once, 1);
    assert_eq!(bits(&twice), bits(&source));
}

#[test]
fn flip_probability_flips_some_samples_and_keeps_others() {
    let source = images(64, 1, 4, 4, 3);
    let out = augment_all(&Augment { flip: 0.5, seed: 4, ..Augment::default() }, &source, 0);
    let flipped = (0..64).filter(|&n| sample(&out, n) != sample(&source, n)).count();
    assert!((16..=48).contains(&flipped), "{flipped} of 64 flipped at p = 0.5");
}

#[test]
fn crop_with_padding_is_a_shift_with_fill() {
    let (pad, fill) = (2, 0.625);
    let source = images(40, 2, 6, 7, 4);
    let out = augment_all(&Augment { pad, fill, seed: 11, ..Augment::default() }, &source, 2);
    let mut seen = std::collections::BTreeSet::new();
    for n in 0..40 {
        let shifts: Vec<(isize, isize)> = (-2..=2)
            .flat_map(|dy| (-2..=2).map(move |dx| (dy, dx)))
            .filter(|&(dy, dx)| shifted(&source, n, dy, dx, fill) == sample(&out, n))
            .collect();
        assert_eq!(shifts.len(), 1, "sample {n} is exactly one shift within the padding");
        seen.insert(shifts[0]);
    }
    assert!(seen.len() >= 10, "40 samples drew only the shifts {seen:?}");
    assert!(seen.iter().any(|&(dy, dx)| dy.abs() == 2 || dx.abs() == 2));
}

#[test]
fn rotation_by_90_degrees_is_numpys_rot90() {
    for size in [5, 6] {
        let source = images(3, 2, size, size, 5);
        let out =
            augment_all(&Augment { rotation: (90.0, 90.0), fill: 7.0, ..Augment::default() }, &source, 0);
        for n in 0..3 {
            for c in 0..2 {
                for i in 0..size {
                    for j in 0..size {
                        // np.rot90 (counter-clockwise): out[i][j] = in[j][W-1-i].
                        let expected = at(&source, n, c, j, size - 1 - i);
                        let got = at(&out, n, c, i, j);
                        assert!(
                            (got - expected).abs() <= 1e-6,
                            "{size}x{size} ({i}, {j}): {got} vs {expected}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn small_rotation_moves_pixels_and_keeps_the_centre_of_an_odd_image() {
    let source = images(2, 1, 9, 9, 6);
    let out = augment_all(&Augment { rotation: (10.0, 10.0), ..Augment::default() }, &source, 0);
    assert_ne!(bits(&out), bits(&source));
    for n in 0..2 {
        assert!((at(&out, n, 0, 4, 4) - at(&source, n, 0, 4, 4)).abs() < 1e-6, "the centre is fixed");
    }
}

#[test]
fn outputs_are_finite_and_within_the_input_and_fill_range() {
    let mut rng = StdRng::seed_from_u64(7);
    for case in 0..40 {
        let (c, h, w) = (rng.random_range(1..=3), rng.random_range(1..=12), rng.random_range(1..=12));
        let source = images(4, c, h, w, case);
        let low = rng.random_range(-30.0f32..30.0);
        let config = Augment {
            flip: rng.random::<f32>(),
            pad: rng.random_range(0..=3),
            rotation: (low, low + rng.random_range(0.0f32..60.0)),
            scale: (0.5 + rng.random::<f32>(), 1.6),
            shear: (-rng.random_range(0.0f32..45.0), rng.random_range(0.0f32..45.0)),
            translate: (rng.random::<f32>() * 0.3, rng.random::<f32>() * 0.3),
            elastic: (case % 2 == 0).then(|| Elastic {
                alpha: rng.random_range(0.0f32..40.0),
                sigma: rng.random_range(0.5f32..6.0),
            }),
            fill: rng.random_range(-3.0f32..3.0),
            seed: case,
        };
        let out = augment_all(&config, &source, case);
        let values = source.data().iter().chain([&config.fill]);
        let low = values.clone().fold(f32::INFINITY, |a, &b| a.min(b));
        let high = values.fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        for &v in out.data() {
            assert!(
                v.is_finite() && low <= v && v <= high,
                "case {case}: {v} outside [{low}, {high}] ({config:?})"
            );
        }
    }
}

#[test]
fn elastic_distortion_moves_pixels_smoothly() {
    let source = images(2, 1, 16, 16, 8);
    let config = Augment { elastic: Some(Elastic { alpha: 4.0, sigma: 3.0 }), ..Augment::default() };
    let out = augment_all(&config, &source, 0);
    let changed = out.data().iter().zip(source.data()).filter(|(a, b)| a != b).count();
    assert!(changed > out.len() / 2, "only {changed} of {} pixels moved", out.len());
}

#[test]
fn same_seed_gives_the_same_bits_and_another_seed_or_epoch_other_bits() {
    let source = images(8, 3, 10, 11, 9);
    let first = augment_all(&everything(5), &source, 1);
    assert_eq!(bits(&first), bits(&augment_all(&everything(5), &source, 1)));
    assert_ne!(bits(&first), bits(&augment_all(&everything(6), &source, 1)));
    assert_ne!(bits(&first), bits(&augment_all(&everything(5), &source, 2)));
}

#[test]
fn bits_do_not_depend_on_the_thread_count() {
    let source = images(33, 2, 12, 12, 10);
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| augment_all(&everything(3), &source, 4))
    };
    let one = bits(&run(1));
    assert_eq!(one, bits(&run(2)));
    assert_eq!(one, bits(&run(3)));
}

#[test]
fn each_sample_draws_by_its_index_whatever_the_batch_or_position() {
    let source = images(10, 1, 8, 8, 12);
    let all = augment_all(&everything(1), &source, 0);
    let mut augmenter = Augmenter::new(everything(1), &[1, 8, 8]).unwrap();
    let mut out = Tensor::default();
    augmenter.apply(&source, &[7, 2, 7], 0, &mut out).unwrap();
    assert_eq!(out.shape(), &[3, 1, 8, 8]);
    for (k, n) in [7, 2, 7].into_iter().enumerate() {
        assert_eq!(sample(&out, k), sample(&all, n));
    }
}

#[test]
fn batches_augment_features_and_leave_labels_and_order_alone() {
    let data = Dataset::new(images(23, 1, 6, 6, 13), (0..23u32).map(|i| i % 5).collect::<Vec<_>>()).unwrap();
    let augment = Augment { pad: 1, rotation: (-20.0, 20.0), seed: 2, ..Augment::default() };
    let mut plain = Batches::shuffled(&data, 5, 8).unwrap();
    let mut augmented = Batches::shuffled(&data, 5, 8).unwrap().augment(augment.clone()).unwrap();
    let mut by_seven = Batches::shuffled(&data, 7, 8).unwrap().augment(augment).unwrap();
    for epoch in 0..3 {
        if epoch > 0 {
            plain.start_epoch();
            augmented.start_epoch();
            by_seven.start_epoch();
        }
        assert_eq!(augmented.epoch(), epoch);
        assert_eq!(plain.order(), augmented.order());
        let (mut images_a, mut labels_a, mut labels_p, mut images_7) = (vec![], vec![], vec![], vec![]);
        while let Some((x, y)) = augmented.next_batch() {
            images_a.extend_from_slice(x.data());
            labels_a.extend_from_slice(y);
        }
        while let Some((_, y)) = plain.next_batch() {
            labels_p.extend_from_slice(y);
        }
        while let Some((x, _)) = by_seven.next_batch() {
            images_7.extend_from_slice(x.data());
        }
        assert_eq!(labels_a, labels_p, "labels untouched, in the loader's order");
        let expected = augment_all(
            &Augment { pad: 1, rotation: (-20.0, 20.0), seed: 2, ..Augment::default() },
            &data.features,
            epoch,
        );
        let in_order: Vec<f32> = plain.order().iter().flat_map(|&n| sample(&expected, n).to_vec()).collect();
        assert_eq!(images_a, in_order, "epoch {epoch}: the draws of (seed, epoch, index)");
        let by_seven_order: Vec<f32> =
            by_seven.order().iter().flat_map(|&n| sample(&expected, n).to_vec()).collect();
        assert_eq!(images_7, by_seven_order, "batch size does not change a sample's draw");
        assert_ne!(
            images_a,
            plain.order().iter().flat_map(|&n| sample(&data.features, n).to_vec()).collect::<Vec<_>>()
        );
    }
}

#[test]
fn fit_trains_on_augmented_batches_and_rejects_flat_samples() {
    let labels: Vec<u32> = (0..40).map(|i| i % 2).collect();
    let data = Dataset::new(images(40, 1, 4, 4, 14), labels).unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let mut model =
        Sequential::new().push(Flatten::new()).push(Dense::new(16, 2, Init::He, &mut rng).unwrap());
    let mut adam = Adam::new(Default::default()).unwrap();
    let mut loss = SoftmaxCrossEntropy::new();
    let config = FitConfig {
        epochs: 2,
        batch_size: 8,
        quiet: true,
        augment: Some(Augment { pad: 1, seed: 3, ..Augment::default() }),
        ..FitConfig::default()
    };
    let history = fit(&mut model, &mut adam, &mut loss, &data, &data, &config).unwrap();
    assert_eq!(history.epochs.len(), 2);
    assert!(format!("{config:?}").contains("augment: Some(Augment"));

    let flat = Dataset::new(
        Tensor::from_vec(&[40, 16], data.features.data().to_vec()).unwrap(),
        data.labels.clone(),
    )
    .unwrap();
    let mut model = Sequential::new().push(Dense::new(16, 2, Init::He, &mut rng).unwrap());
    let err = fit(&mut model, &mut adam, &mut loss, &flat, &flat, &config).unwrap_err();
    assert!(matches!(&err, LayerError::Shape { actual, .. } if actual == &[16]), "{err}");
}

#[test]
fn sample_shapes_that_are_not_images_are_errors() {
    for shape in [&[784][..], &[28, 28], &[1, 1, 28, 28], &[0, 28, 28], &[1, 0, 28]] {
        let err = Augmenter::new(Augment::default(), shape).unwrap_err();
        match err {
            LayerError::Shape { ref expected, ref actual, .. } => {
                assert!(expected.contains("(channels, height, width)"), "{err}");
                assert_eq!(actual, shape);
            }
            other => panic!("{shape:?}: {other}"),
        }
    }
    let mut augmenter = Augmenter::new(Augment::default(), &[1, 4, 4]).unwrap();
    let mut out = Tensor::default();
    let err = augmenter.apply(&images(2, 1, 4, 5, 0), &[0], 0, &mut out).unwrap_err();
    assert!(
        matches!(&err, LayerError::Shape { expected, actual, .. } if expected == "(samples, 1, 4, 4)" && actual == &[2, 1, 4, 5]),
        "{err}"
    );
    let err = augmenter.apply(&images(2, 1, 4, 4, 0), &[0, 2], 0, &mut out).unwrap_err();
    assert!(err.to_string().contains("sample index 2"), "{err}");
}

#[test]
fn out_of_range_parameters_are_errors_naming_the_field() {
    let bad = [
        (Augment { flip: -0.1, ..Augment::default() }, "flip"),
        (Augment { flip: 1.5, ..Augment::default() }, "flip"),
        (Augment { flip: f32::NAN, ..Augment::default() }, "flip"),
        (Augment { rotation: (10.0, -10.0), ..Augment::default() }, "rotation"),
        (Augment { rotation: (f32::NAN, 0.0), ..Augment::default() }, "rotation"),
        (Augment { scale: (0.0, 1.0), ..Augment::default() }, "scale"),
        (Augment { scale: (1.2, 1.1), ..Augment::default() }, "scale"),
        (Augment { shear: (-90.0, 0.0), ..Augment::default() }, "shear"),
        (Augment { translate: (1.5, 0.0), ..Augment::default() }, "translate"),
        (Augment { translate: (0.0, -0.1), ..Augment::default() }, "translate"),
        (Augment { elastic: Some(Elastic { alpha: 1.0, sigma: 0.0 }), ..Augment::default() }, "sigma"),
        (Augment { elastic: Some(Elastic { alpha: -1.0, sigma: 4.0 }), ..Augment::default() }, "alpha"),
        (
            Augment { elastic: Some(Elastic { alpha: f32::INFINITY, sigma: 4.0 }), ..Augment::default() },
            "alpha",
        ),
        (Augment { fill: f32::NAN, ..Augment::default() }, "fill"),
    ];
    let data = Dataset::new(images(3, 1, 4, 4, 0), vec![0, 1, 0]).unwrap();
    for (config, field) in bad {
        let err = config.validate().unwrap_err();
        assert!(
            matches!(&err, LayerError::Config { expected, .. } if expected.contains(field)),
            "{field}: {err}"
        );
        assert_eq!(Augmenter::new(config.clone(), &[1, 4, 4]).unwrap_err(), err);
        assert_eq!(Batches::shuffled(&data, 2, 0).unwrap().augment(config).unwrap_err(), err);
    }
    assert!(everything(0).validate().is_ok());
}
