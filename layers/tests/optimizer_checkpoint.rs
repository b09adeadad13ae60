//! Optimizer state in checkpoints: training saved after some steps and resumed in a fresh
//! model and optimizer from the two files takes bit for bit the steps the uninterrupted run
//! takes (SGD with Nesterov momentum, RMSprop with momentum and centring, Adam with AMSGrad,
//! AdamW); a resumed run without the optimizer's file does not; a state of another kind, of
//! other options or of another model is refused and leaves the optimizer as it was.

use keel_layers::kernels::optim::{AdamConfig, RmspropConfig, SgdConfig};
use keel_layers::{
    load_optimizer_state, load_safetensors, save_optimizer_state, save_safetensors, zero_grad,
    ActivationKind, Adam, BatchNorm, Dense, Init, Layer, LayerError, Loss, Mode, Optimizer, RmsProp,
    Sequential, Sgd, SoftmaxCrossEntropy, Tensor,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Values in [-1, 1) with both signs from a multiplicative hash.
fn tensor(shape: &[usize], seed: u32) -> Tensor {
    let values = (0..shape.iter().product::<usize>())
        .map(|i| ((i as u32 ^ seed).wrapping_mul(2_654_435_761) >> 8) as f32 / (1u32 << 23) as f32 - 1.0)
        .collect();
    Tensor::from_vec(shape, values).unwrap()
}

fn model(seed: u64) -> Sequential {
    let mut rng = StdRng::seed_from_u64(seed);
    Sequential::new()
        .push(Dense::new(6, 5, Init::He, &mut rng).unwrap().with_activation(ActivationKind::Relu))
        .push(BatchNorm::new_1d(5))
        .push(Dense::new(5, 3, Init::Xavier, &mut rng).unwrap())
}

/// `steps` training steps on fixed batches (a different batch per step number).
fn train(model: &mut Sequential, optimizer: &mut dyn Optimizer, steps: std::ops::Range<u32>) {
    let mut loss = SoftmaxCrossEntropy::new();
    for step in steps {
        let x = tensor(&[4, 6], step);
        let labels: Vec<u32> = (0..4).map(|i| (i + step) % 3).collect();
        zero_grad(model);
        model.forward(&x, Mode::Train).unwrap();
        loss.forward(model.output(), &labels).unwrap();
        let grad = loss.backward(&labels).unwrap().clone();
        model.backward(&x, &grad).unwrap();
        optimizer.step(model).unwrap();
    }
}

fn values(model: &mut dyn Layer) -> Vec<Vec<f32>> {
    let mut all = Vec::new();
    model.visit_params(&mut |_, param| all.push(param.value.data().to_vec()));
    model.visit_buffers(&mut |_, buffer| all.push(buffer.data().to_vec()));
    all
}

/// Makes a fresh optimizer.
type Make = fn() -> Box<dyn Optimizer>;

fn optimizers() -> Vec<(&'static str, Make)> {
    vec![
        ("sgd", || {
            Box::new(
                Sgd::new(SgdConfig { lr: 0.05, momentum: 0.9, nesterov: true, ..SgdConfig::default() })
                    .unwrap(),
            )
        }),
        ("rmsprop", || {
            Box::new(
                RmsProp::new(RmspropConfig {
                    lr: 0.01,
                    momentum: 0.5,
                    centered: true,
                    ..RmspropConfig::default()
                })
                .unwrap(),
            )
        }),
        ("adam", || {
            Box::new(Adam::new(AdamConfig { lr: 0.01, amsgrad: true, ..AdamConfig::default() }).unwrap())
        }),
        ("adamw", || {
            Box::new(
                Adam::new(AdamConfig {
                    lr: 0.01,
                    weight_decay: 0.1,
                    decoupled_weight_decay: true,
                    ..AdamConfig::default()
                })
                .unwrap(),
            )
        }),
    ]
}

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("keel_optimizer_checkpoint_{}_{name}", std::process::id()))
}

#[test]
fn resumed_training_takes_the_same_steps_bit_for_bit() {
    for (name, make) in optimizers() {
        let (model_path, optimizer_path) = (temp(&format!("{name}_model")), temp(&format!("{name}_optim")));
        let mut straight = model(1);
        let mut optimizer = make();
        train(&mut straight, optimizer.as_mut(), 0..3);
        save_safetensors(&mut straight, &model_path).unwrap();
        save_optimizer_state(&mut straight, optimizer.as_ref(), &optimizer_path).unwrap();
        train(&mut straight, optimizer.as_mut(), 3..6);

        // A different initialisation and an optimizer at another learning rate: both files
        // must overwrite everything that matters.
        let mut resumed = model(2);
        let mut resumed_optimizer = make();
        resumed_optimizer.set_learning_rate(0.5);
        load_safetensors(&mut resumed, &model_path).unwrap();
        load_optimizer_state(&mut resumed, resumed_optimizer.as_mut(), &optimizer_path).unwrap();
        assert_eq!(resumed_optimizer.learning_rate(), optimizer.learning_rate(), "{name}");
        train(&mut resumed, resumed_optimizer.as_mut(), 3..6);
        assert_eq!(values(&mut resumed), values(&mut straight), "{name}: resumed run differs");
        assert_eq!(resumed_optimizer.state(), optimizer.state(), "{name}");

        // Without the optimizer's state the same three steps go elsewhere.
        let mut fresh = model(2);
        load_safetensors(&mut fresh, &model_path).unwrap();
        train(&mut fresh, make().as_mut(), 3..6);
        assert_ne!(values(&mut fresh), values(&mut straight), "{name}: the state made no difference");
        std::fs::remove_file(&model_path).unwrap();
        std::fs::remove_file(&optimizer_path).unwrap();
    }
}

