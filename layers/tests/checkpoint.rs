//! Safetensors checkpoints: a round trip restores a model exactly (parameters and batch-norm
//! buffers), and a file that does not match the model is an error naming the tensor.

use keel_layers::{
    load_safetensors, save_safetensors, zero_grad, ActivationKind, BatchNorm, Conv2d, Conv2dConfig, Dense,
    Flatten, Init, Layer, LayerError, MaxPool2d, Mode, Sequential, Tensor,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn model(seed: u64, hidden: usize) -> Sequential {
    let mut rng = StdRng::seed_from_u64(seed);
    Sequential::new()
        .push(Conv2d::new(Conv2dConfig::new(1, 4, 3).with_padding(1), Init::He, &mut rng).unwrap())
        .push(BatchNorm::new_2d(4))
        .push(MaxPool2d::new(2))
        .push(Flatten::new())
        .push(Dense::new(4 * 3 * 3, hidden, Init::He, &mut rng).with_activation(ActivationKind::Relu))
        .push(Dense::new(hidden, 3, Init::He, &mut rng))
}

fn input(seed: u32) -> Tensor {
    let values = (0..2 * 36).map(|i| ((i as u32 ^ seed).wrapping_mul(2_654_435_761) >> 8) as f32 / 8e6 - 1.0);
    Tensor::from_vec(&[2, 1, 6, 6], values.collect()).unwrap()
}

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("keel-{}-{name}.safetensors", std::process::id()))
}

#[test]
fn a_round_trip_restores_parameters_and_buffers() {
    let mut trained = model(1, 8);
    // A training forward moves batch norm's running statistics away from their start.
    zero_grad(&mut trained);
    trained.forward(&input(2), Mode::Train).unwrap();
    let path = temp_path("round-trip");
    save_safetensors(&mut trained, &path).unwrap();
    let mut restored = model(99, 8);
    load_safetensors(&mut restored, &path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let state = |m: &mut Sequential| {
        let mut all = Vec::new();
        m.visit_params(&mut |name, p| all.push((name.to_owned(), p.value.clone())));
        m.visit_buffers(&mut |name, b| all.push((name.to_owned(), b.clone())));
        all
    };
    let (want, got) = (state(&mut trained), state(&mut restored));
    assert_eq!(want.len(), 10, "{:?}", want.iter().map(|(n, _)| n).collect::<Vec<_>>());
    assert_eq!(want, got);
    let x = input(3);
    trained.forward(&x, Mode::Eval).unwrap();
    restored.forward(&x, Mode::Eval).unwrap();
    assert_eq!(trained.output(), restored.output());
}

#[test]
fn a_file_that_does_not_match_the_model_is_an_error_naming_the_tensor() {
    let path = temp_path("mismatch");
    save_safetensors(&mut model(1, 8), &path).unwrap();
    let detail = |result: keel_layers::Result<()>| match result {
        Err(LayerError::Checkpoint { detail, .. }) => detail,
        other => panic!("expected a checkpoint error, got {other:?}"),
    };
    // A different hidden width: "4.weight" has another shape.
    let wrong_shape = detail(load_safetensors(&mut model(1, 5), &path));
    assert!(wrong_shape.contains("4.weight") && wrong_shape.contains("[5, 36]"), "{wrong_shape}");
    // A model with one layer more misses tensors; one with a layer fewer leaves some unused.
    let mut rng = StdRng::seed_from_u64(1);
    let bigger = model(1, 8).push(Dense::new(3, 2, Init::He, &mut rng));
    assert!(detail(load_safetensors(&mut { bigger }, &path)).contains("6.weight of the model is missing"));
    let mut smaller = Sequential::new()
        .push(Conv2d::new(Conv2dConfig::new(1, 4, 3).with_padding(1), Init::He, &mut rng).unwrap());
    assert!(detail(load_safetensors(&mut smaller, &path)).contains("is not in the model"));
    std::fs::remove_file(&path).unwrap();
    let missing = detail(load_safetensors(&mut model(1, 8), temp_path("no-such-file")));
    assert!(!missing.is_empty());
}
