//! Tests of the normalisation and regularisation layers, the extra losses, RMSprop, gradient
//! clipping and the learning-rate schedules: gradient checks, hand-computed values, f64
//! formulas and central differences, determinism of dropout masks, and shape errors that
//! name the layer.

use keel_layers::gradcheck;
use keel_layers::kernels::optim::RmspropConfig;
use keel_layers::{
    clip_grad_norm, clip_grad_value, Activation, ActivationKind, BatchNorm, BceWithLogits, Dense, Dropout,
    ExponentialDecay, Init, InverseTimeDecay, Layer, LayerError, Loss, LrSchedule, Mode, Mse, Optimizer,
    Param, RmsProp, Sequential, StepDecay, Tensor,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Values in [-1, 1) with both signs from a multiplicative hash.
fn values(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| ((i as u32 ^ seed).wrapping_mul(2_654_435_761) >> 8) as f32 / (1u32 << 23) as f32 - 1.0)
        .collect()
}

fn tensor(shape: &[usize], seed: u32) -> Tensor {
    Tensor::from_vec(shape, values(shape.iter().product(), seed)).unwrap()
}

/// A batch norm with γ, β and the running statistics away from their initial 1, 0, 0, 1, so
/// a gradient that ignored one of them would show.
fn batchnorm(mut layer: BatchNorm, seed: u32) -> BatchNorm {
    let c = layer.weight.value.len();
    let gamma: Vec<f32> = values(c, seed).iter().map(|v| 1.0 + 0.5 * v).collect();
    layer.weight.value.data_mut().copy_from_slice(&gamma);
    layer.bias.value.data_mut().copy_from_slice(&values(c, seed + 1));
    layer.visit_buffers(&mut |name, buffer| {
        let fill: Vec<f32> = match name {
            "running_mean" => values(c, seed + 2).iter().map(|v| 0.3 * v).collect(),
            _ => values(c, seed + 3).iter().map(|v| 1.0 + 0.5 * v).collect(),
        };
        buffer.data_mut().copy_from_slice(&fill);
    });
    layer
}

// Gradcheck tolerances: the layers compute in f32 and the check differentiates L = Σ y·u
// with step ε = 1e-2. In eval mode batch norm is affine in x, γ and β, so the central
// difference has no truncation error and only f32 rounding shows (~1e-7·|L|/ε; measured
// ≤ 4e-6): threshold 1e-4. In train mode y depends on x through the batch mean and variance,
// adding an O(ε²) truncation error (measured ≤ 1.4e-5 for these unit-spread inputs):
// threshold 1e-3. Through a whole model the first layer's small gradients carry more
// relative rounding (measured 4e-4): threshold 5e-3. A wrong gradient (a missing mean term,
// a sign, a transpose of channels) gives errors of order 0.1 to 1.

#[test]
fn batchnorm1d_passes_gradcheck_in_train_and_eval_mode() {
    for shape in [[6usize, 4].as_slice(), &[3, 4, 5]] {
        for (mode, tolerance) in [(Mode::Train, 1e-3), (Mode::Eval, 1e-4)] {
            let mut layer = batchnorm(BatchNorm::new_1d(4), 7);
            let report = gradcheck(&mut layer, &tensor(shape, 3), mode, 1e-2).unwrap();
            let names: Vec<&str> = report.params.iter().map(|(name, _)| name.as_str()).collect();
            assert_eq!(names, ["weight", "bias"]);
            assert!(report.max_error() < tolerance, "{shape:?} {mode:?}: {report:?}");
        }
    }
}

#[test]
fn batchnorm2d_passes_gradcheck_in_train_and_eval_mode() {
    for (mode, tolerance) in [(Mode::Train, 1e-3), (Mode::Eval, 1e-4)] {
        let mut layer = batchnorm(BatchNorm::new_2d(3), 11);
        let report = gradcheck(&mut layer, &tensor(&[2, 3, 3, 4], 5), mode, 1e-2).unwrap();
        assert!(report.max_error() < tolerance, "{mode:?}: {report:?}");
    }
}

