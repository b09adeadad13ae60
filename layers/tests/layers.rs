//! Layer tests: gradient checks of every layer (and of a model), shape errors that name the
//! layer, parameter naming, and a short real training run on the bundled digits.

use keel_layers::kernels::optim::AdamConfig;
use keel_layers::{gradcheck, relative_error};
use keel_layers::{
    zero_grad, Activation, ActivationKind, Adam, Dataset, Dense, Init, Layer, LayerError, Loss, Mode,
    Optimizer, Sequential, SoftmaxCrossEntropy, Tensor,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Inputs in [-1, 1) with both signs, none within 0.05 of 0 (so ReLU's kink is never inside
/// a central difference of step ≤ 1e-2).
fn input(shape: &[usize], seed: u32) -> Tensor {
    let len = shape.iter().product();
    let values = (0..len)
        .map(|i| {
            let u = ((i as u32 ^ seed).wrapping_mul(2_654_435_761) >> 8) as f32 / (1u32 << 23) as f32 - 1.0;
            if u.abs() < 0.05 {
                u.signum() * 0.05 + u
            } else {
                u
            }
        })
        .collect();
    Tensor::from_vec(shape, values).unwrap()
}

// Tolerances: the layers compute in f32. A central difference with step ε of a sum L of a
// few dozen terms of size ~1 carries rounding error ~1e-7·|L|/ε ≈ 1e-5 at ε = 1e-2, and the
// truncation error of the smooth activations is O(ε²) ≈ 1e-4 relative; a wrong gradient
// (a sign, a transpose, a missing term) gives errors of order 1.

#[test]
fn dense_passes_gradcheck() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut dense = Dense::new(7, 5, Init::He, &mut rng).unwrap();
    Init::Normal { std: 0.5 }.fill(dense.bias.value.data_mut(), 1, 5, &mut rng);
    let report = gradcheck(&mut dense, &input(&[3, 7], 2), Mode::Train, 1e-2).unwrap();
    assert_eq!(report.params.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(), ["weight", "bias"]);
    assert!(report.max_error() < 1e-3, "{report:?}");
}

#[test]
fn activations_pass_gradcheck() {
    for kind in
        [ActivationKind::Relu, ActivationKind::LeakyRelu(0.1), ActivationKind::Sigmoid, ActivationKind::Tanh]
    {
        let mut layer = Activation::new(kind);
        let report = gradcheck(&mut layer, &input(&[4, 9], 3), Mode::Train, 1e-2).unwrap();
        assert!(report.params.is_empty());
        assert!(report.max_error() < 1e-3, "{kind:?}: {report:?}");
    }
}

#[test]
fn mlp_passes_gradcheck_and_names_its_parameters() {
    let mut rng = StdRng::seed_from_u64(4);
    let mut model = Sequential::new()
        .push(Dense::new(6, 8, Init::Xavier, &mut rng).unwrap())
        .push(Activation::new(ActivationKind::Tanh))
        .push(Dense::new(8, 3, Init::Xavier, &mut rng).unwrap());
    let report = gradcheck(&mut model, &input(&[5, 6], 5), Mode::Train, 1e-2).unwrap();
    let names: Vec<&str> = report.params.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
    assert!(report.max_error() < 1e-3, "{report:?}");
}

#[test]
fn gradcheck_catches_a_wrong_gradient() {
    // A layer whose backward forgets the factor 2 of y = 2x must fail the check.
    struct Doubler(Tensor, Tensor);
    impl Layer for Doubler {
        fn name(&self) -> String {
            "doubler".into()
        }
        fn forward(&mut self, input: &Tensor, _: Mode) -> keel_layers::Result<()> {
            self.0 = Tensor::from_vec(input.shape(), input.data().iter().map(|x| 2.0 * x).collect())?;
            Ok(())
        }
        fn backward(&mut self, _: &Tensor, grad_output: &Tensor) -> keel_layers::Result<()> {
            self.1 = grad_output.clone();
            Ok(())
        }
        fn output(&self) -> &Tensor {
            &self.0
        }
        fn grad_input(&self) -> &Tensor {
            &self.1
        }
    }
    let report =
        gradcheck(&mut Doubler(Tensor::default(), Tensor::default()), &input(&[2, 3], 6), Mode::Train, 1e-2)
            .unwrap();
    // ‖g - 2g‖ / (‖g‖ + ‖2g‖) = 1/3.
    assert!((report.input - 1.0 / 3.0).abs() < 1e-3, "{report:?}");
    assert_eq!(relative_error(&[0.0], &[0.0]), 0.0);
}

#[test]
fn wrong_shapes_name_the_layer_and_both_shapes() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut dense = Dense::new(4, 2, Init::He, &mut rng).unwrap();
    let error = dense.forward(&Tensor::zeros(&[3, 5]), Mode::Train).unwrap_err();
    match &error {
        LayerError::Shape { layer, expected, actual } => {
            assert_eq!(layer, "dense(4 -> 2)");
            assert_eq!(expected, "(batch >= 1, 4)");
            assert_eq!(actual, &[3, 5]);
        }
        other => panic!("expected a shape error, got {other:?}"),
    }
    assert!(error.to_string().contains("dense(4 -> 2)"), "{error}");
    // An empty batch is an error, not a silent no-op.
    assert!(matches!(dense.forward(&Tensor::zeros(&[0, 4]), Mode::Train), Err(LayerError::Shape { .. })));
    // A gradient of the wrong shape too.
    dense.forward(&Tensor::zeros(&[3, 4]), Mode::Train).unwrap();
    assert!(matches!(
        dense.backward(&Tensor::zeros(&[3, 4]), &Tensor::zeros(&[3, 3])),
        Err(LayerError::Shape { .. })
    ));
    // An empty model says so.
    assert!(matches!(
        Sequential::new().forward(&Tensor::zeros(&[1, 1]), Mode::Eval),
        Err(LayerError::State(_))
    ));
    // Tensors check their data length.
    assert!(matches!(
        Tensor::from_vec(&[2, 3], vec![0.0; 5]),
        Err(LayerError::TensorLength { expected: 6, actual: 5, .. })
    ));
}

