//! Recurrent layers (`Rnn`, `Gru`, `Lstm`): gradient checks of every configuration (one
//! layer, two, bidirectional, batch-first, initial states), a plain f64 re-implementation of
//! PyTorch's equations to compare outputs and final states with, the gradient of the initial
//! states by central differences, PyTorch's parameter names and shapes, shape errors.
//!
//! PyTorch itself was not reachable to produce reference numbers (no network where these
//! tests were written): the f64 re-implementation below follows the equations of PyTorch's
//! `nn.RNN`, `nn.GRU` and `nn.LSTM` docs line by line instead.

use keel_layers::{
    gradcheck, relative_error, Gru, Layer, LayerError, Lstm, Mode, Nonlinearity, RecurrentConfig, Rnn,
    RnnConfig, Tensor,
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

/// The three kinds under test, built from one shared configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Rnn(Nonlinearity),
    Gru,
    Lstm,
}

const KINDS: [Kind; 4] =
    [Kind::Rnn(Nonlinearity::Tanh), Kind::Rnn(Nonlinearity::Relu), Kind::Gru, Kind::Lstm];

impl Kind {
    fn gates(self) -> usize {
        match self {
            Kind::Rnn(_) => 1,
            Kind::Gru => 3,
            Kind::Lstm => 4,
        }
    }
}

/// A layer of either kind, for the tests that drive all three alike.
enum AnyLayer {
    Rnn(Rnn),
    Gru(Gru),
    Lstm(Lstm),
}

impl AnyLayer {
    fn new(kind: Kind, config: RecurrentConfig, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        match kind {
            Kind::Rnn(nonlinearity) => {
                AnyLayer::Rnn(Rnn::new(RnnConfig { recurrent: config, nonlinearity }, &mut rng).unwrap())
            }
            Kind::Gru => AnyLayer::Gru(Gru::new(config, &mut rng).unwrap()),
            Kind::Lstm => AnyLayer::Lstm(Lstm::new(config, &mut rng).unwrap()),
        }
    }

    fn layer(&mut self) -> &mut dyn Layer {
        match self {
            AnyLayer::Rnn(layer) => layer,
            AnyLayer::Gru(layer) => layer,
            AnyLayer::Lstm(layer) => layer,
        }
    }

    fn set_initial_state(&mut self, h0: Option<Tensor>, c0: Option<Tensor>) {
        match self {
            AnyLayer::Rnn(layer) => layer.set_initial_state(h0),
            AnyLayer::Gru(layer) => layer.set_initial_state(h0),
            AnyLayer::Lstm(layer) => layer.set_initial_state(h0, c0),
        }
    }

    fn set_grad_final_state(&mut self, dh_n: Option<Tensor>, dc_n: Option<Tensor>) {
        match self {
            AnyLayer::Rnn(layer) => layer.set_grad_final_state(dh_n),
            AnyLayer::Gru(layer) => layer.set_grad_final_state(dh_n),
            AnyLayer::Lstm(layer) => layer.set_grad_final_state(dh_n, dc_n),
        }
    }

    fn set_lengths(&mut self, lengths: Option<Vec<usize>>) {
        match self {
            AnyLayer::Rnn(layer) => layer.set_lengths(lengths),
            AnyLayer::Gru(layer) => layer.set_lengths(lengths),
            AnyLayer::Lstm(layer) => layer.set_lengths(lengths),
        }
    }

    /// The parameter gradients by name.
    fn grads(&mut self) -> Vec<(String, Vec<f32>)> {
        let mut grads = Vec::new();
        self.layer()
            .visit_params(&mut |name, param| grads.push((name.to_owned(), param.grad.data().to_vec())));
        grads
    }

    /// `(h_n, c_n)`, `c_n` empty but for the LSTM.
    fn final_state(&self) -> (Tensor, Tensor) {
        match self {
            AnyLayer::Rnn(layer) => (layer.final_state().clone(), Tensor::default()),
            AnyLayer::Gru(layer) => (layer.final_state().clone(), Tensor::default()),
            AnyLayer::Lstm(layer) => (layer.final_state().0.clone(), layer.final_state().1.clone()),
        }
    }

    /// `(∂L/∂h0, ∂L/∂c0)`.
    fn grad_initial_state(&self) -> (Tensor, Tensor) {
        match self {
            AnyLayer::Rnn(layer) => (layer.grad_initial_state().clone(), Tensor::default()),
            AnyLayer::Gru(layer) => (layer.grad_initial_state().clone(), Tensor::default()),
            AnyLayer::Lstm(layer) => {
                (layer.grad_initial_state().0.clone(), layer.grad_initial_state().1.clone())
            }
        }
    }