#[test]
fn a_model_with_batchnorm_passes_gradcheck() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut model = Sequential::new()
        .push(Dense::new(5, 6, Init::Xavier, &mut rng).unwrap())
        .push(batchnorm(BatchNorm::new_1d(6), 13))
        .push(Activation::new(ActivationKind::Tanh))
        .push(Dense::new(6, 2, Init::Xavier, &mut rng).unwrap());
    let report = gradcheck(&mut model, &tensor(&[8, 5], 9), Mode::Train, 1e-2).unwrap();
    let names: Vec<&str> = report.params.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"]);
    // A bias before a training-mode batch norm has no effect (the batch mean absorbs it):
    // its true gradient is 0, so the relative error compares rounding noise with noise.
    // Check instead that the analytic gradient vanishes (sums of ~16 terms of size ~1).
    for (name, error) in &report.params {
        if name != "0.bias" {
            assert!(*error < 5e-3, "{name}: {report:?}");
        }
    }
    assert!(report.input < 5e-3, "{report:?}");
    model.visit_params(&mut |name, param| {
        if name == "0.bias" {
            assert!(param.grad.data().iter().all(|g| g.abs() < 1e-5), "{:?}", param.grad);
        }
    });
}

#[test]
fn batchnorm_running_statistics_follow_pytorch() {
    // Channel 0: 1, 3, 5, 7 (mean 4, biased var 5, unbiased var 20/3);
    // channel 1: -2, 0, 2, 8 (mean 2, biased var 14, unbiased var 56/3).
    let x = Tensor::from_vec(&[4, 2], vec![1.0, -2.0, 3.0, 0.0, 5.0, 2.0, 7.0, 8.0]).unwrap();
    let mut layer = BatchNorm::new_1d(2);
    assert_eq!(layer.running_mean().data(), [0.0, 0.0]);
    assert_eq!(layer.running_var().data(), [1.0, 1.0]);
    layer.forward(&x, Mode::Train).unwrap();
    // r_μ = 0.9·0 + 0.1·μ, r_σ² = 0.9·1 + 0.1·unbiased σ².
    let close = |a: &[f32], b: [f64; 2]| a.iter().zip(b).all(|(&a, b)| (f64::from(a) - b).abs() < 1e-6);
    assert!(close(layer.running_mean().data(), [0.4, 0.2]), "{:?}", layer.running_mean());
    assert!(
        close(layer.running_var().data(), [0.9 + 2.0 / 3.0, 0.9 + 5.6 / 3.0]),
        "{:?}",
        layer.running_var()
    );
    // Train output: (x - μ)/√(σ² + eps) with γ = 1, β = 0.
    let expected0 = (1.0 - 4.0) / (5.0f64 + 1e-5).sqrt();
    assert!((f64::from(layer.output().data()[0]) - expected0).abs() < 1e-6);
    // A second step compounds: r_μ = 0.9·0.4 + 0.1·4.
    layer.forward(&x, Mode::Train).unwrap();
    assert!(close(layer.running_mean().data(), [0.9 * 0.4 + 0.4, 0.9 * 0.2 + 0.2]));
    // Eval uses the running statistics and leaves them alone.
    let (mean, var) = (layer.running_mean().clone(), layer.running_var().clone());
    layer.forward(&x, Mode::Eval).unwrap();
    let expected = (1.0 - f64::from(mean.data()[0])) / (f64::from(var.data()[0]) + 1e-5).sqrt();
    assert!((f64::from(layer.output().data()[0]) - expected).abs() < 1e-6);
    assert_eq!((layer.running_mean(), layer.running_var()), (&mean, &var));
    // The buffers are visited by name, in order, for saving.
    let mut names = Vec::new();
    layer.visit_buffers(&mut |name, buffer| names.push((name.to_owned(), buffer.len())));
    assert_eq!(names, [("running_mean".to_owned(), 2), ("running_var".to_owned(), 2)]);
}

#[test]
fn batchnorm_and_dropout_reuse_their_buffers() {
    let x = tensor(&[4, 3, 2, 2], 1);
    let mut bn = BatchNorm::new_2d(3);
    let mut dropout = Dropout::new(0.5, 1).unwrap();
    bn.forward(&x, Mode::Train).unwrap();
    bn.backward(&x, &x).unwrap();
    dropout.forward(&x, Mode::Train).unwrap();
    dropout.backward(&x, &x).unwrap();
    let pointers = |bn: &BatchNorm, d: &Dropout| {
        [bn.output(), bn.grad_input(), d.output(), d.grad_input()].map(|t| t.data().as_ptr())
    };
    let before = (pointers(&bn, &dropout), dropout.mask().as_ptr());
    for _ in 0..3 {
        bn.forward(&x, Mode::Train).unwrap();
        bn.backward(&x, &x).unwrap();
        dropout.forward(&x, Mode::Train).unwrap();
        dropout.backward(&x, &x).unwrap();
    }
    assert_eq!((pointers(&bn, &dropout), dropout.mask().as_ptr()), before);
}

