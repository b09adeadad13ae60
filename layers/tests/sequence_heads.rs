//! The many-to-one heads `LastStep` and `MeanOverTime`: the values they read in both layouts
//! and both directions, the gradient they scatter (overwritten, zeros elsewhere), gradient
//! checks alone and behind an LSTM inside a `Sequential`, shape errors, and a short `fit` of
//! `Sequential[Lstm, LastStep, Dense]` on the 8x8 digits read row by row.

use keel_layers::kernels::optim::AdamConfig;
use keel_layers::{
    evaluate, fit, gradcheck, Adam, Dataset, Dense, FitConfig, Init, LastStep, Layer, LayerError, Lstm,
    MeanOverTime, Mode, RecurrentConfig, Sequential, SoftmaxCrossEntropy, Tensor,
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

/// `x[t, b, f] = 100·t + 10·b + f` in the given layout, so a value names its position.
fn positional(seq: usize, batch: usize, features: usize, batch_first: bool) -> Tensor {
    let mut data = Vec::new();
    let (outer, inner) = if batch_first { (batch, seq) } else { (seq, batch) };
    for o in 0..outer {
        for i in 0..inner {
            let (t, b) = if batch_first { (i, o) } else { (o, i) };
            data.extend((0..features).map(|f| (100 * t + 10 * b + f) as f32));
        }
    }
    let shape = if batch_first { [batch, seq, features] } else { [seq, batch, features] };
    Tensor::from_vec(&shape, data).unwrap()
}

#[test]
fn last_step_reads_the_last_step_and_the_reverse_first_step() {
    let (seq, batch, features) = (5, 3, 4);
    for batch_first in [false, true] {
        let x = positional(seq, batch, features, batch_first);
        let mut one = LastStep::new().with_batch_first(batch_first);
        one.forward(&x, Mode::Eval).unwrap();
        let mut both = LastStep::new().with_batch_first(batch_first).with_bidirectional(true);
        both.forward(&x, Mode::Eval).unwrap();
        assert_eq!(one.output().shape(), [batch, features]);
        for b in 0..batch {
            for f in 0..features {
                let last = (100 * (seq - 1) + 10 * b + f) as f32;
                let first = (10 * b + f) as f32;
                assert_eq!(one.output().data()[b * features + f], last, "{batch_first} b {b} f {f}");
                let expected = if f < features / 2 { last } else { first };
                assert_eq!(both.output().data()[b * features + f], expected, "{batch_first} b {b} f {f}");
            }
        }
    }
}

#[test]
fn mean_over_time_averages_every_step() {
    let (seq, batch, features) = (4, 2, 3);
    for batch_first in [false, true] {
        let x = positional(seq, batch, features, batch_first);
        let mut head = MeanOverTime::new().with_batch_first(batch_first);
        head.forward(&x, Mode::Eval).unwrap();
        for b in 0..batch {
            for f in 0..features {
                // The mean of 100·t over t = 0..4 is 150.
                let expected = (150 + 10 * b + f) as f32;
                assert!((head.output().data()[b * features + f] - expected).abs() < 1e-4);
            }
        }
    }
}

#[test]
fn backward_scatters_to_the_steps_read_and_overwrites() {
    let (seq, batch, features) = (3, 2, 4);
    for batch_first in [false, true] {
        let x = positional(seq, batch, features, batch_first);
        let mut head = LastStep::new().with_batch_first(batch_first).with_bidirectional(true);
        head.forward(&x, Mode::Train).unwrap();
        // A first backward with NaN leaves nothing behind: the second overwrites all of it.
        head.backward(&x, &Tensor::from_vec(&[batch, features], vec![f32::NAN; batch * features]).unwrap())
            .unwrap();
        let dy = tensor(&[batch, features], 3);
        head.backward(&x, &dy).unwrap();
        let dx = head.grad_input();
        assert_eq!(dx.shape(), x.shape());
        // The input values name their positions, so the gradient at each position is found
        // by the value there.
        for (position, &value) in x.data().iter().enumerate() {
            let value = value as usize;
            let (t, b, f) = (value / 100, value / 10 % 10, value % 10);
            let read = if f < features / 2 { t == seq - 1 } else { t == 0 };
            let expected = if read { dy.data()[b * features + f] } else { 0.0 };
            assert_eq!(dx.data()[position], expected, "{batch_first} t {t} b {b} f {f}");
        }

        let mut mean = MeanOverTime::new().with_batch_first(batch_first);
        mean.forward(&x, Mode::Train).unwrap();
        mean.backward(&x, &dy).unwrap();
        for (position, &value) in x.data().iter().enumerate() {
            let (b, f) = (value as usize / 10 % 10, value as usize % 10);
            let expected = dy.data()[b * features + f] / seq as f32;
            assert!((mean.grad_input().data()[position] - expected).abs() < 1e-6, "{batch_first} {position}");
        }
    }
}

#[test]
fn heads_pass_gradcheck() {
    for batch_first in [false, true] {
        let x = tensor(&[4, 3, 6], 11);
        for bidirectional in [false, true] {
            let mut head = LastStep::new().with_batch_first(batch_first).with_bidirectional(bidirectional);
            let report = gradcheck(&mut head, &x, Mode::Train, 1e-2).unwrap();
            assert!(report.max_error() < 1e-3, "last step {batch_first} {bidirectional}: {report:?}");
        }
        let mut mean = MeanOverTime::new().with_batch_first(batch_first);
        let report = gradcheck(&mut mean, &x, Mode::Train, 1e-2).unwrap();
        assert!(report.max_error() < 1e-3, "mean over time {batch_first}: {report:?}");
    }
}

#[test]
fn lstm_with_a_head_passes_gradcheck_in_a_sequential() {
    for (bidirectional, batch_first) in [(false, false), (true, true), (true, false)] {
        let config =
            RecurrentConfig::new(3, 4).with_bidirectional(bidirectional).with_batch_first(batch_first);
        let mut rng = StdRng::seed_from_u64(5);
        let features = config.directions() * config.hidden_size;
        let mut model = Sequential::new()
            .push(Lstm::new(config, &mut rng).unwrap())
            .push(LastStep::for_config(&config))
            .push(Dense::new(features, 3, Init::Xavier, &mut rng).unwrap());
        let x = tensor(if batch_first { &[2, 5, 3] } else { &[5, 2, 3] }, 17);
        let report = gradcheck(&mut model, &x, Mode::Train, 1e-2).unwrap();
        assert!(report.max_error() < 2e-2, "{bidirectional} {batch_first}: {report:?}");
        // Through the recurrence, the last step's gradient reaches every input step (the
        // reverse direction's first step has read them all too), unlike the head alone.
        assert!(model.grad_input().data().iter().all(|d| *d != 0.0 && d.is_finite()), "{bidirectional}");
    }
}

#[test]
fn wrong_shapes_are_errors() {
    let is_shape = |error: LayerError| matches!(error, LayerError::Shape { .. });
    let mut head = LastStep::new();
    for shape in [&[6, 4][..], &[2, 3, 4, 5], &[0, 3, 4]] {
        assert!(is_shape(head.forward(&Tensor::zeros(shape), Mode::Eval).unwrap_err()), "{shape:?}");
    }
    let mut mean = MeanOverTime::new().with_batch_first(true);
    assert!(is_shape(mean.forward(&Tensor::zeros(&[3, 0, 4]), Mode::Eval).unwrap_err()));
    assert!(is_shape(mean.forward(&Tensor::zeros(&[12]), Mode::Eval).unwrap_err()));
    let mut both = LastStep::new().with_bidirectional(true);
    assert!(is_shape(both.forward(&Tensor::zeros(&[2, 3, 5]), Mode::Eval).unwrap_err()));
    let x = tensor(&[2, 3, 4], 1);
    head.forward(&x, Mode::Train).unwrap();
    assert!(is_shape(head.backward(&x, &Tensor::zeros(&[3, 5])).unwrap_err()));
    mean.forward(&x, Mode::Train).unwrap();
    assert!(is_shape(mean.backward(&x, &Tensor::zeros(&[2, 3, 4])).unwrap_err()));
}

#[test]
fn lstm_last_step_dense_learns_the_digits_row_by_row() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/digits.csv.gz");
    // 8x8 digits as 8 steps (rows) of 8 features: batches (batch, 8, 8), batch-first.
    let data = Dataset::from_csv_gz(path, 16.0).unwrap().with_sample_shape(&[8, 8]).unwrap();
    let (train, test) = (data.slice(0..1400).unwrap(), data.slice(1400..data.len()).unwrap());
    let config = RecurrentConfig::new(8, 32).with_batch_first(true);
    let mut rng = StdRng::seed_from_u64(3);
    let mut model = Sequential::new()
        .push(Lstm::new(config, &mut rng).unwrap())
        .push(LastStep::for_config(&config))
        .push(Dense::new(32, 10, Init::Xavier, &mut rng).unwrap());
    let mut adam = Adam::new(AdamConfig { lr: 1e-2, ..AdamConfig::default() }).unwrap();
    let mut loss = SoftmaxCrossEntropy::new();
    let fit_config = FitConfig { epochs: 4, batch_size: 32, seed: 1, quiet: true, ..FitConfig::default() };
    let history = fit(&mut model, &mut adam, &mut loss, &train, &test, &fit_config).unwrap();
    let (first, last) = (&history.epochs[0], history.epochs.last().unwrap());
    assert!(last.train.loss < first.train.loss, "{history:?}");
    let accuracy = evaluate(&mut model, &mut loss, &test, 256).unwrap().metrics.accuracy;
    assert!(accuracy > 0.8, "test accuracy {accuracy}");
}
