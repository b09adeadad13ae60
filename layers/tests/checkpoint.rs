//! Safetensors checkpoints: a round trip restores a model exactly (parameters and batch-norm
//! buffers), and a file that does not match the model is an error naming the tensor.

use keel_layers::{
    load_safetensors, load_safetensors_with, save_safetensors, zero_grad, ActivationKind, BatchNorm, Conv2d,
    Conv2dConfig, Dense, Flatten, Init, Layer, LayerError, LoadOptions, MaxPool2d, Mode, Sequential, Tensor,
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
        .push(
            Dense::new(4 * 3 * 3, hidden, Init::He, &mut rng).unwrap().with_activation(ActivationKind::Relu),
        )
        .push(Dense::new(hidden, 3, Init::He, &mut rng).unwrap())
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
    let bigger = model(1, 8).push(Dense::new(3, 2, Init::He, &mut rng).unwrap());
    assert!(detail(load_safetensors(&mut { bigger }, &path)).contains("6.weight of the model is missing"));
    let mut smaller = Sequential::new()
        .push(Conv2d::new(Conv2dConfig::new(1, 4, 3).with_padding(1), Init::He, &mut rng).unwrap());
    assert!(detail(load_safetensors(&mut smaller, &path)).contains("is not in the model"));
    std::fs::remove_file(&path).unwrap();
    let missing = detail(load_safetensors(&mut model(1, 8), temp_path("no-such-file")));
    assert!(!missing.is_empty());
}

/// Every parameter and buffer of a model, by name.
fn state(model: &mut dyn Layer) -> Vec<(String, Tensor)> {
    let mut all = Vec::new();
    model.visit_params(&mut |name, p| all.push((name.to_owned(), p.value.clone())));
    model.visit_buffers(&mut |name, b| all.push((name.to_owned(), b.clone())));
    all
}