    /// The parameters by name, values copied.
    fn params(&mut self) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let mut params = Vec::new();
        self.layer().visit_params(&mut |name, param| {
            params.push((name.to_owned(), param.value.shape().to_vec(), param.value.data().to_vec()))
        });
        params
    }
}

/// The input shape of a configuration for `seq` steps of `batch` rows.
fn input_shape(config: &RecurrentConfig, seq: usize, batch: usize) -> [usize; 3] {
    if config.batch_first {
        [batch, seq, config.input_size]
    } else {
        [seq, batch, config.input_size]
    }
}

fn state_shape(config: &RecurrentConfig, batch: usize) -> [usize; 3] {
    [config.num_layers * config.directions(), batch, config.hidden_size]
}

/// The configurations the issue asks to check: one layer, two, bidirectional, batch-first,
/// and all of them at once; with and without initial states (second field).
fn configurations() -> Vec<(&'static str, RecurrentConfig, bool)> {
    let base = RecurrentConfig::new(3, 5);
    vec![
        ("1 layer", base, false),
        ("2 layers", base.with_layers(2), false),
        ("bidirectional", base.with_bidirectional(true), false),
        ("batch_first", base.with_batch_first(true), false),
        ("initial states", base, true),
        (
            "2 layers, bidirectional, batch_first, initial states",
            base.with_layers(2).with_bidirectional(true).with_batch_first(true),
            true,
        ),
    ]
}

// Tolerance of the gradient checks: the layers compute in f32 through a few steps of GEMMs
// and cells; at ε = 1e-2 the central difference's rounding error is ~1e-5 relative and its
// truncation error O(ε²) ≈ 1e-4 relative for the smooth cells. A wrong term (a transposed
// weight, a missing carry, a direction's columns swapped) gives errors of order 0.1 to 1.
// Measured (2026-12): at most 4e-4 (two-layer LSTM), 1.2e-3 for ReLU at its smaller step.
const GRADCHECK_TOL: f64 = 1e-3;

#[test]
fn every_configuration_passes_gradcheck() {
    let (seq, batch) = (4, 2);
    for kind in KINDS {
        for (what, config, with_states) in configurations() {
            let mut layer = AnyLayer::new(kind, config, 11);
            if with_states {
                let shape = state_shape(&config, batch);
                layer.set_initial_state(Some(tensor(&shape, 5)), Some(tensor(&shape, 6)));
            }
            let x = tensor(&input_shape(&config, seq, batch), 7);
            // ReLU's kink: a smaller step keeps the pre-activations from crossing 0 inside it
            // (at 1e-3, one of the bidirectional case is that close to 0).
            let eps = if kind == Kind::Rnn(Nonlinearity::Relu) { 2e-4 } else { 1e-2 };
            let report = gradcheck(layer.layer(), &x, Mode::Train, eps).unwrap();
            let expected_params = 4 * config.num_layers * config.directions();
            assert_eq!(report.params.len(), expected_params, "{kind:?} {what}");
            // ReLU is piecewise linear (no truncation error), but a step of 2e-4 carries 50x
            // the rounding error of 1e-2.
            let tol = if eps < 1e-2 { 5.0 * GRADCHECK_TOL } else { GRADCHECK_TOL };
            assert!(report.max_error() < tol, "{kind:?} {what}: {report:?}");
        }
    }
}