#[test]
fn dropout_is_the_identity_in_eval_mode() {
    let x = tensor(&[3, 7], 2);
    let mut layer = Dropout::new(0.5, 9).unwrap();
    layer.forward(&x, Mode::Eval).unwrap();
    assert_eq!(layer.output(), &x);
    assert_eq!(layer.step(), 0, "eval forwards do not advance the step");
    layer.backward(&x, &x).unwrap();
    assert_eq!(layer.grad_input(), &x);
    let report = gradcheck(&mut layer, &x, Mode::Eval, 1e-2).unwrap();
    assert!(report.max_error() < 1e-3, "{report:?}");
}

#[test]
fn dropout_keeps_about_one_minus_p_and_scales_the_kept_units() {
    let p = 0.3f32;
    let len = 20_000;
    let x = Tensor::from_vec(&[len], values(len, 4).iter().map(|v| v + 2.0).collect()).unwrap();
    let mut layer = Dropout::new(p, 42).unwrap();
    layer.forward(&x, Mode::Train).unwrap();
    let kept = layer.mask().iter().filter(|&&m| m != 0).count() as f64;
    // Binomial(len, 1 - p): mean len·0.7, sd √(len·p·(1-p)) ≈ 65; 5 sd is a 6e-7 chance.
    let (mean, sd) = (len as f64 * 0.7, (len as f64 * 0.21).sqrt());
    assert!((kept - mean).abs() < 5.0 * sd, "kept {kept} of {len}");
    for ((&y, &x), &m) in layer.output().data().iter().zip(x.data()).zip(layer.mask()) {
        // x > 1 everywhere, so a dropped unit is exactly 0 and a kept one x/(1 - p).
        let expected = if m != 0 { x / (1.0 - p) } else { 0.0 };
        assert!((y - expected).abs() <= 1e-6 * expected.abs(), "{y} vs {expected}");
    }
}

#[test]
fn dropout_masks_are_deterministic_per_seed_and_step_and_differ_between_steps() {
    let x = tensor(&[8, 16], 3);
    let mask_at = |seed: u64, step: u64| {
        let mut layer = Dropout::new(0.5, seed).unwrap();
        layer.set_step(step);
        layer.forward(&x, Mode::Train).unwrap();
        layer.mask().to_vec()
    };
    let mut layer = Dropout::new(0.5, 5).unwrap();
    layer.forward(&x, Mode::Train).unwrap();
    let first = layer.mask().to_vec();
    layer.forward(&x, Mode::Train).unwrap();
    let second = layer.mask().to_vec();
    assert_eq!(layer.step(), 2);
    assert_ne!(first, second, "consecutive steps draw new masks");
    assert_eq!(first, mask_at(5, 0), "same seed and step, same mask");
    assert_eq!(second, mask_at(5, 1));
    assert_ne!(first, mask_at(6, 0), "another seed, another mask");
    // A step's mask does not depend on the batch shapes of the steps before it.
    let mut other = Dropout::new(0.5, 5).unwrap();
    other.forward(&tensor(&[3], 1), Mode::Train).unwrap();
    other.forward(&x, Mode::Train).unwrap();
    assert_eq!(other.mask(), second.as_slice());
}

#[test]
fn dropout_gradient_flows_through_kept_units_only() {
    let p = 0.4f32;
    let x = tensor(&[6, 11], 8);
    let dy = tensor(&[6, 11], 9);
    let mut layer = Dropout::new(p, 3).unwrap();
    layer.forward(&x, Mode::Train).unwrap();
    layer.backward(&x, &dy).unwrap();
    let mask = layer.mask();
    assert!(mask.contains(&0) && mask.contains(&1));
    for ((&dx, &dy), &m) in layer.grad_input().data().iter().zip(dy.data()).zip(mask) {
        let expected = if m != 0 { dy / (1.0 - p) } else { 0.0 };
        assert!((dx - expected).abs() <= 1e-6 * expected.abs(), "{dx} vs {expected}");
    }
}