#[test]
fn a_state_saved_before_the_first_step_is_empty_and_loads() {
    let path = temp("empty");
    let mut net = model(3);
    let adam = Adam::new(AdamConfig::default()).unwrap();
    save_optimizer_state(&mut net, &adam, &path).unwrap();
    let mut loaded = Adam::new(AdamConfig { lr: 0.5, ..AdamConfig::default() }).unwrap();
    load_optimizer_state(&mut net, &mut loaded, &path).unwrap();
    assert_eq!(loaded.state(), adam.state());
    assert!(loaded.state().params.is_empty());
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_state_of_another_kind_options_or_model_is_refused_and_changes_nothing() {
    let path = temp("refused");
    let mut net = model(4);
    let mut adam = Adam::new(AdamConfig { lr: 0.01, ..AdamConfig::default() }).unwrap();
    train(&mut net, &mut adam, 0..2);
    save_optimizer_state(&mut net, &adam, &path).unwrap();

    // Another kind.
    let mut sgd = Sgd::new(SgdConfig { lr: 0.1, momentum: 0.9, ..SgdConfig::default() }).unwrap();
    train(&mut model(4), &mut sgd, 0..1);
    let before = sgd.state();
    match load_optimizer_state(&mut net, &mut sgd, &path) {
        Err(LayerError::Config { expected, actual, .. }) => {
            assert!(expected.contains("sgd") && actual.contains("adam"), "{expected} / {actual}")
        }
        other => panic!("expected a Config error, got {other:?}"),
    }
    assert_eq!(sgd.state(), before);

    // Other options: AMSGrad needs a max_exp_avg_sq the file does not have.
    let mut amsgrad = Adam::new(AdamConfig { amsgrad: true, ..AdamConfig::default() }).unwrap();
    match load_optimizer_state(&mut net, &mut amsgrad, &path) {
        Err(LayerError::Config { expected, .. }) => {
            assert!(expected.contains("max_exp_avg_sq"), "{expected}")
        }
        other => panic!("expected a Config error, got {other:?}"),
    }
    assert!(amsgrad.state().params.is_empty());

    // Another model: a first layer of another width, then a model with other names.
    let mut rng = StdRng::seed_from_u64(5);
    let mut wider = Sequential::new()
        .push(Dense::new(7, 5, Init::He, &mut rng).unwrap())
        .push(BatchNorm::new_1d(5))
        .push(Dense::new(5, 3, Init::Xavier, &mut rng).unwrap());
    let mut other = Adam::new(AdamConfig::default()).unwrap();
    match load_optimizer_state(&mut wider, &mut other, &path) {
        Err(LayerError::Checkpoint { detail, .. }) => {
            assert!(detail.contains("0.weight.exp_avg") && detail.contains("[5, 7]"), "{detail}")
        }
        other => panic!("expected a Checkpoint error, got {other:?}"),
    }
    let mut shorter = Sequential::new().push(Dense::new(6, 5, Init::He, &mut rng).unwrap());
    match load_optimizer_state(&mut shorter, &mut other, &path) {
        Err(LayerError::Checkpoint { detail, .. }) => assert!(detail.contains("not a parameter"), "{detail}"),
        other => panic!("expected a Checkpoint error, got {other:?}"),
    }
    let mut longer = model(4).push(Dense::new(3, 2, Init::Xavier, &mut rng).unwrap());
    match load_optimizer_state(&mut longer, &mut other, &path) {
        Err(LayerError::Checkpoint { detail, .. }) => assert!(detail.contains("3.weight"), "{detail}"),
        other => panic!("expected a Checkpoint error, got {other:?}"),
    }
    assert!(other.state().params.is_empty());

    // A model file is not an optimizer file.
    save_safetensors(&mut net, &path).unwrap();
    match load_optimizer_state(&mut net, &mut other, &path) {
        Err(LayerError::Checkpoint { detail, .. }) => assert!(detail.contains("metadata"), "{detail}"),
        other => panic!("expected a Checkpoint error, got {other:?}"),
    }
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(load_optimizer_state(&mut net, &mut other, &path), Err(LayerError::Checkpoint { .. })));
}