#[test]
fn initial_state_gradients_match_central_differences() {
    let (seq, batch) = (3, 2);
    let config = RecurrentConfig::new(3, 4).with_layers(2).with_bidirectional(true);
    for kind in [Kind::Rnn(Nonlinearity::Tanh), Kind::Gru, Kind::Lstm] {
        let shape = state_shape(&config, batch);
        let (h0, c0) = (tensor(&shape, 21), tensor(&shape, 22));
        let x = tensor(&input_shape(&config, seq, batch), 23);
        let mut layer = AnyLayer::new(kind, config, 12);
        let u = tensor(&[seq, batch, 2 * config.hidden_size], 24);
        let loss = |layer: &mut AnyLayer, h0: &Tensor, c0: &Tensor| -> f64 {
            layer.set_initial_state(Some(h0.clone()), Some(c0.clone()));
            layer.layer().forward(&x, Mode::Train).unwrap();
            let out = layer.layer().output().data();
            out.iter().zip(u.data()).map(|(&y, &u)| f64::from(y) * f64::from(u)).sum()
        };
        loss(&mut layer, &h0, &c0);
        layer.layer().backward(&x, &u).unwrap();
        let (dh0, dc0) = layer.grad_initial_state();
        let eps = 1e-2f32;
        let mut numeric = |which: usize| -> Vec<f64> {
            (0..h0.len())
                .map(|k| {
                    let (mut plus, mut minus) = ([h0.clone(), c0.clone()], [h0.clone(), c0.clone()]);
                    plus[which].data_mut()[k] += eps;
                    minus[which].data_mut()[k] -= eps;
                    let difference =
                        loss(&mut layer, &plus[0], &plus[1]) - loss(&mut layer, &minus[0], &minus[1]);
                    difference / (2.0 * f64::from(eps))
                })
                .collect()
        };
        let to64 = |t: &Tensor| t.data().iter().map(|&v| f64::from(v)).collect::<Vec<f64>>();
        let numeric_h = numeric(0);
        assert!(numeric_h.iter().any(|g| g.abs() > 1e-2), "{kind:?}: trivial gradient");
        let error = relative_error(&to64(&dh0), &numeric_h);
        assert!(error < GRADCHECK_TOL, "{kind:?} dh0: relative error {error}");
        if kind == Kind::Lstm {
            let error = relative_error(&to64(&dc0), &numeric(1));
            assert!(error < GRADCHECK_TOL, "{kind:?} dc0: relative error {error}");
        } else {
            assert!(dc0.is_empty());
        }
    }
}

#[test]
fn final_state_gradients_reach_the_input() {
    // L = Σ y·u + Σ h_n·v (+ Σ c_n·w): the input gradient with the final states' gradients
    // given, against central differences of L; with every sequence whole, and with the first
    // ending after one step (its final states' gradients then pass unchanged through the
    // steps it did not take).
    let (seq, batch) = (3, 2);
    let config = RecurrentConfig::new(3, 4).with_layers(2).with_bidirectional(true).with_batch_first(true);
    let kinds = [Kind::Rnn(Nonlinearity::Tanh), Kind::Gru, Kind::Lstm];
    for (kind, lengths) in kinds.into_iter().flat_map(|kind| [(kind, None), (kind, Some(vec![1, 3]))]) {
        let shape = state_shape(&config, batch);
        let (v, w) = (tensor(&shape, 61), tensor(&shape, 62));
        let u = tensor(&[batch, seq, 2 * config.hidden_size], 63);
        let x = tensor(&input_shape(&config, seq, batch), 64);
        let mut layer = AnyLayer::new(kind, config, 19);
        layer.set_lengths(lengths.clone());
        let dot = |a: &Tensor, b: &Tensor| -> f64 {
            a.data().iter().zip(b.data()).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum()
        };
        let loss = |layer: &mut AnyLayer, x: &Tensor| -> f64 {
            layer.layer().forward(x, Mode::Train).unwrap();
            let (h_n, c_n) = layer.final_state();
            let cell = if kind == Kind::Lstm { dot(&c_n, &w) } else { 0.0 };
            dot(layer.layer().output(), &u) + dot(&h_n, &v) + cell
        };
        layer.set_grad_final_state(Some(v.clone()), Some(w.clone()));
        loss(&mut layer, &x);
        layer.layer().backward(&x, &u).unwrap();
        let analytic: Vec<f64> = layer.layer().grad_input().data().iter().map(|&g| f64::from(g)).collect();
        let eps = 1e-2f32;
        let numeric: Vec<f64> = (0..x.len())
            .map(|k| {
                let (mut plus, mut minus) = (x.clone(), x.clone());
                plus.data_mut()[k] += eps;
                minus.data_mut()[k] -= eps;
                (loss(&mut layer, &plus) - loss(&mut layer, &minus)) / (2.0 * f64::from(eps))
            })
            .collect();
        let error = relative_error(&analytic, &numeric);
        assert!(error < GRADCHECK_TOL, "{kind:?} {lengths:?}: relative error {error}");
        // Without them, the gradient differs: the final states' terms are not in the output's.
        layer.set_grad_final_state(None, None);
        layer.layer().forward(&x, Mode::Train).unwrap();
        layer.layer().backward(&x, &u).unwrap();
        let without: Vec<f64> = layer.layer().grad_input().data().iter().map(|&g| f64::from(g)).collect();
        assert!(relative_error(&without, &numeric) > 10.0 * GRADCHECK_TOL, "{kind:?} {lengths:?}");
    }
}