/// Dropout whose step counter is reset before every forward, so that every training forward
/// draws the mask of step 0 (a mask is a function of the seed and the step): the fixed mask
/// under which central differences of the training forward are defined.
struct FixedMask(Dropout);

impl Layer for FixedMask {
    fn name(&self) -> String {
        self.0.name()
    }

    fn forward(&mut self, input: &Tensor, mode: Mode) -> keel_layers::Result<()> {
        self.0.set_step(0);
        self.0.forward(input, mode)
    }

    fn backward(&mut self, input: &Tensor, grad_output: &Tensor) -> keel_layers::Result<()> {
        self.0.backward(input, grad_output)
    }

    fn output(&self) -> &Tensor {
        self.0.output()
    }

    fn grad_input(&self) -> &Tensor {
        self.0.grad_input()
    }
}

// Dropout's gradcheck tolerance: under a fixed mask, training dropout is linear in its input
// (`y = m·x/(1 - p)`), and so is the model around it in each single input or parameter
// element, so the central difference has no truncation error and only f32 rounding shows
// (measured ≤ 1e-6 for the layer, ≤ 5e-6 for the model): threshold 1e-4. A backward that
// ignored the mask gives errors of order 0.2 (the dropped units' true gradients are 0), one
// that ignored the scale p/(2 - p) (0.11 at p = 0.2).

#[test]
fn dropout_passes_gradcheck_in_train_mode_with_a_fixed_mask() {
    let x = tensor(&[6, 11], 8);
    for p in [0.0, 0.2, 0.5] {
        let mut layer = FixedMask(Dropout::new(p, 3).unwrap());
        let report = gradcheck(&mut layer, &x, Mode::Train, 1e-2).unwrap();
        // Not vacuous: with p > 0 the mask drops units and keeps others; p = 0 keeps all.
        let mask = layer.0.mask();
        assert!(mask.contains(&1) && mask.contains(&0) == (p > 0.0), "p = {p}: {mask:?}");
        assert!(report.max_error() < 1e-4, "p = {p}: {report:?}");
    }
}

/// Through dense layers on both sides, so the parameter gradients of the first one pass
/// through the mask too.
#[test]
fn a_model_with_dropout_passes_gradcheck_in_train_mode_with_a_fixed_mask() {
    let mut rng = StdRng::seed_from_u64(4);
    let mut model = Sequential::new()
        .push(Dense::new(5, 12, Init::Xavier, &mut rng).unwrap())
        .push(FixedMask(Dropout::new(0.3, 7).unwrap()))
        .push(Dense::new(12, 3, Init::Xavier, &mut rng).unwrap());
    let report = gradcheck(&mut model, &tensor(&[8, 5], 10), Mode::Train, 1e-2).unwrap();
    let names: Vec<&str> = report.params.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
    assert!(report.max_error() < 1e-4, "{report:?}");
}

/// Central differences in f64 of `loss` at `z`, step 1e-4 (f64 rounding ~1e-12, truncation
/// ~1e-8·f''': both far below the f32 tolerances used).
fn numeric_gradient(z: &[f64], loss: &dyn Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut z = z.to_vec();
    (0..z.len())
        .map(|i| {
            let original = z[i];
            z[i] = original + 1e-4;
            let plus = loss(&z);
            z[i] = original - 1e-4;
            let minus = loss(&z);
            z[i] = original;
            (plus - minus) / 2e-4
        })
        .collect()
}

