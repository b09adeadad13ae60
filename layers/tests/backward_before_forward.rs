//! `backward` before any `forward` is the same `LayerError::State` in every layer: the
//! layer's name and "backward before forward", whatever the layer keeps between passes, and
//! nothing written. A `forward` then makes the same call succeed.

use keel_layers::{
    Activation, ActivationKind, AdditiveAttention, AvgPool2d, BatchNorm, Branches, Conv2d, Conv2dConfig,
    Dense, Dropout, Embedding, Flatten, FlattenSteps, GlobalAttention, GlobalAvgPool2d, Gru, GruConfig, Init,
    LastStep, Layer, LayerError, Lstm, LstmConfig, MaxPool2d, MeanOverTime, Merge, Mode, Rnn, RnnConfig,
    ScaledDotProductAttention, Sequential, Tensor,
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

/// Asserts that `result` is the State error of a backward before a forward in `layer`.
fn assert_before_forward(result: keel_layers::Result<()>, layer: &str) {
    match result {
        Err(LayerError::State(message)) => {
            assert_eq!(message, format!("{layer}: backward before forward"), "{layer}");
        }
        other => panic!("{layer}: expected the State error of a backward before forward, got {other:?}"),
    }
}

/// Calls backward on a fresh `layer` (its input `input`, the output shape `output`), checks
/// the error and that no gradient was written, then forward and backward succeed.
fn check(layer: Box<dyn Layer>, input: Tensor, output: &[usize]) {
    let name = layer.name();
    check_named(layer, input, output, &name);
}

/// [`check`] for a layer whose error names `name`.
fn check_named(mut layer: Box<dyn Layer>, input: Tensor, output: &[usize], name: &str) {
    let grad_output = tensor(output, 7);
    assert_before_forward(layer.backward(&input, &grad_output), name);
    layer.visit_params(&mut |param_name, param| {
        assert!(param.grad.data().iter().all(|&g| g == 0.0), "{name}: {param_name} gradient written");
    });
    layer.forward(&input, Mode::Train).unwrap_or_else(|e| panic!("{name}: forward: {e}"));
    assert_eq!(layer.output().shape(), output, "{name}");
    layer.backward(&input, &grad_output).unwrap_or_else(|e| panic!("{name}: backward after forward: {e}"));
}

#[test]
fn every_layer_refuses_backward_before_forward_with_one_state_error() {
    let rng = &mut StdRng::seed_from_u64(1);
    let image = || tensor(&[2, 3, 6, 6], 1);
    let sequence = || tensor(&[4, 2, 3], 2);
    check(Box::new(Dense::new(5, 4, Init::He, rng).unwrap()), tensor(&[2, 5], 1), &[2, 4]);
    let conv = Conv2d::new(Conv2dConfig::new(3, 4, 3), Init::He, rng).unwrap();
    check(Box::new(conv), image(), &[2, 4, 4, 4]);
    check(Box::new(MaxPool2d::new(2)), image(), &[2, 3, 3, 3]);
    check(Box::new(AvgPool2d::new(2)), image(), &[2, 3, 3, 3]);
    check(Box::new(GlobalAvgPool2d::new()), image(), &[2, 3]);
    check(Box::new(BatchNorm::new_2d(3)), image(), &[2, 3, 6, 6]);
    check(Box::new(Dropout::new(0.5, 3).unwrap()), tensor(&[2, 5], 1), &[2, 5]);
    check(Box::new(Flatten::new()), image(), &[2, 108]);
    check(Box::new(Activation::new(ActivationKind::Relu)), tensor(&[2, 5], 1), &[2, 5]);
    let ids = Tensor::from_vec(&[2, 3], vec![0.0, 4.0, 2.0, 1.0, 1.0, 3.0]).unwrap();
    check(Box::new(Embedding::new(5, 4, None, rng).unwrap()), ids, &[2, 3, 4]);
    check(Box::new(Rnn::new(RnnConfig::new(3, 5), rng).unwrap()), sequence(), &[4, 2, 5]);
    check(Box::new(Gru::new(GruConfig::new(3, 5), rng).unwrap()), sequence(), &[4, 2, 5]);
    let lstm = LstmConfig { num_layers: 2, bidirectional: true, ..LstmConfig::new(3, 5) };
    check(Box::new(Lstm::new(lstm, rng).unwrap()), sequence(), &[4, 2, 10]);
    check(Box::new(FlattenSteps::new()), sequence(), &[8, 3]);
    check(Box::new(LastStep::new()), sequence(), &[2, 3]);
    check(Box::new(MeanOverTime::new()), sequence(), &[2, 3]);
    let residual = Branches::new(Merge::Add)
        .branch("conv", Conv2d::new(Conv2dConfig::new(3, 3, 3).with_padding(1), Init::He, rng).unwrap())
        .unwrap()
        .identity()
        .with_activation(ActivationKind::Relu);
    check(Box::new(residual), image(), &[2, 3, 6, 6]);
    let model = Sequential::new()
        .push(Conv2d::new(Conv2dConfig::new(3, 2, 3), Init::He, rng).unwrap())
        .push(Flatten::new())
        .push(Dense::new(32, 3, Init::He, rng).unwrap());
    // A container's backward reaches its last layer first, which names itself.
    check_named(Box::new(model), image(), &[2, 3], "dense(32 -> 3)");
}

#[test]
fn attentions_refuse_backward_before_forward_with_the_same_error() {
    let rng = &mut StdRng::seed_from_u64(2);
    let (query, key, value) = (tensor(&[2, 3, 4], 1), tensor(&[2, 5, 4], 2), tensor(&[2, 5, 6], 3));
    let grad = tensor(&[2, 3, 6], 4);

    let mut dot = ScaledDotProductAttention::new();
    assert_before_forward(dot.backward(&query, &key, &value, &grad), "scaled_dot_product_attention");
    dot.forward(&query, &key, &value, None).unwrap();
    dot.backward(&query, &key, &value, &grad).unwrap();

    let mut additive = AdditiveAttention::new(4, 4, 8, Init::Xavier, rng).unwrap();
    assert_before_forward(additive.backward(&query, &key, &value, &grad), additive.name());
    additive.forward(&query, &key, &value, None).unwrap();
    additive.backward(&query, &key, &value, &grad).unwrap();

    let mut global = GlobalAttention::new(4, 6, 8, 5, rng).unwrap();
    let (query, memory, grad) = (tensor(&[2, 3, 4], 1), tensor(&[2, 5, 6], 2), tensor(&[2, 3, 5], 3));
    assert_before_forward(global.backward(&query, &memory, &grad), global.name());
    global.forward(&query, &memory, None).unwrap();
    global.backward(&query, &memory, &grad).unwrap();
}