/// Rows `[b]` of a `(rows, batch, inner)` tensor's first `len` rows, as `(len, 1, inner)`.
fn column(t: &Tensor, b: usize, len: usize) -> Tensor {
    let (batch, inner) = (t.shape()[1], t.shape()[2]);
    let mut data = Vec::with_capacity(len * inner);
    for i in 0..len {
        data.extend_from_slice(&t.data()[(i * batch + b) * inner..][..inner]);
    }
    Tensor::from_vec(&[len, 1, inner], data).unwrap()
}

#[test]
fn sequences_of_different_lengths_match_each_sequence_alone() {
    // A padded batch with lengths [5, 2, 4] against each sequence run alone (batch 1, its own
    // length), same parameters: outputs (0 on the padding), final states, input gradients
    // (0 on the padding), and parameter gradients (the sum over the sequences).
    let (seq, batch, lengths) = (5, 3, vec![5, 2, 4]);
    let config = RecurrentConfig::new(3, 4).with_layers(2).with_bidirectional(true);
    let width = 2 * config.hidden_size;
    let x = tensor(&[seq, batch, 3], 71);
    let u = tensor(&[seq, batch, width], 72);
    let shape = state_shape(&config, batch);
    let (h0, c0) = (tensor(&shape, 73), tensor(&shape, 74));
    // (L·D, batch, H) -> rows of batch row b: (L·D, 1, H).
    let state_row = |t: &Tensor, b: usize| {
        let (n, h) = (t.shape()[0], t.shape()[2]);
        let data = (0..n).flat_map(|i| t.data()[(i * batch + b) * h..][..h].to_vec()).collect();
        Tensor::from_vec(&[n, 1, h], data).unwrap()
    };
    for kind in KINDS {
        let mut packed = AnyLayer::new(kind, config, 20);
        packed.set_lengths(Some(lengths.clone()));
        packed.set_initial_state(Some(h0.clone()), Some(c0.clone()));
        packed.layer().forward(&x, Mode::Train).unwrap();
        packed.layer().backward(&x, &u).unwrap();
        let out = packed.layer().output().clone();
        let dx = packed.layer().grad_input().clone();
        let (h_n, c_n) = packed.final_state();
        let mut grad_sum: Vec<(String, Vec<f32>)> = Vec::new();
        for (b, &len) in lengths.iter().enumerate() {
            let mut alone = AnyLayer::new(kind, config, 20);
            alone.set_initial_state(Some(state_row(&h0, b)), Some(state_row(&c0, b)));
            let xb = column(&x, b, len);
            alone.layer().forward(&xb, Mode::Train).unwrap();
            alone.layer().backward(&xb, &column(&u, b, len)).unwrap();
            let what = format!("{kind:?} row {b}");
            let tol = 1e-5;
            let close = |a: &[f32], e: &[f32], what: &str| {
                assert_eq!(a.len(), e.len(), "{what}");
                for (k, (a, e)) in a.iter().zip(e).enumerate() {
                    assert!((a - e).abs() <= tol * (1.0 + e.abs()), "{what}[{k}]: {a} vs {e}");
                }
            };
            close(column(&out, b, len).data(), alone.layer().output().data(), &format!("{what} output"));
            close(column(&dx, b, len).data(), alone.layer().grad_input().data(), &format!("{what} dx"));
            for t in len..seq {
                assert!(
                    out.data()[(t * batch + b) * width..][..width].iter().all(|&y| y == 0.0),
                    "{what} padding"
                );
                assert!(dx.data()[(t * batch + b) * 3..][..3].iter().all(|&g| g == 0.0), "{what} padding dx");
            }
            let (h_alone, c_alone) = alone.final_state();
            close(state_row(&h_n, b).data(), h_alone.data(), &format!("{what} h_n"));
            if kind == Kind::Lstm {
                close(state_row(&c_n, b).data(), c_alone.data(), &format!("{what} c_n"));
            }
            let grads = alone.grads();
            if grad_sum.is_empty() {
                grad_sum = grads;
            } else {
                for ((_, sum), (_, g)) in grad_sum.iter_mut().zip(&grads) {
                    sum.iter_mut().zip(g).for_each(|(s, g)| *s += g);
                }
            }
        }
        for ((name, packed_grad), (_, sum)) in packed.grads().iter().zip(&grad_sum) {
            for (k, (a, e)) in packed_grad.iter().zip(sum).enumerate() {
                assert!((a - e).abs() <= 1e-4 * (1.0 + e.abs()), "{kind:?} {name}[{k}]: {a} vs {e}");
            }
        }
    }
}

