//! Transfer learning: [`freeze`] and [`unfreeze`] by name or prefix, frozen layers doing no
//! gradient work (a frozen backbone is not even visited by backward once the model's input
//! gradient is off) and getting no update, the trainable layers' gradients unchanged by
//! freezing the others, and [`Sequential::replace`] for a new head.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use keel_layers::kernels::optim::SgdConfig;
use keel_layers::{
    freeze, param_counts, unfreeze, zero_grad, ActivationKind, Conv2d, Conv2dConfig, Dense, Flatten, Init,
    Layer, LayerError, Mode, Optimizer, Param, ParamCounts, Result, Sequential, Sgd, Tensor,
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

/// A layer that counts the backward passes of the layer it wraps.
struct Counting {
    inner: Box<dyn Layer>,
    backwards: Arc<AtomicUsize>,
}

impl Layer for Counting {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn forward(&mut self, input: &Tensor, mode: Mode) -> Result<()> {
        self.inner.forward(input, mode)
    }
    fn backward(&mut self, input: &Tensor, grad_output: &Tensor) -> Result<()> {
        self.backwards.fetch_add(1, Ordering::Relaxed);
        self.inner.backward(input, grad_output)
    }
    fn output(&self) -> &Tensor {
        self.inner.output()
    }
    fn grad_input(&self) -> &Tensor {
        self.inner.grad_input()
    }
    fn set_input_grad(&mut self, needed: bool) {
        self.inner.set_input_grad(needed)
    }
    fn visit_params(&mut self, visit: &mut dyn FnMut(&str, &mut Param)) {
        self.inner.visit_params(visit)
    }
}

/// A conv backbone (`"0"`, `"1"`) and a dense head (`"3"`, `"4"`) on (2, 1, 6, 6) images;
/// the backbone's conv layers count their backward passes.
fn model(seed: u64, counter: &Arc<AtomicUsize>) -> Sequential {
    let mut rng = StdRng::seed_from_u64(seed);
    let conv = |c_in, c_out, rng: &mut StdRng| {
        let config = Conv2dConfig::new(c_in, c_out, 3).with_padding(1).with_activation(ActivationKind::Relu);
        let mut layer = Conv2d::new(config, Init::He, rng).unwrap();
        let len = layer.bias.as_ref().unwrap().value.len();
        layer.bias.as_mut().unwrap().value.data_mut().copy_from_slice(tensor(&[len], 3).data());
        Counting { inner: Box::new(layer), backwards: Arc::clone(counter) }
    };
    let first = conv(1, 3, &mut rng);
    let second = conv(3, 4, &mut rng);
    Sequential::new()
        .push(first)
        .push(second)
        .push(Flatten::new())
        .push(Dense::new(4 * 36, 8, Init::He, &mut rng).unwrap().with_activation(ActivationKind::Tanh))
        .push(Dense::new(8, 3, Init::Xavier, &mut rng).unwrap())
}

/// Every parameter's gradient, by name.
fn gradients(model: &mut dyn Layer) -> Vec<(String, Vec<f32>)> {
    let mut grads = Vec::new();
    model.visit_params(&mut |name, param| grads.push((name.to_owned(), param.grad.data().to_vec())));
    grads
}

/// Every parameter's value, by name.
fn values(model: &mut dyn Layer) -> Vec<(String, Vec<f32>)> {
    let mut all = Vec::new();
    model.visit_params(&mut |name, param| all.push((name.to_owned(), param.value.data().to_vec())));
    all
}

/// One forward and backward of `model` on fixed data, gradients cleared first.
fn backward(model: &mut Sequential) {
    let input = tensor(&[2, 1, 6, 6], 11);
    let grad_output = tensor(&[2, 3], 17);
    zero_grad(model);
    model.forward(&input, Mode::Train).unwrap();
    model.backward(&input, &grad_output).unwrap();
}

#[test]
fn prefixes_match_whole_name_components() {
    let counter = Arc::new(AtomicUsize::new(0));
    let mut net = model(1, &counter);
    assert_eq!(freeze(&mut net, "").unwrap(), 8);
    assert_eq!(unfreeze(&mut net, "3").unwrap(), 2);
    assert_eq!(unfreeze(&mut net, "4.").unwrap(), 2);
    assert_eq!(freeze(&mut net, "4.bias").unwrap(), 1);
    let mut frozen = Vec::new();
    net.visit_params(&mut |name, param| {
        if param.frozen {
            frozen.push(name.to_owned())
        }
    });
    assert_eq!(frozen, ["0.weight", "0.bias", "1.weight", "1.bias", "4.bias"]);
    let counts = param_counts(&mut net);
    assert_eq!(
        counts,
        ParamCounts { trainable: 4 * 36 * 8 + 8 + 8 * 3, frozen: 3 * 9 + 3 + 4 * 3 * 9 + 4 + 3 }
    );

    // "4.b" is a prefix of "4.bias" as a string but not as a name; "5" names nothing.
    for prefix in ["4.b", "5", "weight"] {
        match freeze(&mut net, prefix) {
            Err(LayerError::Config { actual, .. }) => assert!(actual.contains(prefix), "{actual}"),
            other => panic!("freeze({prefix:?}): expected a Config error, got {other:?}"),
        }
    }
}

#[test]
fn a_frozen_backbone_is_skipped_and_the_head_gradients_do_not_change() {
    let counter = Arc::new(AtomicUsize::new(0));
    let mut full = model(2, &counter);
    full.set_input_grad(false);
    backward(&mut full);
    assert_eq!(counter.load(Ordering::Relaxed), 2, "both conv layers run backward when trainable");

    let frozen_counter = Arc::new(AtomicUsize::new(0));
    let mut frozen = model(2, &frozen_counter);
    frozen.set_input_grad(false);
    freeze(&mut frozen, "0").unwrap();
    freeze(&mut frozen, "1").unwrap();
    backward(&mut frozen);
    assert_eq!(frozen_counter.load(Ordering::Relaxed), 0, "a frozen backbone runs no backward");

    for ((name, want), (_, got)) in gradients(&mut full).into_iter().zip(gradients(&mut frozen)) {
        if name.starts_with('0') || name.starts_with('1') {
            assert!(got.iter().all(|&g| g == 0.0), "{name}: a frozen parameter got a gradient");
        } else {
            assert_eq!(got, want, "{name}: the head's gradient changed with the backbone frozen");
        }
    }

    // Unfreezing the second conv layer brings its backward back, and only its.
    unfreeze(&mut frozen, "1").unwrap();
    backward(&mut frozen);
    assert_eq!(frozen_counter.load(Ordering::Relaxed), 1);
    let full_grads = gradients(&mut full);
    for ((name, want), (_, got)) in full_grads.into_iter().zip(gradients(&mut frozen)) {
        if !name.starts_with('0') {
            assert_eq!(got, want, "{name}");
        }
    }
}

#[test]
fn a_frozen_layer_in_the_middle_passes_gradients_through_and_keeps_its_values() {
    let counter = Arc::new(AtomicUsize::new(0));
    let mut full = model(3, &counter);
    full.set_input_grad(false);
    backward(&mut full);

    let mut net = model(3, &counter);
    net.set_input_grad(false);
    freeze(&mut net, "1").unwrap();
    freeze(&mut net, "3.weight").unwrap();
    backward(&mut net);
    for ((name, want), (_, got)) in gradients(&mut full).into_iter().zip(gradients(&mut net)) {
        if name.starts_with('1') || name == "3.weight" {
            assert!(got.iter().all(|&g| g == 0.0), "{name}: a frozen parameter got a gradient");
        } else {
            assert_eq!(got, want, "{name}: gradient changed by freezing another layer");
        }
    }

    let before = values(&mut net);
    let mut sgd = Sgd::new(SgdConfig { lr: 0.1, momentum: 0.9, ..SgdConfig::default() }).unwrap();
    sgd.step(&mut net).unwrap();
    for ((name, old), (_, new)) in before.into_iter().zip(values(&mut net)) {
        let frozen = name.starts_with('1') || name == "3.weight";
        assert_eq!(old == new, frozen, "{name}: frozen parameters alone keep their values");
    }
}

#[test]
fn replace_puts_a_new_head_in_place() {
    let counter = Arc::new(AtomicUsize::new(0));
    let mut net = model(4, &counter);
    let mut rng = StdRng::seed_from_u64(9);
    let old = net.replace("4", Dense::new(8, 5, Init::Xavier, &mut rng).unwrap()).unwrap();
    assert_eq!(old.name(), Dense::new(8, 3, Init::Xavier, &mut rng).unwrap().name());
    let input = tensor(&[2, 1, 6, 6], 11);
    net.forward(&input, Mode::Eval).unwrap();
    assert_eq!(net.output().shape(), [2, 5]);
    assert_eq!(net.names(), ["0", "1", "2", "3", "4"]);

    match net.replace("fc", Dense::new(8, 5, Init::Xavier, &mut rng).unwrap()) {
        Err(LayerError::Config { actual, expected, .. }) => {
            assert!(actual.contains("fc") && expected.contains("\"4\""), "{expected} / {actual}")
        }
        other => panic!("expected a Config error, got {:?}", other.map(|layer| layer.name())),
    }
}
