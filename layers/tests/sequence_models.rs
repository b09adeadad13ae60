//! Many-to-many and one-to-many: `FlattenSteps` (rows in the input's order, a reshaped
//! gradient, gradient checks alone and in `Sequential[Lstm, FlattenSteps, Dense]` in both
//! layouts, a per-step softmax cross-entropy equal to the mean of the steps' own, shape
//! errors), and `recurrent::sampling` (temperature 0 and near 0 give the arg-max, sampled
//! frequencies match the probabilities, a seed repeats its draws).

use keel_layers::nn::{argmax, sample, softmax_with_temperature};
use keel_layers::{
    gradcheck, Decoding, Dense, FlattenSteps, Init, Layer, LayerError, Loss, Lstm, Mode, RecurrentConfig,
    Sampler, Sequential, SoftmaxCrossEntropy, Tensor,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Values in [-1, 1) with both signs, none within 0.05 of 0.
fn values(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            let u = ((i as u32 ^ seed).wrapping_mul(2_654_435_761) >> 8) as f32 / (1u32 << 23) as f32 - 1.0;
            if u.abs() < 0.05 {
                u.signum() * 0.05 + u
            } else {
                u
            }
        })
        .collect()
}

fn tensor(shape: &[usize], seed: u32) -> Tensor {
    Tensor::from_vec(shape, values(shape.iter().product(), seed)).unwrap()
}

#[test]
fn flatten_steps_keeps_the_order_and_reshapes_the_gradient() {
    let x = tensor(&[4, 3, 5], 3);
    let mut layer = FlattenSteps::new();
    layer.forward(&x, Mode::Train).unwrap();
    assert_eq!(layer.output().shape(), [12, 5]);
    assert_eq!(layer.output().data(), x.data());
    let dy = tensor(&[12, 5], 9);
    layer.backward(&x, &dy).unwrap();
    assert_eq!(layer.grad_input().shape(), [4, 3, 5]);
    assert_eq!(layer.grad_input().data(), dy.data());
    let report = gradcheck(&mut layer, &x, Mode::Train, 1e-2).unwrap();
    assert!(report.max_error() < 1e-3, "{report:?}");
}

#[test]
fn lstm_flatten_steps_dense_passes_gradcheck() {
    for batch_first in [false, true] {
        let config = RecurrentConfig::new(3, 4).with_batch_first(batch_first);
        let mut rng = StdRng::seed_from_u64(5);
        let mut model = Sequential::new()
            .push(Lstm::new(config, &mut rng).unwrap())
            .push(FlattenSteps::new())
            .push(Dense::new(4, 3, Init::Xavier, &mut rng).unwrap());
        let x = tensor(if batch_first { &[2, 5, 3] } else { &[5, 2, 3] }, 17);
        let report = gradcheck(&mut model, &x, Mode::Train, 1e-2).unwrap();
        assert!(report.max_error() < 2e-2, "{batch_first}: {report:?}");
        assert_eq!(model.output().shape(), [10, 3]);
    }
}

#[test]
fn per_step_cross_entropy_is_the_mean_over_steps() {
    // Logits of 3 steps × 2 sequences, time-major rows t·batch + b; the loss over all rows is
    // the mean of each step's own loss (each a mean over its 2 rows).
    let (seq, batch, classes) = (3, 2, 4);
    let logits = tensor(&[seq * batch, classes], 21);
    let targets: Vec<u32> = (0..seq * batch).map(|i| (i * 3 % classes) as u32).collect();
    let mut loss = SoftmaxCrossEntropy::new();
    let all = loss.forward(&logits, &targets).unwrap();
    let mut sum = 0.0;
    for t in 0..seq {
        let rows = t * batch * classes..(t + 1) * batch * classes;
        let step = Tensor::from_vec(&[batch, classes], logits.data()[rows].to_vec()).unwrap();
        sum += SoftmaxCrossEntropy::new().forward(&step, &targets[t * batch..(t + 1) * batch]).unwrap();
    }
    assert!((all - sum / seq as f32).abs() < 1e-6, "{all} vs {}", sum / seq as f32);
}