#[test]
fn bce_with_logits_matches_the_f64_formula_and_its_derivative() {
    // Logits of both signs up to ±8, targets 0, 1 and soft values.
    let logits = Tensor::from_vec(&[4, 3], values(12, 5).iter().map(|v| 8.0 * v).collect()).unwrap();
    let targets =
        Tensor::from_vec(&[4, 3], vec![0.0, 1.0, 1.0, 0.0, 0.25, 1.0, 0.0, 0.0, 0.75, 1.0, 1.0, 0.0])
            .unwrap();
    let t: Vec<f64> = targets.data().iter().map(|&t| f64::from(t)).collect();
    let loss = |z: &[f64]| -> f64 {
        let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
        z.iter()
            .zip(&t)
            .map(|(&z, &y)| -(y * sigmoid(z).ln() + (1.0 - y) * (1.0 - sigmoid(z)).ln()))
            .sum::<f64>()
            / 12.0
    };
    let z: Vec<f64> = logits.data().iter().map(|&z| f64::from(z)).collect();
    let mut bce = BceWithLogits::new();
    let value = bce.forward(&logits, &targets).unwrap();
    // The kernel's exp/ln1p are within a few ulp: 1e-5 relative on the mean.
    assert!((f64::from(value) - loss(&z)).abs() < 1e-5 * loss(&z), "{value} vs {}", loss(&z));
    let grad = bce.backward(&targets).unwrap();
    assert_eq!(grad.shape(), [4, 3]);
    for (i, (&g, n)) in grad.data().iter().zip(numeric_gradient(&z, &loss)).enumerate() {
        // (σ(z) - y)/12 in f32: a few ulp of σ, so 1e-6 absolute on values ≤ 1/12.
        assert!((f64::from(g) - n).abs() < 1e-6, "dlogits[{i}]: {g} vs {n}");
    }
}

#[test]
fn mse_matches_the_f64_formula_and_its_derivative() {
    let pred = tensor(&[5, 2], 6);
    let targets = tensor(&[5, 2], 7);
    let t: Vec<f64> = targets.data().iter().map(|&t| f64::from(t)).collect();
    let loss = |p: &[f64]| p.iter().zip(&t).map(|(&p, &y)| (p - y) * (p - y)).sum::<f64>() / 10.0;
    let p: Vec<f64> = pred.data().iter().map(|&p| f64::from(p)).collect();
    let mut mse = Mse::new();
    let value = mse.forward(&pred, &targets).unwrap();
    // Residuals rounded once in f32, summed in f32 lanes: 1e-6 relative.
    assert!((f64::from(value) - loss(&p)).abs() < 1e-6 * loss(&p), "{value} vs {}", loss(&p));
    let grad = mse.backward(&targets).unwrap();
    for (i, (&g, n)) in grad.data().iter().zip(numeric_gradient(&p, &loss)).enumerate() {
        assert!((f64::from(g) - n).abs() < 1e-6, "dpred[{i}]: {g} vs {n}");
    }
}

#[test]
fn loss_shape_errors_name_the_loss() {
    let mut bce = BceWithLogits::new();
    match bce.forward(&Tensor::zeros(&[4, 1]), &Tensor::zeros(&[4])) {
        Err(LayerError::Shape { layer, actual, .. }) => {
            assert!(layer.starts_with("bce_with_logits"), "{layer}");
            assert_eq!(actual, [4]);
        }
        other => panic!("{other:?}"),
    }
    let mut mse = Mse::new();
    assert!(matches!(mse.backward(&Tensor::zeros(&[2, 3])), Err(LayerError::State(_))));
    match mse.forward(&Tensor::zeros(&[0, 3]), &Tensor::zeros(&[0, 3])) {
        Err(LayerError::Shape { layer, .. }) => assert_eq!(layer, "mse"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        mse.forward(&Tensor::zeros(&[2, 3]), &Tensor::zeros(&[3, 2])),
        Err(LayerError::Shape { .. })
    ));
}

