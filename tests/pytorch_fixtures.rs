//! PyTorch fixtures, both ways (`tests/fixtures/pytorch/`, made and checked by
//! `make_fixtures.py` there, whose docstring says how to run it; its twins are the PyTorch
//! definitions of the models below).
//!
//! PyTorch to keel: each `<model>.weights.safetensors` is a twin's `state_dict()` as PyTorch
//! saves it (batch norms' `num_batches_tracked` counters included); it loads **strictly** into
//! the keel model, which then gives PyTorch's outputs of `<model>.io.safetensors` on its
//! input within [`TOLERANCE`]. Saving the loaded model writes PyTorch's tensors back bit for
//! bit (less the counters), and loading that file restores the model bit for bit.
//!
//! keel to PyTorch: `keel_<model>.safetensors` is a keel model's own seeded weights as
//! [`save_safetensors`] writes them, and `keel_<model>.io.safetensors` its eval-mode outputs
//! on the same input; `make_fixtures.py --check-keel` loads each into the twin with
//! `strict=True` and compares outputs. With `KEEL_WRITE_FIXTURES=1` the tests here write those
//! two files; without, they check that keel still writes the committed weights byte for byte
//! and still gives the committed outputs.
//!
//! Run: `cargo test --release --test pytorch_fixtures` (`-- --nocapture` prints the errors).

use std::collections::BTreeMap;
use std::path::PathBuf;

use keel::layers::models::{resnet, ResNetConfig, ResNetStem};
use keel::layers::{
    lenet5_bn, load_safetensors, save_safetensors, Activation, ActivationKind, BatchNorm, Conv2d,
    Conv2dConfig, Dense, Embedding, Flatten, Gru, GruConfig, Init, Layer, Lstm, LstmConfig, MaxPool2d, Mode,
    Sequential, Tensor,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

/// The bound on `max|keel - torch| / max|torch|` over each output tensor: an error relative to
/// the tensor's scale, as outputs near 0 come from cancelling sums. f32 rounds each operation
/// to 2⁻²⁴ ≈ 6e-8 relative; a sum of K products (K ≤ 400 here: 147 in the ResNet's stem, 400
/// in LeNet's first dense layer) typically errs by √K of those, at most K, and the errors of up
/// to a dozen layers, batch norms' divisions and five recurrent steps add up, to about 1e-6 of
/// the scale at most (the runs measure 0 to 3e-7: `-- --nocapture` prints them). 1e-4 leaves a
/// margin of 100 for other summation orders (another SIMD path, PyTorch's oneDNN) while one
/// weight tensor off by 0.01 errs by 7e-3 (a ResNet convolution) and 1.4e-2 (an LSTM's
/// `weight_hh_l1_reverse`) in `a_perturbed_weight_fails_the_comparison`, and a wrong layout or
/// gate order by far more.
const TOLERANCE: f32 = 1e-4;

/// The models of the fixtures: the keel side of each PyTorch twin of `make_fixtures.py`.
const PYTORCH_MODELS: [&str; 6] = ["small_cnn", "resnet", "lstm", "gru", "embedding", "lenet5_bn"];

fn fixture(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch").join(file)
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("keel-pytorch-{}-{name}.safetensors", std::process::id()))
}

/// A fixture's inputs and outputs: `F32` tensors by name, and the ids of an `I64` `input`.
#[derive(Default)]
struct Io {
    tensors: BTreeMap<String, Tensor>,
    ids: Option<(Vec<u32>, Vec<usize>)>,
}

fn read_io(file: &str) -> Io {
    let bytes = std::fs::read(fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let mut io = Io::default();
    for (name, view) in tensors.tensors() {
        let shape = view.shape().to_vec();
        match view.dtype() {
            Dtype::F32 => {
                let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()));
                io.tensors.insert(name, Tensor::from_vec(&shape, values.collect()).unwrap());
            }
            Dtype::I64 => {
                let ids =
                    view.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap()) as u32);
                io.ids = Some((ids.collect(), shape));
            }
            other => panic!("{file}: {name} is {other:?}"),
        }
    }
    io
}