#[test]
fn sequences_of_different_lengths_pass_gradcheck() {
    let config = RecurrentConfig::new(3, 4).with_bidirectional(true).with_batch_first(true);
    let x = tensor(&input_shape(&config, 4, 3), 75);
    for kind in [Kind::Rnn(Nonlinearity::Tanh), Kind::Gru, Kind::Lstm] {
        let mut layer = AnyLayer::new(kind, config, 21);
        layer.set_lengths(Some(vec![2, 4, 1]));
        let report = gradcheck(layer.layer(), &x, Mode::Train, 1e-2).unwrap();
        assert!(report.max_error() < GRADCHECK_TOL, "{kind:?}: {report:?}");
    }
}

// ---------------------------------------------------------------------------------------
// A plain f64 re-implementation of PyTorch's equations.

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `W·v + b` for `W (rows, cols)` row-major.
fn affine(w: &[f64], b: &[f64], v: &[f64]) -> Vec<f64> {
    let cols = v.len();
    b.iter().enumerate().map(|(r, &b)| b + (0..cols).map(|k| w[r * cols + k] * v[k]).sum::<f64>()).collect()
}

/// One step of one sample: `(h', c')` from `x`, `h`, `c` and `[W_ih, W_hh, b_ih, b_hh]`.
fn cell_step(kind: Kind, p: &[Vec<f64>; 4], x: &[f64], h: &[f64], c: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let hidden = h.len();
    let gi = affine(&p[0], &p[2], x);
    let gh = affine(&p[1], &p[3], h);
    let gate = |g: usize, j: usize| gi[g * hidden + j] + gh[g * hidden + j];
    match kind {
        Kind::Rnn(nonlinearity) => {
            let h = (0..hidden)
                .map(|j| match nonlinearity {
                    Nonlinearity::Tanh => gate(0, j).tanh(),
                    Nonlinearity::Relu => gate(0, j).max(0.0),
                })
                .collect();
            (h, Vec::new())
        }
        Kind::Gru => {
            let h = (0..hidden)
                .map(|j| {
                    let r = sigmoid(gate(0, j));
                    let z = sigmoid(gate(1, j));
                    let n = (gi[2 * hidden + j] + r * gh[2 * hidden + j]).tanh();
                    (1.0 - z) * n + z * h[j]
                })
                .collect();
            (h, Vec::new())
        }
        Kind::Lstm => {
            let mut h_next = vec![0.0; hidden];
            let mut c_next = vec![0.0; hidden];
            for j in 0..hidden {
                let (i, f, g, o) =
                    (sigmoid(gate(0, j)), sigmoid(gate(1, j)), gate(2, j).tanh(), sigmoid(gate(3, j)));
                c_next[j] = f * c[j] + i * g;
                h_next[j] = o * c_next[j].tanh();
            }
            (h_next, c_next)
        }
    }
}

/// The whole stack on time-major `x (seq, batch, input)`: output `(seq, batch, D·H)` and
/// final states `(L·D, batch, H)`.
#[allow(clippy::type_complexity)]
fn reference_forward(
    kind: Kind,
    config: &RecurrentConfig,
    params: &[(String, Vec<usize>, Vec<f32>)],
    x: &[f32],
    (seq, batch): (usize, usize),
    (h0, c0): (&[f32], &[f32]),
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (hidden, dirs) = (config.hidden_size, config.directions());
    let by_name = |name: &str| -> Vec<f64> {
        let (_, _, values) = params.iter().find(|(n, _, _)| n == name).unwrap_or_else(|| panic!("no {name}"));
        values.iter().map(|&v| f64::from(v)).collect()
    };
    let mut input: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let mut in_size = config.input_size;
    let (mut h_n, mut c_n) = (Vec::new(), Vec::new());
    for layer in 0..config.num_layers {
        let mut out = vec![0.0; seq * batch * dirs * hidden];
        for dir in 0..dirs {
            let suffix = if dir == 1 { "_reverse" } else { "" };
            let p = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
                .map(|n| by_name(&format!("{n}_l{layer}{suffix}")));
            let index = layer * dirs + dir;
            for b in 0..batch {
                let at = (index * batch + b) * hidden;
                let mut h: Vec<f64> = h0[at..at + hidden].iter().map(|&v| f64::from(v)).collect();
                let mut c: Vec<f64> = c0[at..at + hidden].iter().map(|&v| f64::from(v)).collect();
                for step in 0..seq {
                    let t = if dir == 1 { seq - 1 - step } else { step };
                    let x_t = &input[(t * batch + b) * in_size..][..in_size];
                    let (h_next, c_next) = cell_step(kind, &p, x_t, &h, &c);
                    h = h_next;
                    if kind == Kind::Lstm {
                        c = c_next;
                    }
                    out[(t * batch + b) * dirs * hidden + dir * hidden..][..hidden].copy_from_slice(&h);
                }
                h_n.extend_from_slice(&h);
                c_n.extend_from_slice(&c);
            }
        }
        input = out;
        in_size = dirs * hidden;
    }
    (input, h_n, c_n)
}