#[test]
fn layer_shape_errors_name_the_layer() {
    let cases: Vec<(Box<dyn Layer>, Tensor, Mode, &str)> = vec![
        (Box::new(BatchNorm::new_1d(4)), Tensor::zeros(&[2, 5]), Mode::Train, "batchnorm1d(4)"),
        (Box::new(BatchNorm::new_1d(4)), Tensor::zeros(&[2, 4, 1, 1]), Mode::Eval, "batchnorm1d(4)"),
        (Box::new(BatchNorm::new_2d(3)), Tensor::zeros(&[2, 3, 4]), Mode::Train, "batchnorm2d(3)"),
        // One value per channel cannot be normalised by batch statistics.
        (Box::new(BatchNorm::new_1d(4)), Tensor::zeros(&[1, 4]), Mode::Train, "batchnorm1d(4)"),
    ];
    for (mut layer, input, mode, name) in cases {
        match layer.forward(&input, mode) {
            Err(LayerError::Shape { layer, actual, .. }) => {
                assert_eq!(layer, name);
                assert_eq!(actual, input.shape());
            }
            other => panic!("{name} {:?}: {other:?}", input.shape()),
        }
    }
    // A single sample is fine in evaluation mode.
    BatchNorm::new_1d(4).forward(&Tensor::zeros(&[1, 4]), Mode::Eval).unwrap();

    let x = tensor(&[2, 4], 1);
    let mut bn = BatchNorm::new_1d(4);
    assert!(matches!(bn.backward(&x, &x), Err(LayerError::State(_))));
    bn.forward(&x, Mode::Train).unwrap();
    match bn.backward(&x, &Tensor::zeros(&[4, 2])) {
        Err(LayerError::Shape { layer, .. }) => assert_eq!(layer, "batchnorm1d(4) (gradient)"),
        other => panic!("{other:?}"),
    }
    let mut dropout = Dropout::new(0.5, 1).unwrap();
    assert!(matches!(dropout.backward(&x, &x), Err(LayerError::State(_))));
    dropout.forward(&x, Mode::Train).unwrap();
    match dropout.backward(&x, &Tensor::zeros(&[8])) {
        Err(LayerError::Shape { layer, .. }) => assert_eq!(layer, "dropout(p = 0.5) (gradient)"),
        other => panic!("{other:?}"),
    }
    // A probability outside [0, 1] is rejected when the layer is built, naming `p`.
    let err = Dropout::new(1.5, 1).unwrap_err();
    assert!(matches!(err, LayerError::Argument { .. }) && err.to_string().contains("p"), "{err}");
}

/// A model of two dense layers with every gradient set to `grad(index)`.
fn model_with_grads(grad: impl Fn(usize) -> f32) -> Sequential {
    let mut rng = StdRng::seed_from_u64(1);
    let mut model = Sequential::new()
        .push(Dense::new(3, 2, Init::He, &mut rng).unwrap())
        .push(Dense::new(2, 2, Init::He, &mut rng).unwrap());
    let mut index = 0;
    model.visit_params(&mut |_, param: &mut Param| {
        for g in param.grad.data_mut() {
            *g = grad(index);
            index += 1;
        }
    });
    model
}

fn grads(model: &mut Sequential) -> Vec<f32> {
    let mut out = Vec::new();
    model.visit_params(&mut |_, param| out.extend_from_slice(param.grad.data()));
    out
}

#[test]
fn rmsprop_steps_through_the_optimizer_trait() {
    // v = α·0 + (1-α)·g², θ ← θ - lr·g/(√v + ε) on the first step; the second step
    // compounds v. Computed in f64; the kernel's f32 rule agrees to ~1e-6.
    let config = RmspropConfig { lr: 0.01, alpha: 0.9, ..RmspropConfig::default() };
    let mut model = model_with_grads(|i| (i as f32 - 7.0) / 5.0);
    let mut before = Vec::new();
    model.visit_params(&mut |_, param| before.extend_from_slice(param.value.data()));
    // The bias of the last layer is frozen: left unchanged.
    model.visit_params(&mut |name, param| param.frozen = name == "1.bias");
    let g = grads(&mut model);
    let mut optimizer: Box<dyn Optimizer> = Box::new(RmsProp::new(config).unwrap());
    assert_eq!(optimizer.learning_rate(), 0.01);
    optimizer.step(&mut model).unwrap();
    optimizer.set_learning_rate(0.02);
    optimizer.step(&mut model).unwrap();
    let mut after = Vec::new();
    model.visit_params(&mut |_, param| after.extend_from_slice(param.value.data()));
    let frozen = after.len() - 2..after.len();
    for i in 0..after.len() {
        let (theta, g) = (f64::from(before[i]), f64::from(g[i]));
        let expected = if frozen.contains(&i) {
            theta
        } else {
            let v1 = 0.1 * g * g;
            let theta1 = theta - 0.01 * g / (v1.sqrt() + 1e-8);
            let v2 = 0.9 * v1 + 0.1 * g * g;
            theta1 - 0.02 * g / (v2.sqrt() + 1e-8)
        };
        assert!((f64::from(after[i]) - expected).abs() < 1e-5, "param {i}: {} vs {expected}", after[i]);
    }
    // A bad hyper-parameter is rejected when the optimizer is built, and at a step after a
    // change of its public configuration.
    let bad = RmspropConfig { alpha: 2.0, ..config };
    assert!(matches!(RmsProp::new(bad), Err(LayerError::Argument { .. })));
    let mut changed = RmsProp::new(config).unwrap();
    changed.config = bad;
    assert!(matches!(changed.step(&mut model), Err(LayerError::Argument { .. })));
}