/// Writes `tensors` as little-endian `F32` safetensors.
fn write_io(tensors: &BTreeMap<String, Tensor>, path: &std::path::Path) {
    let bytes: Vec<(&str, &[usize], Vec<u8>)> = tensors
        .iter()
        .map(|(name, t)| (name.as_str(), t.shape(), t.data().iter().flat_map(|v| v.to_le_bytes()).collect()))
        .collect();
    let views = bytes
        .iter()
        .map(|(name, shape, data)| (*name, TensorView::new(Dtype::F32, shape.to_vec(), data).unwrap()));
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// A keel model of the fixtures, and how it runs on a fixture's inputs.
enum Model {
    Plain(Sequential),
    Lstm(Lstm),
    Gru(Gru),
    Embedding(Embedding),
}

impl Model {
    /// The keel side of the twin `name` of `make_fixtures.py`, its weights drawn from `seed`.
    fn build(name: &str, seed: u64) -> Model {
        let rng = &mut StdRng::seed_from_u64(seed);
        let relu = || Activation::new(ActivationKind::Relu);
        match name {
            "small_cnn" => Model::Plain(
                Sequential::new()
                    .push_named(
                        "conv",
                        Conv2d::new(Conv2dConfig::new(3, 4, 3).with_padding(1), Init::He, rng).unwrap(),
                    )
                    .and_then(|s| s.push_named("bn", BatchNorm::new_2d(4)))
                    .and_then(|s| s.push_named("relu", relu()))
                    .and_then(|s| s.push_named("pool", MaxPool2d::new(2)))
                    .and_then(|s| s.push_named("flatten", Flatten::new()))
                    .and_then(|s| s.push_named("fc", Dense::new(4 * 4 * 4, 5, Init::He, rng)?))
                    .unwrap(),
            ),
            "resnet" => {
                // The script's RESNET: torchvision's layout and stem, narrow stages.
                let config = ResNetConfig {
                    in_channels: 3,
                    stem: ResNetStem::ImageNet,
                    widths: vec![4, 8, 8, 16],
                    depths: vec![2, 1, 1, 1],
                    classes: 10,
                };
                Model::Plain(resnet(&config, rng).unwrap())
            }
            "lstm" => Model::Lstm(
                Lstm::new(LstmConfig::new(3, 4).with_layers(2).with_bidirectional(true), rng).unwrap(),
            ),
            "gru" => {
                Model::Gru(Gru::new(GruConfig::new(3, 4).with_layers(2).with_batch_first(true), rng).unwrap())
            }
            "embedding" => Model::Embedding(Embedding::new(10, 4, Some(0), rng).unwrap()),
            "lenet5_bn" => Model::Plain(lenet5_bn(rng).unwrap()),
            _ => panic!("no model {name}"),
        }
    }

    fn layer(&mut self) -> &mut dyn Layer {
        match self {
            Model::Plain(m) => m,
            Model::Lstm(m) => m,
            Model::Gru(m) => m,
            Model::Embedding(m) => m,
        }
    }

    /// Eval-mode outputs on the fixture's inputs, named as the fixture names them.
    fn run(&mut self, io: &Io) -> BTreeMap<String, Tensor> {
        let input = |name: &str| io.tensors[name].clone();
        let mut outputs = BTreeMap::new();
        match self {
            Model::Plain(m) => {
                m.forward(&input("input"), Mode::Eval).unwrap();
                outputs.insert("output".into(), m.output().clone());
            }
            Model::Lstm(m) => {
                m.set_initial_state(Some(input("h0")), Some(input("c0")));
                m.forward(&input("input"), Mode::Eval).unwrap();
                let (h_n, c_n) = m.final_state();
                outputs.insert("h_n".into(), h_n.clone());
                outputs.insert("c_n".into(), c_n.clone());
                outputs.insert("output".into(), m.output().clone());
            }
            Model::Gru(m) => {
                m.set_initial_state(Some(input("h0")));
                m.forward(&input("input"), Mode::Eval).unwrap();
                outputs.insert("h_n".into(), m.final_state().clone());
                outputs.insert("output".into(), m.output().clone());
            }
            Model::Embedding(m) => {
                let (ids, shape) = io.ids.as_ref().expect("the embedding's input is int64 ids");
                m.forward_indices(ids, shape).unwrap();
                outputs.insert("output".into(), m.output().clone());
            }
        }
        outputs
    }
}

/// Every parameter and buffer, by name.
fn state(model: &mut dyn Layer) -> BTreeMap<String, Tensor> {
    let mut all = BTreeMap::new();
    model.visit_params(&mut |name, p| drop(all.insert(name.to_owned(), p.value.clone())));
    model.visit_buffers(&mut |name, b| drop(all.insert(name.to_owned(), b.clone())));
    all
}

/// `(max|got - want|, max|got - want| / max|want|)` of two tensors of one shape.
fn errors(got: &Tensor, want: &Tensor) -> (f32, f32) {
    assert_eq!(got.shape(), want.shape());
    let abs = got.data().iter().zip(want.data()).map(|(g, w)| (g - w).abs()).fold(0.0, f32::max);
    let scale = want.data().iter().map(|w| w.abs()).fold(0.0, f32::max);
    (abs, abs / scale.max(f32::MIN_POSITIVE))
}

/// The largest relative error over the outputs of `expected` (all of them present in `got`),
/// printed per output with the absolute one.
fn worst_error(label: &str, got: &BTreeMap<String, Tensor>, expected: &BTreeMap<String, Tensor>) -> f32 {
    let mut worst = 0.0f32;
    for (name, want) in expected {
        let (abs, rel) = errors(&got[name], want);
        println!("{label}: {name} {:?}: max abs error {abs:.2e}, relative {rel:.2e}", want.shape());
        worst = worst.max(rel);
    }
    worst
}

/// The tensors of a safetensors file as (dtype, shape, bytes), by name.
fn raw(path: &std::path::Path) -> BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    file.tensors().into_iter().map(|(n, v)| (n, (v.dtype(), v.shape().to_vec(), v.data().to_vec()))).collect()
}