fn swap_axes(src: &[f32], (a, b, inner): (usize, usize, usize)) -> Vec<f32> {
    let mut dst = vec![0.0; src.len()];
    for i in 0..a {
        for j in 0..b {
            dst[(j * a + i) * inner..][..inner].copy_from_slice(&src[(i * b + j) * inner..][..inner]);
        }
    }
    dst
}

#[track_caller]
fn assert_close(what: &str, actual: &[f32], expected: &[f64], tol: f64) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths");
    for (k, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert!((f64::from(a) - e).abs() <= tol * (1.0 + e.abs()), "{what}[{k}]: {a} vs {e}");
    }
}

// The layers run in f32: GEMM sums of ≤ 15 terms of size < 1 and the vector σ/tanh within a
// few ulp, through 2 layers of 5 steps: errors stay below 1e-5; a wrong equation is off by
// 1e-2 or more.
const FORWARD_TOL: f64 = 2e-5;

#[test]
fn outputs_and_final_states_match_a_scalar_reimplementation() {
    let (seq, batch) = (5, 3);
    for kind in KINDS {
        for (what, config, with_states) in configurations() {
            let mut layer = AnyLayer::new(kind, config, 13);
            let shape = state_shape(&config, batch);
            let (h0, c0) = if with_states {
                (tensor(&shape, 31), tensor(&shape, 32))
            } else {
                (Tensor::zeros(&shape), Tensor::zeros(&shape))
            };
            if with_states {
                layer.set_initial_state(Some(h0.clone()), Some(c0.clone()));
            }
            let x = tensor(&input_shape(&config, seq, batch), 33);
            layer.layer().forward(&x, Mode::Eval).unwrap();
            let params = layer.params();
            let x_time_major =
                if config.batch_first { swap_axes(x.data(), (batch, seq, 3)) } else { x.data().to_vec() };
            let (out, h_n, c_n) = reference_forward(
                kind,
                &config,
                &params,
                &x_time_major,
                (seq, batch),
                (h0.data(), c0.data()),
            );
            let width = config.directions() * config.hidden_size;
            let output = layer.layer().output().clone();
            let output_time_major = if config.batch_first {
                swap_axes(output.data(), (batch, seq, width))
            } else {
                output.data().to_vec()
            };
            let expected_shape = if config.batch_first { [batch, seq, width] } else { [seq, batch, width] };
            assert_eq!(output.shape(), expected_shape, "{kind:?} {what}");
            assert_close(&format!("{kind:?} {what} output"), &output_time_major, &out, FORWARD_TOL);
            let (h_n_keel, c_n_keel) = layer.final_state();
            assert_eq!(h_n_keel.shape(), shape, "{kind:?} {what}");
            assert_close(&format!("{kind:?} {what} h_n"), h_n_keel.data(), &h_n, FORWARD_TOL);
            if kind == Kind::Lstm {
                assert_close(&format!("{kind:?} {what} c_n"), c_n_keel.data(), &c_n, FORWARD_TOL);
            }
        }
    }
}