#[test]
fn flatten_steps_rejects_wrong_shapes() {
    let is_shape = |error: LayerError| matches!(error, LayerError::Shape { .. });
    let mut layer = FlattenSteps::new();
    for shape in [&[6, 4][..], &[2, 3, 4, 5]] {
        assert!(is_shape(layer.forward(&Tensor::zeros(shape), Mode::Eval).unwrap_err()), "{shape:?}");
    }
    let x = tensor(&[2, 3, 4], 1);
    layer.forward(&x, Mode::Train).unwrap();
    assert!(is_shape(layer.backward(&x, &Tensor::zeros(&[2, 3, 4])).unwrap_err()));
}

#[test]
fn temperature_towards_zero_gives_the_argmax() {
    let logits = [0.3, 2.0, -1.0, 1.9, 2.0];
    assert_eq!(argmax(&logits), 1, "the first maximum");
    assert_eq!(argmax(&[f32::NAN, 0.5, 0.2]), 1);
    let mut probs = [0.0; 5];
    softmax_with_temperature(&logits, 0.0, &mut probs);
    assert_eq!(probs, [0.0, 1.0, 0.0, 0.0, 0.0]);
    // Near 0 the two tied maxima share the mass, the rest vanishes.
    softmax_with_temperature(&logits, 1e-3, &mut probs);
    assert!((probs[1] - 0.5).abs() < 1e-6 && (probs[4] - 0.5).abs() < 1e-6, "{probs:?}");
    assert!(probs[3] < 1e-30, "{probs:?}");
    let mut rng = StdRng::seed_from_u64(1);
    let mut greedy = Sampler::new(Decoding::Temperature(0.0));
    let unique = [0.3, 2.0, -1.0, 1.9];
    assert!((0..100).all(|_| greedy.next(&unique, &mut rng) == 1));
    assert!((0..100).all(|_| Sampler::new(Decoding::Greedy).next(&unique, &mut rng) == 1));
    // Temperature 1 is the plain softmax; a higher one is flatter.
    softmax_with_temperature(&unique, 1.0, &mut probs[..4]);
    let e: Vec<f64> = unique.iter().map(|&z| (z as f64).exp()).collect();
    let total: f64 = e.iter().sum();
    for (p, e) in probs.iter().zip(&e) {
        assert!((*p as f64 - e / total).abs() < 1e-6);
    }
    let mut flat = [0.0; 4];
    softmax_with_temperature(&unique, 10.0, &mut flat);
    assert!(flat[1] < probs[1] && flat[2] > probs[2]);
}

#[test]
fn sampled_frequencies_match_the_probabilities() {
    // n = 200,000 draws: a frequency's standard deviation is sqrt(p(1-p)/n) <= 0.0012, so a
    // tolerance of 0.005 is over 4 deviations.
    let logits = [1.0, 0.0, -1.0, 2.0, -30.0];
    let mut sampler = Sampler::new(Decoding::Temperature(0.8));
    let mut rng = StdRng::seed_from_u64(42);
    let n = 200_000;
    let mut counts = [0usize; 5];
    for _ in 0..n {
        counts[sampler.next(&logits, &mut rng)] += 1;
    }
    let mut probs = [0.0; 5];
    softmax_with_temperature(&logits, 0.8, &mut probs);
    assert_eq!(sampler.probs(), probs);
    for (count, p) in counts.iter().zip(probs) {
        let frequency = *count as f64 / n as f64;
        assert!((frequency - p as f64).abs() < 5e-3, "{counts:?} vs {probs:?}");
    }
    // A zero probability is never drawn.
    let mut rng = StdRng::seed_from_u64(3);
    assert!((0..10_000).all(|_| sample(&[0.5, 0.0, 0.5], &mut rng) != 1));
}

#[test]
fn a_seed_repeats_its_draws() {
    let logits = [0.5, 0.1, 0.9, -0.3, 0.0, 0.2];
    let draw = |seed| {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut sampler = Sampler::new(Decoding::Temperature(1.0));
        (0..200).map(|_| sampler.next(&logits, &mut rng)).collect::<Vec<_>>()
    };
    assert_eq!(draw(7), draw(7));
    assert_ne!(draw(7), draw(8));
}