/// PyTorch's file loads strictly and gives PyTorch's outputs; keel saves PyTorch's tensors
/// back (less the batch counters), and that file round-trips bit for bit.
fn check_pytorch_fixture(name: &str) {
    let weights = fixture(&format!("{name}.weights.safetensors"));
    let io = read_io(&format!("{name}.io.safetensors"));
    let mut model = Model::build(name, 1);
    load_safetensors(model.layer(), &weights).unwrap_or_else(|e| panic!("{name}: {e}"));
    let outputs = model.run(&io);
    let expected: BTreeMap<String, Tensor> = io
        .tensors
        .iter()
        .filter(|(n, _)| !["input", "h0", "c0"].contains(&n.as_str()))
        .map(|(n, t)| (n.clone(), t.clone()))
        .collect();
    assert!(!expected.is_empty());
    let worst = worst_error(&format!("PyTorch -> keel {name}"), &outputs, &expected);
    assert!(worst <= TOLERANCE, "{name}: relative error {worst:e} > {TOLERANCE:e}");

    // keel's save is PyTorch's state_dict less the counters, bit for bit.
    let path = temp_path(name);
    save_safetensors(model.layer(), &path).unwrap();
    let mut pytorch = raw(&weights);
    pytorch.retain(|n, _| !n.ends_with("num_batches_tracked"));
    assert_eq!(raw(&path), pytorch, "{name}: keel's save differs from PyTorch's file");
    // And loads strictly into a model drawn from another seed, restoring it bit for bit.
    let mut restored = Model::build(name, 2);
    assert_ne!(state(restored.layer()), state(model.layer()));
    load_safetensors(restored.layer(), &path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(state(restored.layer()), state(model.layer()));
    assert_eq!(restored.run(&io), outputs);
}

#[test]
fn small_cnn_from_pytorch() {
    check_pytorch_fixture("small_cnn");
}

#[test]
fn resnet_from_pytorch() {
    check_pytorch_fixture("resnet");
}

#[test]
fn lstm_from_pytorch() {
    check_pytorch_fixture("lstm");
}

#[test]
fn gru_from_pytorch() {
    check_pytorch_fixture("gru");
}

#[test]
fn embedding_from_pytorch() {
    check_pytorch_fixture("embedding");
}

/// The main job's model (`lenet5_bn`, trained by `cargo run --release`): the README's claim
/// that its file loads strictly into the twin in `lenet5_bn`'s docs rests on this (and on the
/// script, which loads the same tensors less the counters into the twin strictly and shows the
/// plain `nn.Sequential` refusing them).
#[test]
fn main_job_lenet5_bn_from_pytorch() {
    check_pytorch_fixture("lenet5_bn");
}

#[test]
fn a_perturbed_weight_fails_the_comparison() {
    for (name, tensor) in [("resnet", "layer3.0.conv2.weight"), ("lstm", "weight_hh_l1_reverse")] {
        let io = read_io(&format!("{name}.io.safetensors"));
        let mut model = Model::build(name, 1);
        load_safetensors(model.layer(), fixture(&format!("{name}.weights.safetensors"))).unwrap();
        let mut found = false;
        model.layer().visit_params(&mut |n, p| {
            if n == tensor {
                // Every element: a single one can meet only zeros (a ReLU's) in this input.
                p.value.data_mut().iter_mut().for_each(|v| *v += 0.01);
                found = true;
            }
        });
        assert!(found, "{name} has no {tensor}");
        let outputs = model.run(&io);
        let expected = io
            .tensors
            .iter()
            .filter(|(n, _)| n.as_str() == "output")
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        let worst = worst_error(&format!("perturbed {name}"), &outputs, &expected);
        assert!(worst > 10.0 * TOLERANCE, "{name}: a changed {tensor} went unseen ({worst:e})");
    }
    // Every model of the list has its fixture files.
    for name in PYTORCH_MODELS {
        assert!(fixture(&format!("{name}.weights.safetensors")).exists(), "{name}");
    }
}

/// Values in [-1, 1) from a multiplicative hash of the position and `seed`.
fn hashed(len: usize, seed: u32) -> impl Iterator<Item = f32> {
    (0..len)
        .map(move |i| ((i as u32 ^ seed).wrapping_mul(2_654_435_761) >> 8) as f32 / (1u32 << 23) as f32 - 1.0)
}

/// A keel model with its own init, made less trivial: biases in ±0.5 (keel's start at 0),
/// batch norms' γ in 1 ± 0.5 and running statistics mean ±0.5, variance 1 ± 0.5 (from 1, 0,
/// 0 and 1), so a bias or a statistic read from the wrong place changes the outputs.
fn keel_model(name: &str) -> Model {
    let mut model = Model::build(name, 7);
    let mut seed = 0;
    model.layer().visit_params(&mut |n, p| {
        seed += 1;
        let batch_norm_weight = n.ends_with("weight") && p.value.shape().len() == 1;
        let centre = if n.ends_with("bias") {
            0.0
        } else if batch_norm_weight {
            1.0
        } else {
            return;
        };
        let len = p.value.len();
        p.value.data_mut().iter_mut().zip(hashed(len, seed)).for_each(|(v, r)| *v = centre + 0.5 * r);
    });
    model.layer().visit_buffers(&mut |n, b| {
        seed += 1;
        let centre = if n.ends_with("running_var") { 1.0 } else { 0.0 };
        let len = b.len();
        b.data_mut().iter_mut().zip(hashed(len, seed)).for_each(|(v, r)| *v = centre + 0.5 * r);
    });
    model
}

/// Writes (with `KEEL_WRITE_FIXTURES=1`) or checks `keel_<name>.safetensors` and
/// `keel_<name>.io.safetensors`, the files `make_fixtures.py --check-keel` loads in PyTorch.
fn keel_fixture(name: &str) {
    let mut model = keel_model(name);
    let io = read_io(&format!("{name}.io.safetensors"));
    let outputs = model.run(&io);
    let (weights, outputs_file) =
        (fixture(&format!("keel_{name}.safetensors")), fixture(&format!("keel_{name}.io.safetensors")));
    if std::env::var_os("KEEL_WRITE_FIXTURES").is_some_and(|v| v == "1") {
        save_safetensors(model.layer(), &weights).unwrap();
        write_io(&outputs, &outputs_file);
        println!("wrote {} and {}", weights.display(), outputs_file.display());
        return;
    }
    // The committed weights are what keel writes now, byte for byte.
    let path = temp_path(&format!("keel-{name}"));
    save_safetensors(model.layer(), &path).unwrap();
    let (now, committed) = (std::fs::read(&path).unwrap(), std::fs::read(&weights).unwrap());
    std::fs::remove_file(&path).unwrap();
    assert!(now == committed, "{name}: keel now writes other weights than {}: rerun with KEEL_WRITE_FIXTURES=1 and the script's --check-keel", weights.display());
    // And keel still gives the committed outputs, from the committed file.
    let mut loaded = Model::build(name, 3);
    load_safetensors(loaded.layer(), &weights).unwrap();
    let committed = read_io(&format!("keel_{name}.io.safetensors")).tensors;
    assert_eq!(committed.keys().collect::<Vec<_>>(), outputs.keys().collect::<Vec<_>>());
    let worst =
        worst_error(&format!("keel {name} against its committed outputs"), &loaded.run(&io), &committed);
    assert!(worst <= TOLERANCE, "{name}: relative error {worst:e} > {TOLERANCE:e}");
}

#[test]
fn small_cnn_to_pytorch() {
    keel_fixture("small_cnn");
}

#[test]
fn resnet_to_pytorch() {
    keel_fixture("resnet");
}

#[test]
fn lstm_to_pytorch() {
    keel_fixture("lstm");
}

#[test]
fn gru_to_pytorch() {
    keel_fixture("gru");
}

#[test]
fn embedding_to_pytorch() {
    keel_fixture("embedding");
}