#[test]
fn clip_grad_norm_scales_all_gradients_together() {
    let grad = |i: usize| (i as f32 - 6.0) / 3.0;
    let mut model = model_with_grads(grad);
    let g = grads(&mut model);
    let total = g.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt();
    // Above the norm: unchanged, total returned.
    let norm = clip_grad_norm(&mut model, 100.0).unwrap();
    assert!((f64::from(norm) - total).abs() < 1e-5 * total);
    assert_eq!(grads(&mut model), g);
    // Below: every gradient scaled by max_norm/(total + 1e-6), so the new norm is max_norm.
    let norm = clip_grad_norm(&mut model, 1.5).unwrap();
    assert!((f64::from(norm) - total).abs() < 1e-5 * total);
    let coef = 1.5 / (total + 1e-6);
    for (i, (&clipped, &original)) in grads(&mut model).iter().zip(&g).enumerate() {
        let expected = f64::from(original) * coef;
        assert!((f64::from(clipped) - expected).abs() < 1e-6, "grad {i}: {clipped} vs {expected}");
    }
    // Frozen parameters take no part: neither in the norm nor in the scaling.
    let mut model = model_with_grads(grad);
    model.visit_params(&mut |name, param| param.frozen = name.starts_with("0."));
    let trainable: Vec<f32> = g[8..].to_vec();
    let norm = clip_grad_norm(&mut model, 0.5).unwrap();
    let expected = trainable.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt();
    assert!((f64::from(norm) - expected).abs() < 1e-5 * expected);
    assert_eq!(grads(&mut model)[..8], g[..8]);
    // Bad limits and non-finite gradients are errors that leave the gradients alone.
    assert!(matches!(clip_grad_norm(&mut model, -1.0), Err(LayerError::Argument { .. })));
    let mut model = model_with_grads(|i| if i == 9 { f32::NAN } else { 1.0 });
    assert!(matches!(clip_grad_norm(&mut model, 0.5), Err(LayerError::Argument { .. })));
    assert!(grads(&mut model).iter().enumerate().all(|(i, &v)| i == 9 || v == 1.0));
}

#[test]
fn clip_grad_value_clamps_every_gradient() {
    let grad = |i: usize| (i as f32 - 6.0) / 3.0;
    let mut model = model_with_grads(grad);
    let g = grads(&mut model);
    clip_grad_value(&mut model, 0.75).unwrap();
    assert_eq!(grads(&mut model), g.iter().map(|v| v.clamp(-0.75, 0.75)).collect::<Vec<_>>());
    assert!(g.iter().any(|v| v.abs() > 0.75), "the test clamps something");
    assert!(matches!(clip_grad_value(&mut model, -0.1), Err(LayerError::Argument { .. })));
    assert!(matches!(clip_grad_value(&mut Sequential::new(), f32::NAN), Err(LayerError::Argument { .. })));
}

#[test]
fn schedules_give_the_course_formulas() {
    let inverse = InverseTimeDecay { initial: 0.2, decay_rate: 1.0 };
    assert_eq!([0, 1, 3].map(|e| inverse.learning_rate(e)), [0.2, 0.1, 0.05]);
    let exponential = ExponentialDecay { initial: 0.1, gamma: 0.95 };
    assert_eq!(exponential.learning_rate(0), 0.1);
    assert!((exponential.learning_rate(10) - 0.1 * 0.95f64.powi(10)).abs() < 1e-15);
    let step = StepDecay { initial: 1.0, gamma: 0.5, step: 3 };
    assert_eq!([0, 2, 3, 5, 6, 9].map(|e| step.learning_rate(e)), [1.0, 1.0, 0.5, 0.5, 0.25, 0.125]);
    // A schedule drives an optimizer through the trait.
    let mut optimizer = RmsProp::new(RmspropConfig::default()).unwrap();
    let schedule: &dyn LrSchedule = &step;
    optimizer.set_learning_rate(schedule.learning_rate(4));
    assert_eq!(optimizer.learning_rate(), 0.5);
}