#[test]
fn bad_data_files_are_errors_naming_the_file() {
    let missing = Dataset::from_csv_gz("no/such/file.csv.gz", 1.0).unwrap_err();
    assert!(missing.to_string().contains("no/such/file.csv.gz"), "{missing}");
}

/// A small MLP learns the bundled digits (8x8, 1797 samples): a fixed 1500/297 split,
/// full-batch Adam, deterministic from the seed.
#[test]
fn mlp_learns_the_digits() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/digits.csv.gz");
    let data = Dataset::from_csv_gz(path, 16.0).unwrap();
    assert_eq!((data.len(), data.features.shape()[1]), (1797, 64));
    let (train, test) = (data.slice(0..1500).unwrap(), data.slice(1500..1797).unwrap());
    let mut rng = StdRng::seed_from_u64(42);
    let mut model = Sequential::new()
        .push(Dense::new(64, 32, Init::He, &mut rng).unwrap())
        .push(Activation::new(ActivationKind::Relu))
        .push(Dense::new(32, 10, Init::Xavier, &mut rng).unwrap());
    let mut loss = SoftmaxCrossEntropy::new();
    let mut adam = Adam::new(AdamConfig { lr: 1e-2, ..AdamConfig::default() }).unwrap();
    let mut first_loss = None;
    let mut last_loss = 0.0;
    for _ in 0..150 {
        zero_grad(&mut model);
        model.forward(&train.features, Mode::Train).unwrap();
        last_loss = loss.forward(model.output(), &train.labels).unwrap();
        first_loss.get_or_insert(last_loss);
        let grad = loss.backward(&train.labels).unwrap().clone();
        model.backward(&train.features, &grad).unwrap();
        adam.step(&mut model).unwrap();
    }
    model.forward(&test.features, Mode::Eval).unwrap();
    let correct = model
        .output()
        .data()
        .chunks_exact(10)
        .zip(&test.labels)
        .filter(|(scores, &label)| {
            let best = scores.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i as u32);
            best == Some(label)
        })
        .count();
    let accuracy = correct as f64 / test.len() as f64;
    assert!(last_loss < 0.1 * first_loss.unwrap(), "loss {first_loss:?} -> {last_loss}");
    assert!(accuracy > 0.9, "test accuracy {accuracy}");
}

#[test]
fn sequential_names_buffers_like_pytorch() {
    let mut rng = StdRng::seed_from_u64(8);
    let mut model = Sequential::new()
        .push(Dense::new(3, 4, Init::He, &mut rng).unwrap())
        .push(keel_layers::BatchNorm::new_1d(4))
        .push(Activation::new(ActivationKind::Relu));
    let mut buffers = Vec::new();
    model.visit_buffers(&mut |name, buffer| buffers.push((name.to_owned(), buffer.shape().to_vec())));
    assert_eq!(buffers, [("1.running_mean".to_owned(), vec![4]), ("1.running_var".to_owned(), vec![4])]);
    let mut params = Vec::new();
    model.visit_params(&mut |name, _| params.push(name.to_owned()));
    assert_eq!(params, ["0.weight", "0.bias", "1.weight", "1.bias"]);
}