#[test]
fn parameters_have_pytorch_names_shapes_and_init() {
    let config = RecurrentConfig::new(3, 5).with_layers(2).with_bidirectional(true);
    for kind in [Kind::Rnn(Nonlinearity::Tanh), Kind::Gru, Kind::Lstm] {
        let params = AnyLayer::new(kind, config, 14).params();
        let g = kind.gates() * 5;
        let mut expected = Vec::new();
        for (layer, input) in [(0, 3), (1, 10)] {
            for suffix in ["", "_reverse"] {
                expected.push((format!("weight_ih_l{layer}{suffix}"), vec![g, input]));
                expected.push((format!("weight_hh_l{layer}{suffix}"), vec![g, 5]));
                expected.push((format!("bias_ih_l{layer}{suffix}"), vec![g]));
                expected.push((format!("bias_hh_l{layer}{suffix}"), vec![g]));
            }
        }
        let actual: Vec<(String, Vec<usize>)> =
            params.iter().map(|(n, s, _)| (n.clone(), s.clone())).collect();
        assert_eq!(actual, expected, "{kind:?}");
        // Uniform in ±1/√hidden, both signs used.
        let bound = 1.0 / 5f32.sqrt();
        let all: Vec<f32> = params.iter().flat_map(|(_, _, v)| v.iter().copied()).collect();
        assert!(all.iter().all(|v| v.abs() <= bound), "{kind:?}: a value beyond ±1/√hidden");
        assert!(all.iter().any(|&v| v > bound / 2.0) && all.iter().any(|&v| v < -bound / 2.0), "{kind:?}");
    }
}

#[test]
fn dropout_acts_between_layers_in_training_only() {
    let config = RecurrentConfig::new(3, 6).with_layers(2).with_dropout(0.5);
    let x = tensor(&[4, 2, 3], 41);
    let mut layer = AnyLayer::new(Kind::Lstm, config, 15);
    layer.layer().forward(&x, Mode::Eval).unwrap();
    let eval = layer.layer().output().clone();
    let mut plain = AnyLayer::new(Kind::Lstm, config.with_dropout(0.0), 15);
    plain.layer().forward(&x, Mode::Train).unwrap();
    assert_eq!(plain.layer().output(), &eval, "eval mode must not drop");
    layer.layer().forward(&x, Mode::Train).unwrap();
    assert_ne!(layer.layer().output(), &eval, "training must drop");
    // Backward runs through the dropout masks and gives finite gradients.
    let u = tensor(&[4, 2, 6], 42);
    layer.layer().backward(&x, &u).unwrap();
    assert!(layer.layer().grad_input().data().iter().all(|g| g.is_finite()));
}

#[test]
fn wrong_shapes_are_errors_naming_the_layer() {
    let config = RecurrentConfig::new(3, 4).with_layers(2);
    let mut lstm = AnyLayer::new(Kind::Lstm, config, 16);
    match lstm.layer().forward(&tensor(&[5, 2, 4], 1), Mode::Train) {
        Err(LayerError::Shape { layer, actual, .. }) => {
            assert!(layer.starts_with("lstm(3 -> 4, 2 layers"), "{layer}");
            assert_eq!(actual, [5, 2, 4]);
        }
        other => panic!("expected a shape error, got {other:?}"),
    }
    lstm.set_initial_state(Some(Tensor::zeros(&[1, 2, 4])), None);
    match lstm.layer().forward(&tensor(&[5, 2, 3], 1), Mode::Train) {
        Err(LayerError::Shape { layer, actual, .. }) => {
            assert!(layer.contains("h0"), "{layer}");
            assert_eq!(actual, [1, 2, 4]);
        }
        other => panic!("expected a shape error, got {other:?}"),
    }
    lstm.set_initial_state(None, None);
    for lengths in [vec![5], vec![5, 0], vec![6, 1]] {
        lstm.set_lengths(Some(lengths.clone()));
        match lstm.layer().forward(&tensor(&[5, 2, 3], 1), Mode::Train) {
            Err(LayerError::Shape { layer, actual, .. }) => {
                assert!(layer.contains("lengths"), "{layer}");
                assert_eq!(actual, lengths);
            }
            other => panic!("lengths {lengths:?}: expected a shape error, got {other:?}"),
        }
    }
    let mut rng = StdRng::seed_from_u64(0);
    assert!(Gru::new(RecurrentConfig::new(3, 0), &mut rng).is_err());
    assert!(Gru::new(RecurrentConfig::new(3, 2).with_dropout(1.0), &mut rng).is_err());
}