#[test]
fn a_failed_load_leaves_the_model_as_it_was() {
    let path = temp_path("untouched");
    save_safetensors(&mut model(1, 8), &path).unwrap();
    // The first tensors match, "4.weight" does not: nothing may be written, not even "0.weight".
    let mut target = model(7, 5);
    let before = state(&mut target);
    assert!(load_safetensors(&mut target, &path).is_err());
    assert_eq!(state(&mut target), before);
    // Strict and a tensor missing (the model has one more layer): the same.
    let mut rng = StdRng::seed_from_u64(3);
    let mut bigger = model(7, 8).push(Dense::new(3, 2, Init::He, &mut rng).unwrap());
    let before = state(&mut bigger);
    assert!(load_safetensors(&mut bigger, &path).is_err());
    assert_eq!(state(&mut bigger), before);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_non_strict_load_reports_what_was_missing_and_unexpected() {
    let path = temp_path("non-strict");
    let mut saved = model(1, 8);
    save_safetensors(&mut saved, &path).unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let mut bigger = model(7, 8).push(Dense::new(3, 2, Init::He, &mut rng).unwrap());
    let extra_before =
        state(&mut bigger).into_iter().filter(|(n, _)| n.starts_with("6.")).collect::<Vec<_>>();
    let report = load_safetensors_with(&mut bigger, &path, &LoadOptions::default().non_strict()).unwrap();
    assert_eq!(report.missing, ["6.weight", "6.bias"]);
    assert!(report.unexpected.is_empty());
    assert_eq!(report.loaded.len(), 10);
    // The loaded part equals the saved model, the rest is untouched.
    let after = state(&mut bigger);
    for saved_tensor in state(&mut saved) {
        assert!(after.contains(&saved_tensor), "{} not loaded", saved_tensor.0);
    }
    assert_eq!(after.into_iter().filter(|(n, _)| n.starts_with("6.")).collect::<Vec<_>>(), extra_before);
    // A smaller model leaves file tensors unused.
    let mut smaller = Sequential::new()
        .push(Conv2d::new(Conv2dConfig::new(1, 4, 3).with_padding(1), Init::He, &mut rng).unwrap());
    let report = load_safetensors_with(&mut smaller, &path, &LoadOptions::default().non_strict()).unwrap();
    assert_eq!(report.loaded, ["0.weight", "0.bias"]);
    assert!(report.unexpected.contains(&"4.weight".to_owned()) && report.missing.is_empty());
    std::fs::remove_file(&path).unwrap();
}

/// A backbone (a convolution and its batch norm) nested as child 0 of a classifier, whose
/// tensors are then named "0.0.weight", "0.1.running_mean", ...
fn backbone(seed: u64) -> Sequential {
    let mut rng = StdRng::seed_from_u64(seed);
    Sequential::new()
        .push(Conv2d::new(Conv2dConfig::new(1, 4, 3).with_padding(1), Init::He, &mut rng).unwrap())
        .push(BatchNorm::new_2d(4))
}

fn classifier(seed: u64) -> Sequential {
    let mut rng = StdRng::seed_from_u64(seed);
    Sequential::new()
        .push(backbone(seed))
        .push(MaxPool2d::new(2))
        .push(Flatten::new())
        .push(Dense::new(4 * 3 * 3, 3, Init::He, &mut rng).unwrap())
}

#[test]
fn a_backbone_loads_into_a_bigger_model_by_prefix_and_back() {
    // The backbone's own file into the classifier's "0." part; the head stays as it was.
    let path = temp_path("backbone");
    let mut saved = backbone(5);
    saved.forward(&input(4), Mode::Train).unwrap();
    save_safetensors(&mut saved, &path).unwrap();
    let mut whole = classifier(9);
    let before = state(&mut whole);
    let report =
        load_safetensors_with(&mut whole, &path, &LoadOptions::default().model_prefix("0.")).unwrap();
    assert_eq!(
        report.loaded,
        ["0.0.weight", "0.0.bias", "0.1.weight", "0.1.bias", "0.1.running_mean", "0.1.running_var"]
    );
    assert!(report.missing.is_empty() && report.unexpected.is_empty());
    for (name, tensor) in state(&mut whole) {
        match name.strip_prefix("0.") {
            Some(inner) => {
                assert_eq!(state(&mut saved).into_iter().find(|(n, _)| n == inner).unwrap().1, tensor)
            }
            None => assert!(before.contains(&(name.clone(), tensor)), "{name} changed"),
        }
    }
    // And back: the backbone out of the classifier's file, strictly except for the head.
    let whole_path = temp_path("whole");
    save_safetensors(&mut whole, &whole_path).unwrap();
    let mut fresh = backbone(11);
    let options = LoadOptions::default().file_prefix("0.").non_strict();
    let report = load_safetensors_with(&mut fresh, &whole_path, &options).unwrap();
    assert_eq!(report.unexpected, ["3.bias", "3.weight"]);
    assert_eq!(state(&mut fresh), state(&mut saved));
    // Strict, the head's tensors are unexpected: an error, and the backbone is untouched.
    let mut strict = backbone(12);
    let untouched = state(&mut strict);
    assert!(
        load_safetensors_with(&mut strict, &whole_path, &LoadOptions::default().file_prefix("0.")).is_err()
    );
    assert_eq!(state(&mut strict), untouched);
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_file(&whole_path).unwrap();
}

#[test]
fn a_failed_save_leaves_the_old_file_and_no_temporary() {
    let dir = std::env::temp_dir().join(format!("keel-{}-atomic", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    save_safetensors(&mut model(1, 8), &path).unwrap();
    let before = std::fs::read(&path).unwrap();
    // A save whose rename cannot happen (the target is now a non-empty directory) fails
    // and leaves the directory as it was, with no temporary file beside it.
    let blocked = dir.join("blocked.safetensors");
    std::fs::create_dir_all(blocked.join("inside")).unwrap();
    assert!(matches!(save_safetensors(&mut model(2, 8), &blocked), Err(LayerError::Checkpoint { .. })));
    assert!(blocked.join("inside").is_dir());
    // A save that succeeds replaces the file whole; the directory holds only the two.
    save_safetensors(&mut model(2, 8), &path).unwrap();
    assert_ne!(std::fs::read(&path).unwrap(), before);
    let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["blocked.safetensors", "model.safetensors"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `model`'s tensors as little-endian `F32`, plus `extra` tensors (name, dtype, shape, bytes):
/// a file as PyTorch writes one, with what keel does not save.
fn write_with_extra(
    model: &mut dyn Layer,
    extra: &[(&str, safetensors::Dtype, Vec<usize>, Vec<u8>)],
    path: &std::path::Path,
) {
    let mut tensors: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = state(model)
        .into_iter()
        .map(|(name, t)| {
            let bytes = t.data().iter().flat_map(|v| v.to_le_bytes()).collect();
            (name, safetensors::Dtype::F32, t.shape().to_vec(), bytes)
        })
        .collect();
    tensors.extend(
        extra
            .iter()
            .map(|(name, dtype, shape, bytes)| (name.to_string(), *dtype, shape.clone(), bytes.clone())),
    );
    let views = tensors.iter().map(|(name, dtype, shape, bytes)| {
        (name.as_str(), safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes).unwrap())
    });
    safetensors::serialize_to_file(views, None, path).unwrap();
}

#[test]
fn pytorchs_batch_norm_counter_is_accepted_beside_a_batch_norm_only() {
    let path = temp_path("counter");
    let mut saved = model(1, 8);
    saved.forward(&input(2), Mode::Train).unwrap();
    let counter = |name| (name, safetensors::Dtype::I64, vec![], 3i64.to_le_bytes().to_vec());
    // "1" is the batch norm: PyTorch's state_dict has "1.num_batches_tracked" (an int64 scalar).
    write_with_extra(&mut saved, &[counter("1.num_batches_tracked")], &path);
    let mut loaded = model(5, 8);
    load_safetensors(&mut loaded, &path).unwrap();
    assert_eq!(state(&mut loaded), state(&mut saved));
    let report =
        load_safetensors_with(&mut model(5, 8), &path, &LoadOptions::default().non_strict()).unwrap();
    assert!(report.unexpected.is_empty() && report.missing.is_empty(), "{report:?}");
    // The same counter under a prefix, read through a name map.
    let nested = |seed| Sequential::new().push_named("backbone", model(seed, 8)).unwrap();
    let options = LoadOptions::default().model_prefix("backbone.");
    load_safetensors_with(&mut nested(6), &path, &options).unwrap();

    let detail = |result: keel_layers::Result<()>| match result {
        Err(LayerError::Checkpoint { detail, .. }) => detail,
        other => panic!("expected a checkpoint error, got {other:?}"),
    };
    // Beside a layer that is not a batch norm ("0" is the convolution) it is unexpected.
    write_with_extra(&mut saved, &[counter("0.num_batches_tracked")], &path);
    let error = detail(load_safetensors(&mut model(5, 8), &path));
    assert!(error.contains("0.num_batches_tracked is not in the model"), "{error}");
    // A counter that is not an I64 scalar is an error even beside a batch norm.
    let as_f32 = ("1.num_batches_tracked", safetensors::Dtype::F32, vec![1], 3f32.to_le_bytes().to_vec());
    write_with_extra(&mut saved, &[as_f32], &path);
    let error = detail(load_safetensors(&mut model(5, 8), &path));
    assert!(error.contains("1.num_batches_tracked") && error.contains("I64 scalar"), "{error}");
    std::fs::remove_file(&path).unwrap();
}