#[test]
fn safetensors_round_trip_under_pytorch_names() {
    let config = RecurrentConfig::new(3, 4).with_layers(2).with_bidirectional(true);
    let path = std::env::temp_dir().join(format!("keel-recurrent-{}.safetensors", std::process::id()));
    let x = tensor(&[3, 2, 3], 51);
    for kind in [Kind::Rnn(Nonlinearity::Relu), Kind::Gru, Kind::Lstm] {
        let mut saved = AnyLayer::new(kind, config, 17);
        keel_layers::save_safetensors(saved.layer(), &path).unwrap();
        let mut loaded = AnyLayer::new(kind, config, 18);
        assert_ne!(loaded.params(), saved.params(), "{kind:?}: the seeds must differ");
        keel_layers::load_safetensors(loaded.layer(), &path).unwrap();
        assert_eq!(loaded.params(), saved.params(), "{kind:?}");
        saved.layer().forward(&x, Mode::Eval).unwrap();
        loaded.layer().forward(&x, Mode::Eval).unwrap();
        assert_eq!(loaded.layer().output(), saved.layer().output(), "{kind:?}");
    }
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn turning_the_input_gradient_off_keeps_the_parameter_gradients() {
    let config = RecurrentConfig::new(3, 4).with_layers(2).with_bidirectional(true);
    let (x, u) = (tensor(&[4, 2, 3], 81), tensor(&[4, 2, 8], 82));
    for kind in [Kind::Gru, Kind::Lstm] {
        let mut with = AnyLayer::new(kind, config, 22);
        let mut without = AnyLayer::new(kind, config, 22);
        without.layer().set_input_grad(false);
        for layer in [&mut with, &mut without] {
            layer.layer().forward(&x, Mode::Train).unwrap();
            layer.layer().backward(&x, &u).unwrap();
        }
        assert!(without.layer().grad_input().is_empty(), "{kind:?}");
        assert_eq!(with.layer().grad_input().shape(), [4, 2, 3], "{kind:?}");
        assert_eq!(with.grads(), without.grads(), "{kind:?}");
    }
}

/// Everything one pass gives: output, final states, input gradient, initial-state gradients
/// and parameter gradients, flattened in that order with their names.
fn pass_results(layer: &mut AnyLayer, x: &Tensor, dy: &Tensor) -> Vec<(String, Vec<f32>)> {
    layer.layer().forward(x, Mode::Train).unwrap();
    layer.layer().backward(x, dy).unwrap();
    let (h_n, c_n) = layer.final_state();
    let (dh0, dc0) = layer.grad_initial_state();
    let mut results = vec![
        ("output".to_owned(), layer.layer().output().data().to_vec()),
        ("h_n".to_owned(), h_n.data().to_vec()),
        ("c_n".to_owned(), c_n.data().to_vec()),
        ("grad_input".to_owned(), layer.layer().grad_input().data().to_vec()),
        ("grad_h0".to_owned(), dh0.data().to_vec()),
        ("grad_c0".to_owned(), dc0.data().to_vec()),
    ];
    results.extend(layer.grads());
    results
}

// On two threads a unit whose recurrent products reach 2^20 multiply-adds runs its time loop
// as one part of the batch per thread (`recurrent/parts.rs`); here seq·batch·G·H·H is at least
// 20·17·64·64 = 1.39 Mi (the plain RNN). The parts change only the order of the weight
// gradients' sums over rows (f32 sums of 340 terms of size < 1: relative differences near
// 1e-6); a row of one part read or written for another, or a state crossing parts, is off by
// 1e-2 or more.
const PARTS_TOL: f64 = 1e-5;

/// Two threads (the batch split into parts, 17 rows: one part shorter) give what one thread
/// gives: two bidirectional layers, batch-first, initial states, sequences of different
/// lengths, for every cell.
#[test]
fn batch_parts_on_two_threads_match_one_thread() {
    let pool = |threads| rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let (seq, batch) = (20, 17);
    let config = RecurrentConfig::new(6, 64).with_layers(2).with_bidirectional(true).with_batch_first(true);
    let lengths: Vec<usize> = (0..batch).map(|b| seq - (b * 7) % 9).collect();
    for kind in KINDS {
        let run = |threads: usize| {
            pool(threads).install(|| {
                let mut layer = AnyLayer::new(kind, config, 41);
                let shape = state_shape(&config, batch);
                let c0 = (kind == Kind::Lstm).then(|| tensor(&shape, 43));
                layer.set_initial_state(Some(tensor(&shape, 42)), c0);
                layer.set_lengths(Some(lengths.clone()));
                let x = tensor(&input_shape(&config, seq, batch), 44);
                let dy = tensor(&[batch, seq, 2 * config.hidden_size], 45);
                pass_results(&mut layer, &x, &dy)
            })
        };
        let (one, two) = (run(1), run(2));
        for ((name, a), (_, b)) in one.iter().zip(&two) {
            let expected: Vec<f64> = a.iter().map(|&v| f64::from(v)).collect();
            assert_close(&format!("{kind:?} {name}"), b, &expected, PARTS_TOL);
        }
    }
}
