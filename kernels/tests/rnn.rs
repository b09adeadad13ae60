//! LSTM and GRU cells and step helpers: parity of the fast paths with the scalar references,
//! gradient checks of whole steps against f64 central differences, saturation, overwrite and
//! accumulate semantics, and every argument check.

mod common;

use common::{accuracy_points, assert_close, edge_size, for_each_isa, max_ulp, sigmoid64, uniform};
use keel_kernels::gemm::PackedB;
use keel_kernels::isa::{current_isa, with_isa};
use keel_kernels::rnn::{self, reference, Nonlinearity, RnnWeightGrads, RnnWeights};
use keel_kernels::KernelError;
use proptest::prelude::*;

// Tolerances.
// The cell parity tests run on every instruction set of the CPU (AVX-512, AVX2 with FMA,
// portable): the same bounds hold on each.
// - Cell forward: the vector σ and tanh (`simd::math`, with FMA where the instruction set
//   has it) differ from libm's by at most 2·10⁻⁷ and 5·10⁻⁷ relative (a few ulp), and the
//   fast path fuses `f⊙c + i⊙g` into one mul_add; outputs are in [-1, 1] (c' up to |c| + 1),
//   so an absolute 1e-6 plus a relative 1e-5 covers a handful of ulp through the chain.
const CELL_FWD: (f32, f32) = (1e-5, 1e-6);
// - Cell backward: only products and a mul_add of the same cached values, so the only
//   differences are the rounding of one fused multiply-add: a few ulp of each product.
const CELL_BWD: (f32, f32) = (1e-5, 1e-6);
// - Whole steps: the native GEMM accumulates in f32 (blocked order) where the reference
//   accumulates in f64; with |values| < 1 and k < 70 terms that is ~1e-6 absolute, carried
//   through the cell and the backward GEMMs.
const STEP: (f32, f32) = (1e-4, 2e-5);

/// The four parameter tensors of a layer with `gates` gates, owned.
struct Params {
    weight_ih: Vec<f32>,
    weight_hh: Vec<f32>,
    bias_ih: Vec<f32>,
    bias_hh: Vec<f32>,
}

impl Params {
    fn random(gates: usize, input: usize, hidden: usize, seed: u64, scale: f32) -> Self {
        let width = gates * hidden;
        Params {
            weight_ih: uniform(width * input, seed, -scale, scale),
            weight_hh: uniform(width * hidden, seed + 1, -scale, scale),
            bias_ih: uniform(width, seed + 2, -scale, scale),
            bias_hh: uniform(width, seed + 3, -scale, scale),
        }
    }

    fn filled(gates: usize, input: usize, hidden: usize, value: f32) -> Self {
        let width = gates * hidden;
        Params {
            weight_ih: vec![value; width * input],
            weight_hh: vec![value; width * hidden],
            bias_ih: vec![value; width],
            bias_hh: vec![value; width],
        }
    }

    fn view(&self) -> RnnWeights<'_> {
        RnnWeights {
            weight_ih: &self.weight_ih,
            weight_hh: &self.weight_hh,
            bias_ih: &self.bias_ih,
            bias_hh: &self.bias_hh,
        }
    }

    fn grads(&mut self) -> RnnWeightGrads<'_> {
        RnnWeightGrads {
            dweight_ih: &mut self.weight_ih,
            dweight_hh: &mut self.weight_hh,
            dbias_ih: &mut self.bias_ih,
            dbias_hh: &mut self.bias_hh,
        }
    }

    fn assert_close(&self, what: &str, expected: &Params, (rtol, atol): (f32, f32)) {
        assert_close(&format!("{what} dweight_ih"), &self.weight_ih, &expected.weight_ih, rtol, atol);
        assert_close(&format!("{what} dweight_hh"), &self.weight_hh, &expected.weight_hh, rtol, atol);
        assert_close(&format!("{what} dbias_ih"), &self.bias_ih, &expected.bias_ih, rtol, atol);
        assert_close(&format!("{what} dbias_hh"), &self.bias_hh, &expected.bias_hh, rtol, atol);
    }
}

fn nan(len: usize) -> Vec<f32> {
    vec![f32::NAN; len]
}

/// Asserts that the slice is not mostly zeros, so a parity check cannot pass vacuously.
/// Exact zeros only: with one sample and a hidden size of 1, a weight gradient of three
/// values can legitimately have two below 1e-6 (a saturated gate), which a magnitude
/// threshold turned into a rare spurious failure.
#[track_caller]
fn assert_exercised(what: &str, values: &[f32]) {
    let nonzero = values.iter().filter(|&&v| v != 0.0).count();
    assert!(nonzero * 2 >= values.len(), "{what}: only {nonzero} of {} values are non-zero", values.len());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn lstm_cell_forward_matches_reference(batch in edge_size(33), hidden in edge_size(65), seed in any::<u64>()) {
        let (bh, b4h, b5h) = (batch * hidden, batch * 4 * hidden, batch * 5 * hidden);
        let gates = uniform(b4h, seed, -6.0, 6.0);
        let c_prev = uniform(bh, seed + 1, -3.0, 3.0);
        let (mut c_ref, mut h_ref, mut cache_ref) = (vec![0.0; bh], vec![0.0; bh], vec![0.0; b5h]);
        reference::lstm_cell_forward(batch, hidden, &gates, &c_prev, &mut c_ref, &mut h_ref, &mut cache_ref);
        assert_exercised("h_next", &h_ref);
        for_each_isa(|| {
            let (mut c_next, mut h_next, mut cache) = (nan(bh), nan(bh), nan(b5h));
            rnn::lstm_cell_forward(batch, hidden, &gates, &c_prev, &mut c_next, &mut h_next, &mut cache).unwrap();
            let (rtol, atol) = CELL_FWD;
            assert_close("c_next", &c_next, &c_ref, rtol, atol);
            assert_close("h_next", &h_next, &h_ref, rtol, atol);
            assert_close("cache", &cache, &cache_ref, rtol, atol);
        });
    }

    #[test]
    fn lstm_cell_backward_matches_reference(
        batch in edge_size(33),
        hidden in edge_size(65),
        with_dc in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let (bh, b4h, b5h) = (batch * hidden, batch * 4 * hidden, batch * 5 * hidden);
        let gates = uniform(b4h, seed, -3.0, 3.0);
        let c_prev = uniform(bh, seed + 1, -2.0, 2.0);
        let (mut c_next, mut h_next, mut cache) = (vec![0.0; bh], vec![0.0; bh], vec![0.0; b5h]);
        reference::lstm_cell_forward(batch, hidden, &gates, &c_prev, &mut c_next, &mut h_next, &mut cache);
        let dh = uniform(bh, seed + 2, -1.0, 1.0);
        let dc = uniform(bh, seed + 3, -1.0, 1.0);
        let dc = with_dc.then_some(dc.as_slice());
        let (mut dgates_ref, mut dc_prev_ref) = (vec![0.0; b4h], vec![0.0; bh]);
        reference::lstm_cell_backward(batch, hidden, &cache, &c_prev, &dh, dc, &mut dgates_ref, &mut dc_prev_ref);
        assert_exercised("dgates", &dgates_ref);
        for_each_isa(|| {
            let (mut dgates, mut dc_prev) = (nan(b4h), nan(bh));
            rnn::lstm_cell_backward(batch, hidden, &cache, &c_prev, &dh, dc, &mut dgates, &mut dc_prev).unwrap();
            let (rtol, atol) = CELL_BWD;
            assert_close("dgates", &dgates, &dgates_ref, rtol, atol);
            assert_close("dc_prev", &dc_prev, &dc_prev_ref, rtol, atol);
        });
    }

    #[test]
    fn gru_cell_forward_matches_reference(batch in edge_size(33), hidden in edge_size(65), seed in any::<u64>()) {
        let (bh, b3h, b4h) = (batch * hidden, batch * 3 * hidden, batch * 4 * hidden);
        let gi = uniform(b3h, seed, -4.0, 4.0);
        let gh = uniform(b3h, seed + 1, -4.0, 4.0);
        let h_prev = uniform(bh, seed + 2, -1.0, 1.0);
        let (mut h_ref, mut cache_ref) = (vec![0.0; bh], vec![0.0; b4h]);
        reference::gru_cell_forward(batch, hidden, &gi, &gh, &h_prev, &mut h_ref, &mut cache_ref);
        assert_exercised("h_next", &h_ref);
        for_each_isa(|| {
            let (mut h_next, mut cache) = (nan(bh), nan(b4h));
            rnn::gru_cell_forward(batch, hidden, &gi, &gh, &h_prev, &mut h_next, &mut cache).unwrap();
            let (rtol, atol) = CELL_FWD;
            assert_close("h_next", &h_next, &h_ref, rtol, atol);
            assert_close("cache", &cache, &cache_ref, rtol, atol);
        });
    }

    #[test]
    fn gru_cell_backward_matches_reference(batch in edge_size(33), hidden in edge_size(65), seed in any::<u64>()) {
        let (bh, b3h, b4h) = (batch * hidden, batch * 3 * hidden, batch * 4 * hidden);
        let gi = uniform(b3h, seed, -3.0, 3.0);
        let gh = uniform(b3h, seed + 1, -3.0, 3.0);
        let h_prev = uniform(bh, seed + 2, -1.0, 1.0);
        let (mut h_next, mut cache) = (vec![0.0; bh], vec![0.0; b4h]);
        reference::gru_cell_forward(batch, hidden, &gi, &gh, &h_prev, &mut h_next, &mut cache);
        let dh = uniform(bh, seed + 3, -1.0, 1.0);
        let (mut dgi_ref, mut dgh_ref, mut dh_direct_ref) = (vec![0.0; b3h], vec![0.0; b3h], vec![0.0; bh]);
        reference::gru_cell_backward(batch, hidden, &cache, &h_prev, &dh, &mut dgi_ref, &mut dgh_ref, &mut dh_direct_ref);
        assert_exercised("dgi", &dgi_ref);
        for_each_isa(|| {
            let (mut dgi, mut dgh, mut dh_direct) = (nan(b3h), nan(b3h), nan(bh));
            rnn::gru_cell_backward(batch, hidden, &cache, &h_prev, &dh, &mut dgi, &mut dgh, &mut dh_direct).unwrap();
            let (rtol, atol) = CELL_BWD;
            assert_close("dgi", &dgi, &dgi_ref, rtol, atol);
            assert_close("dgh", &dgh, &dgh_ref, rtol, atol);
            assert_close("dh_direct", &dh_direct, &dh_direct_ref, rtol, atol);
        });
    }

    #[test]
    fn lstm_step_matches_reference(
        batch in edge_size(17),
        input in edge_size(33),
        hidden in edge_size(33),
        seed in any::<u64>(),
    ) {
        let (bh, b4h, b5h) = (batch * hidden, batch * 4 * hidden, batch * 5 * hidden);
        let params = Params::random(4, input, hidden, seed, 0.4);
        let x = uniform(batch * input, seed + 10, -1.0, 1.0);
        let h_prev = uniform(bh, seed + 11, -1.0, 1.0);
        let c_prev = uniform(bh, seed + 12, -2.0, 2.0);
        let dh = uniform(bh, seed + 13, -1.0, 1.0);
        let dc = uniform(bh, seed + 14, -1.0, 1.0);
        let (rtol, atol) = STEP;

        // Reference whole step, forward and backward (grads start at zero).
        let (mut gates_ref, mut h_ref, mut c_ref, mut cache_ref) =
            (vec![0.0; b4h], vec![0.0; bh], vec![0.0; bh], vec![0.0; b5h]);
        reference::lstm_step_forward(batch, input, hidden, &params.view(), &x, &h_prev, &c_prev,
            &mut gates_ref, &mut h_ref, &mut c_ref, &mut cache_ref);
        let mut grads_ref = Params::filled(4, input, hidden, 0.0);
        let (mut dgates_ref, mut dx_ref, mut dh_prev_ref, mut dc_prev_ref) =
            (vec![0.0; b4h], vec![0.0; batch * input], vec![0.0; bh], vec![0.0; bh]);
        reference::lstm_step_backward(batch, input, hidden, &params.view(), &x, &h_prev, &c_prev, &cache_ref,
            &dh, Some(&dc), &mut dgates_ref, &mut grads_ref.grads(), &mut dx_ref, &mut dh_prev_ref, &mut dc_prev_ref);

        // The fast halves, outputs pre-filled with NaN.
        let mut gates = nan(b4h);
        rnn::lstm_preact_forward(batch, input, hidden, &x, &h_prev, &params.view(), &mut gates).unwrap();
        assert_close("gates", &gates, &gates_ref, rtol, atol);
        let (mut h_next, mut c_next, mut cache) = (nan(bh), nan(bh), nan(b5h));
        rnn::lstm_cell_forward(batch, hidden, &gates, &c_prev, &mut c_next, &mut h_next, &mut cache).unwrap();
        assert_exercised("h_next", &h_ref);
        assert_close("h_next", &h_next, &h_ref, rtol, atol);
        assert_close("c_next", &c_next, &c_ref, rtol, atol);
        let (mut dgates, mut dc_prev) = (nan(b4h), nan(bh));
        rnn::lstm_cell_backward(batch, hidden, &cache, &c_prev, &dh, Some(&dc), &mut dgates, &mut dc_prev).unwrap();
        assert_close("dgates", &dgates, &dgates_ref, rtol, atol);
        assert_close("dc_prev", &dc_prev, &dc_prev_ref, rtol, atol);
        let mut grads = Params::filled(4, input, hidden, 0.0);
        let (mut dx, mut dh_prev) = (nan(batch * input), nan(bh));
        rnn::lstm_preact_backward(batch, input, hidden, &dgates, &x, &h_prev, &params.view(), &mut grads.grads(),
            &mut dx, &mut dh_prev).unwrap();
        assert_exercised("dweight_hh", &grads_ref.weight_hh);
        grads.assert_close("lstm", &grads_ref, STEP);
        assert_close("dx", &dx, &dx_ref, rtol, atol);
        assert_close("dh_prev", &dh_prev, &dh_prev_ref, rtol, atol);
    }

    #[test]
    fn gru_step_matches_reference(
        batch in edge_size(17),
        input in edge_size(33),
        hidden in edge_size(33),
        seed in any::<u64>(),
    ) {
        let (bh, b3h, b4h) = (batch * hidden, batch * 3 * hidden, batch * 4 * hidden);
        let params = Params::random(3, input, hidden, seed, 0.4);
        let x = uniform(batch * input, seed + 10, -1.0, 1.0);
        let h_prev = uniform(bh, seed + 11, -1.0, 1.0);
        let dh = uniform(bh, seed + 13, -1.0, 1.0);
        let (rtol, atol) = STEP;

        let (mut gi_ref, mut gh_ref, mut h_ref, mut cache_ref) =
            (vec![0.0; b3h], vec![0.0; b3h], vec![0.0; bh], vec![0.0; b4h]);
        reference::gru_step_forward(batch, input, hidden, &params.view(), &x, &h_prev,
            &mut gi_ref, &mut gh_ref, &mut h_ref, &mut cache_ref);
        let mut grads_ref = Params::filled(3, input, hidden, 0.0);
        let (mut dgi_ref, mut dgh_ref, mut dx_ref, mut dh_prev_ref) =
            (vec![0.0; b3h], vec![0.0; b3h], vec![0.0; batch * input], vec![0.0; bh]);
        let mut dh_direct_ref = vec![0.0; bh];
        reference::gru_step_backward(batch, input, hidden, &params.view(), &x, &h_prev, &cache_ref, &dh,
            &mut dgi_ref, &mut dgh_ref, &mut dh_direct_ref, &mut grads_ref.grads(), &mut dx_ref, &mut dh_prev_ref);

        let (mut gi, mut gh) = (nan(b3h), nan(b3h));
        rnn::gru_preact_forward(batch, input, hidden, &x, &h_prev, &params.view(), &mut gi, &mut gh).unwrap();
        assert_close("gi", &gi, &gi_ref, rtol, atol);
        assert_close("gh", &gh, &gh_ref, rtol, atol);
        let (mut h_next, mut cache) = (nan(bh), nan(b4h));
        rnn::gru_cell_forward(batch, hidden, &gi, &gh, &h_prev, &mut h_next, &mut cache).unwrap();
        assert_exercised("h_next", &h_ref);
        assert_close("h_next", &h_next, &h_ref, rtol, atol);
        let (mut dgi, mut dgh, mut dh_direct) = (nan(b3h), nan(b3h), nan(bh));
        rnn::gru_cell_backward(batch, hidden, &cache, &h_prev, &dh, &mut dgi, &mut dgh, &mut dh_direct).unwrap();
        assert_close("dgi", &dgi, &dgi_ref, rtol, atol);
        assert_close("dgh", &dgh, &dgh_ref, rtol, atol);
        let mut grads = Params::filled(3, input, hidden, 0.0);
        let (mut dx, mut dh_prev) = (nan(batch * input), nan(bh));
        rnn::gru_preact_backward(batch, input, hidden, &dgi, &dgh, &dh_direct, &x, &h_prev, &params.view(),
            &mut grads.grads(), &mut dx, &mut dh_prev).unwrap();
        assert_exercised("dweight_hh", &grads_ref.weight_hh);
        grads.assert_close("gru", &grads_ref, STEP);
        assert_close("dx", &dx, &dx_ref, rtol, atol);
        assert_close("dh_prev", &dh_prev, &dh_prev_ref, rtol, atol);
    }
}

// ---------------------------------------------------------------------------------------
// Gradient checks: the whole step in f64, differentiated by central differences.

/// Central-difference step; in f64 the truncation error (~EPS²) and the rounding error
/// (~1e-16/EPS) are both far below the f32 tolerance of the comparison.
const EPS: f64 = 1e-6;
// The kernels compute in f32 through two GEMMs and the cell: a relative 1e-3 and an
// absolute 1e-4 (gradients are O(0.1..1) here) is ~100x their rounding, and far below the
// error of any wrong term.
const GRAD: (f32, f32) = (1e-3, 1e-4);

fn to_f64(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&v| f64::from(v)).collect()
}

/// `y (rows, width) = x (rows, cols)·wᵀ + b` in f64.
fn affine64(rows: usize, cols: usize, width: usize, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; rows * width];
    for r in 0..rows {
        for j in 0..width {
            y[r * width + j] = b[j] + (0..cols).map(|p| x[r * cols + p] * w[j * cols + p]).sum::<f64>();
        }
    }
    y
}

/// The gradient of `loss` w.r.t. `inputs[which]` by central differences.
fn numeric_grad(inputs: &[Vec<f64>], which: usize, loss: &dyn Fn(&[Vec<f64>]) -> f64) -> Vec<f64> {
    let mut inputs = inputs.to_vec();
    (0..inputs[which].len())
        .map(|k| {
            let saved = inputs[which][k];
            inputs[which][k] = saved + EPS;
            let plus = loss(&inputs);
            inputs[which][k] = saved - EPS;
            let minus = loss(&inputs);
            inputs[which][k] = saved;
            (plus - minus) / (2.0 * EPS)
        })
        .collect()
}

/// Compares an analytic gradient with the numeric one, which must be non-trivial.
#[track_caller]
fn assert_grad(what: &str, analytic: &[f32], numeric: &[f64]) {
    let largest = numeric.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    assert!(largest > 1e-2, "{what}: numeric gradient is trivial (max |g| = {largest})");
    let numeric: Vec<f32> = numeric.iter().map(|&g| g as f32).collect();
    assert_close(what, analytic, &numeric, GRAD.0, GRAD.1);
}

/// LSTM cell in f64: loss `Σ h'·u + Σ c'·v` from the pre-activations and `c`.
fn lstm_cell_loss64(batch: usize, hidden: usize, gates: &[f64], c: &[f64], u: &[f64], v: &[f64]) -> f64 {
    let mut loss = 0.0;
    for b in 0..batch {
        for j in 0..hidden {
            let pre = |gate: usize| gates[(b * 4 + gate) * hidden + j];
            let (i, f, g, o) = (sigmoid64(pre(0)), sigmoid64(pre(1)), pre(2).tanh(), sigmoid64(pre(3)));
            let c_next = f * c[b * hidden + j] + i * g;
            let h_next = o * c_next.tanh();
            loss += h_next * u[b * hidden + j] + c_next * v[b * hidden + j];
        }
    }
    loss
}

#[test]
fn lstm_step_gradients_match_central_differences() {
    // hidden = 11: one full SIMD block and a tail of 3; input 5; batch 3.
    let (batch, input, hidden) = (3, 5, 11);
    let (bh, b4h) = (batch * hidden, batch * 4 * hidden);
    let params = Params::random(4, input, hidden, 7, 0.5);
    let x = uniform(batch * input, 20, -1.0, 1.0);
    let h_prev = uniform(bh, 21, -1.0, 1.0);
    let c_prev = uniform(bh, 22, -1.5, 1.5);
    let u = uniform(bh, 23, -1.0, 1.0);
    let v = uniform(bh, 24, -1.0, 1.0);

    // Kernel forward then backward with dh' = u, dc' = v (the gradients of the loss).
    let mut gates = vec![0.0; b4h];
    rnn::lstm_preact_forward(batch, input, hidden, &x, &h_prev, &params.view(), &mut gates).unwrap();
    let (mut c_next, mut h_next, mut cache) = (vec![0.0; bh], vec![0.0; bh], vec![0.0; 5 * bh]);
    rnn::lstm_cell_forward(batch, hidden, &gates, &c_prev, &mut c_next, &mut h_next, &mut cache).unwrap();
    let (mut dgates, mut dc_prev) = (vec![0.0; b4h], vec![0.0; bh]);
    rnn::lstm_cell_backward(batch, hidden, &cache, &c_prev, &u, Some(&v), &mut dgates, &mut dc_prev).unwrap();
    let mut grads = Params::filled(4, input, hidden, 0.0);
    let (mut dx, mut dh_prev) = (vec![0.0; batch * input], vec![0.0; bh]);
    rnn::lstm_preact_backward(
        batch,
        input,
        hidden,
        &dgates,
        &x,
        &h_prev,
        &params.view(),
        &mut grads.grads(),
        &mut dx,
        &mut dh_prev,
    )
    .unwrap();

    // The same step in f64: inputs [x, h, c, W_ih, W_hh, b_ih, b_hh].
    let (u64_, v64) = (to_f64(&u), to_f64(&v));
    let inputs =
        [&x, &h_prev, &c_prev, &params.weight_ih, &params.weight_hh, &params.bias_ih, &params.bias_hh]
            .map(|values| to_f64(values));
    let step_loss = |p: &[Vec<f64>]| {
        let mut gates = affine64(batch, input, 4 * hidden, &p[0], &p[3], &p[5]);
        let from_h = affine64(batch, hidden, 4 * hidden, &p[1], &p[4], &p[6]);
        gates.iter_mut().zip(from_h).for_each(|(g, h)| *g += h);
        lstm_cell_loss64(batch, hidden, &gates, &p[2], &u64_, &v64)
    };
    for (which, name, analytic) in [
        (0, "dx", &dx),
        (1, "dh_prev", &dh_prev),
        (2, "dc_prev", &dc_prev),
        (3, "dweight_ih", &grads.weight_ih),
        (4, "dweight_hh", &grads.weight_hh),
        (5, "dbias_ih", &grads.bias_ih),
        (6, "dbias_hh", &grads.bias_hh),
    ] {
        assert_grad(name, analytic, &numeric_grad(&inputs, which, &step_loss));
    }
    // dgates: the gradient w.r.t. the pre-activations themselves.
    let cell_inputs = [to_f64(&gates), to_f64(&c_prev)];
    let cell_loss = |p: &[Vec<f64>]| lstm_cell_loss64(batch, hidden, &p[0], &p[1], &u64_, &v64);
    assert_grad("dgates", &dgates, &numeric_grad(&cell_inputs, 0, &cell_loss));
}

/// GRU cell in f64: loss `Σ h'·u` from the two pre-activation blocks and `h`.
fn gru_cell_loss64(batch: usize, hidden: usize, gi: &[f64], gh: &[f64], h: &[f64], u: &[f64]) -> f64 {
    let mut loss = 0.0;
    for b in 0..batch {
        for j in 0..hidden {
            let at = |gate: usize| (b * 3 + gate) * hidden + j;
            let r = sigmoid64(gi[at(0)] + gh[at(0)]);
            let z = sigmoid64(gi[at(1)] + gh[at(1)]);
            let n = (gi[at(2)] + r * gh[at(2)]).tanh();
            let h_next = (1.0 - z) * n + z * h[b * hidden + j];
            loss += h_next * u[b * hidden + j];
        }
    }
    loss
}

#[test]
fn gru_step_gradients_match_central_differences() {
    let (batch, input, hidden) = (3, 5, 11);
    let (bh, b3h) = (batch * hidden, batch * 3 * hidden);
    let params = Params::random(3, input, hidden, 8, 0.5);
    let x = uniform(batch * input, 30, -1.0, 1.0);
    let h_prev = uniform(bh, 31, -1.0, 1.0);
    let u = uniform(bh, 32, -1.0, 1.0);

    let (mut gi, mut gh) = (vec![0.0; b3h], vec![0.0; b3h]);
    rnn::gru_preact_forward(batch, input, hidden, &x, &h_prev, &params.view(), &mut gi, &mut gh).unwrap();
    let (mut h_next, mut cache) = (vec![0.0; bh], vec![0.0; 4 * bh]);
    rnn::gru_cell_forward(batch, hidden, &gi, &gh, &h_prev, &mut h_next, &mut cache).unwrap();
    let (mut dgi, mut dgh, mut dh_direct) = (vec![0.0; b3h], vec![0.0; b3h], vec![0.0; bh]);
    rnn::gru_cell_backward(batch, hidden, &cache, &h_prev, &u, &mut dgi, &mut dgh, &mut dh_direct).unwrap();
    let mut grads = Params::filled(3, input, hidden, 0.0);
    let (mut dx, mut dh_prev) = (nan(batch * input), nan(bh));
    rnn::gru_preact_backward(
        batch,
        input,
        hidden,
        &dgi,
        &dgh,
        &dh_direct,
        &x,
        &h_prev,
        &params.view(),
        &mut grads.grads(),
        &mut dx,
        &mut dh_prev,
    )
    .unwrap();

    // inputs [x, h, W_ih, W_hh, b_ih, b_hh]; h enters both the GEMM and the direct z⊙h path.
    let u64_ = to_f64(&u);
    let inputs = [&x, &h_prev, &params.weight_ih, &params.weight_hh, &params.bias_ih, &params.bias_hh]
        .map(|values| to_f64(values));
    let step_loss = |p: &[Vec<f64>]| {
        let gi = affine64(batch, input, 3 * hidden, &p[0], &p[2], &p[4]);
        let gh = affine64(batch, hidden, 3 * hidden, &p[1], &p[3], &p[5]);
        gru_cell_loss64(batch, hidden, &gi, &gh, &p[1], &u64_)
    };
    for (which, name, analytic) in [
        (0, "dx", &dx),
        (1, "dh_prev", &dh_prev),
        (2, "dweight_ih", &grads.weight_ih),
        (3, "dweight_hh", &grads.weight_hh),
        (4, "dbias_ih", &grads.bias_ih),
        (5, "dbias_hh", &grads.bias_hh),
    ] {
        assert_grad(name, analytic, &numeric_grad(&inputs, which, &step_loss));
    }
    let cell_inputs = [to_f64(&gi), to_f64(&gh), to_f64(&h_prev)];
    let cell_loss = |p: &[Vec<f64>]| gru_cell_loss64(batch, hidden, &p[0], &p[1], &p[2], &u64_);
    assert_grad("dgi", &dgi, &numeric_grad(&cell_inputs, 0, &cell_loss));
    assert_grad("dgh", &dgh, &numeric_grad(&cell_inputs, 1, &cell_loss));
}

// ---------------------------------------------------------------------------------------
// Threads, saturation, semantics.

/// Runs `f` on a rayon pool of `threads` threads.
/// Runs `f` on a pool of `threads` threads on this thread's instruction set (`install`
/// runs `f` on a pool thread, where the choice of `with_isa` must be made again).
fn on_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    let isa = current_isa();
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(|| with_isa(isa, f).unwrap())
}

#[test]
fn cells_split_over_threads_give_the_same_bits() {
    // On every instruction set of the CPU.
    for_each_isa(|| {
        // 90 rows x 3·257 gate elements = 69390 > MIN_PARALLEL_ELEMENTS (GRU; LSTM has 4·257):
        // on two threads every pass splits its rows into several tasks, and rows are
        // independent, so the bits must not change. hidden = 257 also ends each row with an
        // overlapping vector block.
        let (batch, hidden) = (90, 257);
        let (bh, b4h) = (batch * hidden, batch * 4 * hidden);
        let gates = uniform(b4h, 40, -5.0, 5.0);
        let c_prev = uniform(bh, 41, -2.0, 2.0);
        let dh = uniform(bh, 42, -1.0, 1.0);
        let dc = uniform(bh, 43, -1.0, 1.0);
        let lstm = |threads| {
            on_pool(threads, || {
                let (mut c_next, mut h_next, mut cache) = (nan(bh), nan(bh), nan(5 * bh));
                rnn::lstm_cell_forward(batch, hidden, &gates, &c_prev, &mut c_next, &mut h_next, &mut cache)
                    .unwrap();
                let (mut dgates, mut dc_prev) = (nan(b4h), nan(bh));
                rnn::lstm_cell_backward(
                    batch,
                    hidden,
                    &cache,
                    &c_prev,
                    &dh,
                    Some(&dc),
                    &mut dgates,
                    &mut dc_prev,
                )
                .unwrap();
                [c_next, h_next, cache, dgates, dc_prev]
            })
        };
        let (one, two) = (lstm(1), lstm(2));
        assert_eq!(one, two, "lstm: 1 and 2 threads differ");
        let (mut c_ref, mut h_ref, mut cache_ref) = (vec![0.0; bh], vec![0.0; bh], vec![0.0; 5 * bh]);
        reference::lstm_cell_forward(batch, hidden, &gates, &c_prev, &mut c_ref, &mut h_ref, &mut cache_ref);
        let (mut dgates_ref, mut dc_prev_ref) = (vec![0.0; b4h], vec![0.0; bh]);
        reference::lstm_cell_backward(
            batch,
            hidden,
            &cache_ref,
            &c_prev,
            &dh,
            Some(&dc),
            &mut dgates_ref,
            &mut dc_prev_ref,
        );
        assert_close("lstm h_next", &two[1], &h_ref, CELL_FWD.0, CELL_FWD.1);
        // Backward from each path's own cache: the forward differences (CELL_FWD) carry over.
        assert_close("lstm dgates", &two[3], &dgates_ref, CELL_BWD.0, 1e-5);

        let b3h = batch * 3 * hidden;
        let gi = uniform(b3h, 44, -4.0, 4.0);
        let gh = uniform(b3h, 45, -4.0, 4.0);
        let h_prev = uniform(bh, 46, -1.0, 1.0);
        let gru = |threads| {
            on_pool(threads, || {
                let (mut h_next, mut cache) = (nan(bh), nan(4 * bh));
                rnn::gru_cell_forward(batch, hidden, &gi, &gh, &h_prev, &mut h_next, &mut cache).unwrap();
                let (mut dgi, mut dgh, mut dh_direct) = (nan(b3h), nan(b3h), nan(bh));
                rnn::gru_cell_backward(
                    batch,
                    hidden,
                    &cache,
                    &h_prev,
                    &dh,
                    &mut dgi,
                    &mut dgh,
                    &mut dh_direct,
                )
                .unwrap();
                [h_next, cache, dgi, dgh, dh_direct]
            })
        };
        let (one, two) = (gru(1), gru(2));
        assert_eq!(one, two, "gru: 1 and 2 threads differ");
        let (mut h_ref, mut cache_ref) = (vec![0.0; bh], vec![0.0; 4 * bh]);
        reference::gru_cell_forward(batch, hidden, &gi, &gh, &h_prev, &mut h_ref, &mut cache_ref);
        assert_close("gru h_next", &two[0], &h_ref, CELL_FWD.0, CELL_FWD.1);
    });
}

/// Pre-activations at and beyond every saturation threshold of exp/tanh, both signs.
fn saturating(len: usize) -> Vec<f32> {
    const MAGNITUDES: [f32; 12] = [1e4, 1e3, 100.0, 88.8, 88.7, 87.0, 50.0, 20.0, 9.02, 9.0, 1e-5, 0.0];
    (0..len)
        .map(|k| {
            MAGNITUDES[k % MAGNITUDES.len()]
                * if (k / MAGNITUDES.len()).is_multiple_of(2) { 1.0 } else { -1.0 }
        })
        .collect()
}

#[track_caller]
fn assert_finite(what: &str, values: &[f32]) {
    if let Some(k) = values.iter().position(|v| !v.is_finite()) {
        panic!("{what}[{k}] = {}", values[k]);
    }
}

#[test]
fn cells_saturate_without_nan() {
    // On every instruction set of the CPU (hidden = 13 is a padded row on AVX-512).
    for_each_isa(|| {
        // |pre-activations| up to 1e4: exp overflows to +inf or underflows to 0 inside σ, tanh
        // must clamp to ±1; nothing may become NaN, and saturated gates are exactly 0 or 1.
        // hidden = 13: a full SIMD block and a tail of 5.
        let (batch, hidden) = (4, 13);
        let (bh, b4h) = (batch * hidden, batch * 4 * hidden);
        let gates = saturating(b4h);
        let c_prev: Vec<f32> = saturating(bh + 5)[5..].to_vec();
        let (mut c_next, mut h_next, mut cache) = (nan(bh), nan(bh), nan(5 * bh));
        rnn::lstm_cell_forward(batch, hidden, &gates, &c_prev, &mut c_next, &mut h_next, &mut cache).unwrap();
        for (what, values) in [("c_next", &c_next), ("h_next", &h_next), ("cache", &cache)] {
            assert_finite(what, values);
        }
        let (mut c_ref, mut h_ref, mut cache_ref) = (vec![0.0; bh], vec![0.0; bh], vec![0.0; 5 * bh]);
        reference::lstm_cell_forward(batch, hidden, &gates, &c_prev, &mut c_ref, &mut h_ref, &mut cache_ref);
        assert_close("saturated h_next", &h_next, &h_ref, CELL_FWD.0, CELL_FWD.1);
        assert_close("saturated c_next", &c_next, &c_ref, CELL_FWD.0, CELL_FWD.1);
        assert_close("saturated cache", &cache, &cache_ref, CELL_FWD.0, CELL_FWD.1);
        // The i gate of row 0 sees 1e4 at j = 0 and -1e4 at j = 12; the g gate of row 0 (k = 26..39)
        // sees -1e4 at k = 36 (j = 10).
        assert_eq!((cache[0], cache[12]), (1.0, 0.0), "σ(±1e4)");
        assert_eq!(cache[2 * hidden + 10], -1.0, "tanh(-1e4)");
        assert!(cache.iter().all(|v| v.abs() <= 1.0), "an activation left [-1, 1]");
        let dh = uniform(bh, 50, -1.0, 1.0);
        let dc = uniform(bh, 51, -1.0, 1.0);
        let (mut dgates, mut dc_prev) = (nan(b4h), nan(bh));
        rnn::lstm_cell_backward(batch, hidden, &cache, &c_prev, &dh, Some(&dc), &mut dgates, &mut dc_prev)
            .unwrap();
        assert_finite("dgates", &dgates);
        assert_finite("dc_prev", &dc_prev);

        let b3h = batch * 3 * hidden;
        let gi = saturating(b3h);
        let gh: Vec<f32> = saturating(b3h + 7)[7..].to_vec();
        let h_prev = uniform(bh, 52, -1.0, 1.0);
        let (mut h_next, mut cache) = (nan(bh), nan(4 * bh));
        rnn::gru_cell_forward(batch, hidden, &gi, &gh, &h_prev, &mut h_next, &mut cache).unwrap();
        assert_finite("gru h_next", &h_next);
        assert_finite("gru cache", &cache);
        let (mut h_ref, mut cache_ref) = (vec![0.0; bh], vec![0.0; 4 * bh]);
        reference::gru_cell_forward(batch, hidden, &gi, &gh, &h_prev, &mut h_ref, &mut cache_ref);
        assert_close("saturated gru h_next", &h_next, &h_ref, CELL_FWD.0, CELL_FWD.1);
        assert_close("saturated gru cache", &cache, &cache_ref, CELL_FWD.0, CELL_FWD.1);
        let (mut dgi, mut dgh, mut dh_direct) = (nan(b3h), nan(b3h), nan(bh));
        rnn::gru_cell_backward(batch, hidden, &cache, &h_prev, &dh, &mut dgi, &mut dgh, &mut dh_direct)
            .unwrap();
        for (what, values) in [("dgi", &dgi), ("dgh", &dgh), ("dh_direct", &dh_direct)] {
            assert_finite(what, values);
        }
    });
}

#[test]
fn nan_propagates_through_the_cells() {
    for_each_isa(|| {
        // A NaN pre-activation must give NaN in its own lane (the clamps inside exp keep NaN) and
        // leave the other lanes alone; one NaN per gate block in different lanes.
        let (batch, hidden) = (1, 9);
        let mut gates = uniform(4 * hidden, 80, -2.0, 2.0);
        gates[2 * hidden + 3] = f32::NAN; // g of lane 3
        let c_prev = uniform(hidden, 81, -1.0, 1.0);
        let (mut c_next, mut h_next, mut cache) = (nan(hidden), nan(hidden), nan(5 * hidden));
        rnn::lstm_cell_forward(batch, hidden, &gates, &c_prev, &mut c_next, &mut h_next, &mut cache).unwrap();
        for (j, h) in h_next.iter().enumerate() {
            assert_eq!(h.is_nan(), j == 3, "lstm h_next[{j}] = {h}");
        }
        let mut gi = uniform(3 * hidden, 82, -2.0, 2.0);
        gi[hidden + 8] = f32::NAN; // z of lane 8 (the overlapping last block)
        let gh = uniform(3 * hidden, 83, -2.0, 2.0);
        let (mut h_next, mut cache) = (nan(hidden), nan(4 * hidden));
        rnn::gru_cell_forward(batch, hidden, &gi, &gh, &c_prev, &mut h_next, &mut cache).unwrap();
        for (j, h) in h_next.iter().enumerate() {
            assert_eq!(h.is_nan(), j == 8, "gru h_next[{j}] = {h}");
        }
    });
}

#[test]
fn preact_backward_accumulates_parameter_gradients() {
    // Starting from non-zero gradients G0, one backward must give G0 + (the gradients it
    // gives from zero). dx and dh_prev are overwritten, for every cell (pre-filled with NaN,
    // and equal whatever the gradients started at).
    let (batch, input, hidden) = (5, 7, 9);
    let (bh, b4h, b3h) = (batch * hidden, batch * 4 * hidden, batch * 3 * hidden);
    let x = uniform(batch * input, 60, -1.0, 1.0);
    let h_prev = uniform(bh, 61, -1.0, 1.0);
    let tol = (1e-5, 1e-6);

    let params = Params::random(4, input, hidden, 62, 0.5);
    let dgates = uniform(b4h, 63, -1.0, 1.0);
    let lstm = |start: &Params| {
        let mut grads = Params::filled(4, input, hidden, 0.0);
        grads.weight_ih.copy_from_slice(&start.weight_ih);
        grads.weight_hh.copy_from_slice(&start.weight_hh);
        grads.bias_ih.copy_from_slice(&start.bias_ih);
        grads.bias_hh.copy_from_slice(&start.bias_hh);
        let (mut dx, mut dh_prev) = (nan(batch * input), nan(bh));
        rnn::lstm_preact_backward(
            batch,
            input,
            hidden,
            &dgates,
            &x,
            &h_prev,
            &params.view(),
            &mut grads.grads(),
            &mut dx,
            &mut dh_prev,
        )
        .unwrap();
        (grads, dx, dh_prev)
    };
    let start = Params::random(4, input, hidden, 64, 2.0);
    let (fresh, dx0, dh0) = lstm(&Params::filled(4, input, hidden, 0.0));
    let (accumulated, dx1, dh1) = lstm(&start);
    let sum = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| a + b).collect::<Vec<f32>>();
    let expected = Params {
        weight_ih: sum(&start.weight_ih, &fresh.weight_ih),
        weight_hh: sum(&start.weight_hh, &fresh.weight_hh),
        bias_ih: sum(&start.bias_ih, &fresh.bias_ih),
        bias_hh: sum(&start.bias_hh, &fresh.bias_hh),
    };
    accumulated.assert_close("lstm accumulate", &expected, tol);
    assert_exercised("fresh dweight_ih", &fresh.weight_ih);
    assert_eq!((dx0, dh0), (dx1, dh1), "dx and dh_prev must not depend on the gradients");

    let params = Params::random(3, input, hidden, 65, 0.5);
    let dgi = uniform(b3h, 66, -1.0, 1.0);
    let dgh = uniform(b3h, 67, -1.0, 1.0);
    let dh_direct = uniform(bh, 69, -2.0, 2.0);
    let gru = |start: &Params| {
        let mut grads = Params::filled(3, input, hidden, 0.0);
        grads.weight_ih.copy_from_slice(&start.weight_ih);
        grads.weight_hh.copy_from_slice(&start.weight_hh);
        grads.bias_ih.copy_from_slice(&start.bias_ih);
        grads.bias_hh.copy_from_slice(&start.bias_hh);
        let (mut dx, mut dh_prev) = (nan(batch * input), nan(bh));
        rnn::gru_preact_backward(
            batch,
            input,
            hidden,
            &dgi,
            &dgh,
            &dh_direct,
            &x,
            &h_prev,
            &params.view(),
            &mut grads.grads(),
            &mut dx,
            &mut dh_prev,
        )
        .unwrap();
        (grads, dx, dh_prev)
    };
    let start = Params::random(3, input, hidden, 68, 2.0);
    let (fresh, dx0, dh0) = gru(&Params::filled(3, input, hidden, 0.0));
    let (accumulated, dx1, dh1) = gru(&start);
    let expected = Params {
        weight_ih: sum(&start.weight_ih, &fresh.weight_ih),
        weight_hh: sum(&start.weight_hh, &fresh.weight_hh),
        bias_ih: sum(&start.bias_ih, &fresh.bias_ih),
        bias_hh: sum(&start.bias_hh, &fresh.bias_hh),
    };
    accumulated.assert_close("gru accumulate", &expected, tol);
    assert_eq!((dx0, dh0), (dx1, dh1), "gru dx and dh_prev must not depend on the gradients");
}

#[test]
fn zero_sizes_are_clean() {
    let params = Params::filled(4, 3, 0, 0.5);
    let mut grads = Params::filled(4, 3, 0, 0.0);
    // hidden = 0: nothing to compute, but dx (batch, input) is overwritten with zeros.
    let mut dx = nan(2 * 3);
    rnn::lstm_preact_backward(
        2,
        3,
        0,
        &[],
        &[0.5; 6],
        &[],
        &params.view(),
        &mut grads.grads(),
        &mut dx,
        &mut [],
    )
    .unwrap();
    assert_eq!(dx, vec![0.0; 6]);
    rnn::lstm_cell_forward(0, 5, &[], &[], &mut [], &mut [], &mut []).unwrap();
    rnn::lstm_cell_backward(0, 5, &[], &[], &[], None, &mut [], &mut []).unwrap();
    rnn::gru_cell_forward(3, 0, &[], &[], &[], &mut [], &mut []).unwrap();
    rnn::gru_cell_backward(3, 0, &[], &[], &[], &mut [], &mut [], &mut []).unwrap();

    // input = 0: the gates come from h and the biases alone.
    let (batch, hidden) = (2, 5);
    let params = Params::random(3, 0, hidden, 70, 0.5);
    let h_prev = uniform(batch * hidden, 71, -1.0, 1.0);
    let (mut gi, mut gh) = (nan(batch * 3 * hidden), nan(batch * 3 * hidden));
    rnn::gru_preact_forward(batch, 0, hidden, &[], &h_prev, &params.view(), &mut gi, &mut gh).unwrap();
    let (mut gi_ref, mut gh_ref) = (vec![0.0; batch * 3 * hidden], vec![0.0; batch * 3 * hidden]);
    reference::gru_preact_forward(batch, 0, hidden, &[], &h_prev, &params.view(), &mut gi_ref, &mut gh_ref);
    assert_close("gi from biases", &gi, &gi_ref, 0.0, 0.0);
    assert_close("gh", &gh, &gh_ref, STEP.0, STEP.1);
}

// ---------------------------------------------------------------------------------------
// Bad input: every length check, and shapes whose sizes overflow.

/// Calls `call` with buffers of `lens` (accepted), then once per argument with that one
/// buffer a element too long, expecting a `Length` error naming it.
fn check_each_length(lens: &[(&str, usize)], call: impl Fn(&mut [Vec<f32>]) -> Result<(), KernelError>) {
    let buffers = |bad: Option<usize>| -> Vec<Vec<f32>> {
        lens.iter().enumerate().map(|(k, &(_, len))| vec![0.25; len + usize::from(bad == Some(k))]).collect()
    };
    call(&mut buffers(None)).expect("correct lengths must be accepted");
    for (k, &(name, len)) in lens.iter().enumerate() {
        match call(&mut buffers(Some(k))) {
            Err(KernelError::Length { what, expected, actual }) => {
                assert!(what.starts_with(&format!("{name} ")), "{name}: error names {what:?}");
                assert_eq!((expected, actual), (len, len + 1), "{name}");
            }
            other => panic!("{name} one too long: expected a Length error, got {other:?}"),
        }
    }
}

fn weights_of(b: &[Vec<f32>]) -> RnnWeights<'_> {
    RnnWeights { weight_ih: &b[0], weight_hh: &b[1], bias_ih: &b[2], bias_hh: &b[3] }
}

#[test]
fn every_length_is_checked() {
    let (batch, input, hidden) = (3, 4, 5);
    let (bh, bi) = (batch * hidden, batch * input);
    let weights = |gates: usize, prefix: &'static str| {
        let names: [&'static str; 4] = if prefix.is_empty() {
            ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
        } else {
            ["dweight_ih", "dweight_hh", "dbias_ih", "dbias_hh"]
        };
        let lens = [gates * hidden * input, gates * hidden * hidden, gates * hidden, gates * hidden];
        names.into_iter().zip(lens).collect::<Vec<_>>()
    };

    check_each_length(
        &[("gates_preact", 4 * bh), ("c_prev", bh), ("c_next", bh), ("h_next", bh), ("cache", 5 * bh)],
        |b| {
            let [g, cp, cn, hn, ca] = b else { unreachable!() };
            rnn::lstm_cell_forward(batch, hidden, g, cp, cn, hn, ca)
        },
    );
    check_each_length(
        &[
            ("cache", 5 * bh),
            ("c_prev", bh),
            ("dh_next", bh),
            ("dc_next", bh),
            ("dgates", 4 * bh),
            ("dc_prev", bh),
        ],
        |b| {
            let [ca, cp, dh, dc, dg, dcp] = b else { unreachable!() };
            rnn::lstm_cell_backward(batch, hidden, ca, cp, dh, Some(dc), dg, dcp)
        },
    );
    check_each_length(
        &[("gi", 3 * bh), ("gh", 3 * bh), ("h_prev", bh), ("h_next", bh), ("cache", 4 * bh)],
        |b| {
            let [gi, gh, hp, hn, ca] = b else { unreachable!() };
            rnn::gru_cell_forward(batch, hidden, gi, gh, hp, hn, ca)
        },
    );
    check_each_length(
        &[
            ("cache", 4 * bh),
            ("h_prev", bh),
            ("dh_next", bh),
            ("dgi", 3 * bh),
            ("dgh", 3 * bh),
            ("dh_direct", bh),
        ],
        |b| {
            let [ca, hp, dh, dgi, dgh, dhp] = b else { unreachable!() };
            rnn::gru_cell_backward(batch, hidden, ca, hp, dh, dgi, dgh, dhp)
        },
    );

    let mut lens = weights(4, "");
    lens.extend([("x", bi), ("h_prev", bh), ("gates", 4 * bh)]);
    check_each_length(&lens, |b| {
        let (w, rest) = b.split_at_mut(4);
        let [x, hp, g] = rest else { unreachable!() };
        rnn::lstm_preact_forward(batch, input, hidden, x, hp, &weights_of(w), g)
    });
    let mut lens = weights(3, "");
    lens.extend([("x", bi), ("h_prev", bh), ("gi", 3 * bh), ("gh", 3 * bh)]);
    check_each_length(&lens, |b| {
        let (w, rest) = b.split_at_mut(4);
        let [x, hp, gi, gh] = rest else { unreachable!() };
        rnn::gru_preact_forward(batch, input, hidden, x, hp, &weights_of(w), gi, gh)
    });

    let mut lens = weights(4, "");
    lens.extend(weights(4, "d"));
    lens.extend([("dgates", 4 * bh), ("x", bi), ("h_prev", bh), ("dx", bi), ("dh_prev", bh)]);
    check_each_length(&lens, |b| {
        let (w, rest) = b.split_at_mut(4);
        let (d, rest) = rest.split_at_mut(4);
        let [dw_ih, dw_hh, db_ih, db_hh] = d else { unreachable!() };
        let mut grads =
            RnnWeightGrads { dweight_ih: dw_ih, dweight_hh: dw_hh, dbias_ih: db_ih, dbias_hh: db_hh };
        let [dg, x, hp, dx, dhp] = rest else { unreachable!() };
        rnn::lstm_preact_backward(batch, input, hidden, dg, x, hp, &weights_of(w), &mut grads, dx, dhp)
    });
    let mut lens = weights(3, "");
    lens.extend(weights(3, "d"));
    lens.extend([
        ("dgi", 3 * bh),
        ("dgh", 3 * bh),
        ("dh_direct", bh),
        ("x", bi),
        ("h_prev", bh),
        ("dx", bi),
        ("dh_prev", bh),
    ]);
    check_each_length(&lens, |b| {
        let (w, rest) = b.split_at_mut(4);
        let (d, rest) = rest.split_at_mut(4);
        let [dw_ih, dw_hh, db_ih, db_hh] = d else { unreachable!() };
        let mut grads =
            RnnWeightGrads { dweight_ih: dw_ih, dweight_hh: dw_hh, dbias_ih: db_ih, dbias_hh: db_hh };
        let [dgi, dgh, dhd, x, hp, dx, dhp] = rest else { unreachable!() };
        rnn::gru_preact_backward(
            batch,
            input,
            hidden,
            dgi,
            dgh,
            dhd,
            x,
            hp,
            &weights_of(w),
            &mut grads,
            dx,
            dhp,
        )
    });
}

#[test]
fn overflowing_shapes_are_shape_errors() {
    let is_shape = |result: Result<(), KernelError>, case: &str| {
        assert!(
            matches!(result, Err(KernelError::Shape { .. })),
            "{case}: expected a Shape error, got {result:?}"
        );
    };
    // 4·hidden overflows.
    is_shape(rnn::lstm_cell_forward(1, usize::MAX / 2, &[], &[], &mut [], &mut [], &mut []), "4·hidden");
    // batch·hidden overflows.
    is_shape(rnn::gru_cell_forward(usize::MAX / 2, 7, &[], &[], &[], &mut [], &mut []), "batch·3·hidden");
    is_shape(
        rnn::gru_cell_backward(1 << 40, 1 << 30, &[], &[], &[], &mut [], &mut [], &mut []),
        "batch·4·hidden",
    );
    let empty = RnnWeights { weight_ih: &[], weight_hh: &[], bias_ih: &[], bias_hh: &[] };
    // (4·hidden)·input overflows in weight_ih.
    is_shape(rnn::lstm_preact_forward(1, usize::MAX / 8, 4, &[], &[], &empty, &mut []), "weight_ih");
    // The plain RNN and the projections: batch·hidden, rows·cols and width·cols overflow.
    is_shape(rnn::rnn_cell_forward(usize::MAX / 2, 3, Nonlinearity::Tanh, &[], &mut []), "rnn batch·hidden");
    is_shape(rnn::rnn_cell_backward(1 << 40, 1 << 30, Nonlinearity::Relu, &[], &[], &mut []), "rnn backward");
    is_shape(rnn::rnn_preact_forward(1, usize::MAX / 2, 3, &[], &[], &empty, &mut []), "rnn weight_ih");
    is_shape(rnn::projection_forward(1 << 40, 1 << 30, 1, &[], &[], &[0.0], false, &mut []), "projection x");
    is_shape(
        rnn::projection_backward_data(0, 1 << 40, 1 << 30, &[], &[], false, &mut []),
        "projection weight",
    );
    is_shape(
        rnn::projection_backward_weight(1 << 40, 1, 1 << 30, &[], &[], &mut [], &mut []),
        "projection dy",
    );
}

// ---------------------------------------------------------------------------------------
// The plain RNN cell (PyTorch `nn.RNN`): h' = act(x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh).

const NONLINEARITIES: [Nonlinearity; 2] = [Nonlinearity::Tanh, Nonlinearity::Relu];

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn rnn_cell_matches_reference(batch in edge_size(33), hidden in edge_size(65), seed in any::<u64>()) {
        let bh = batch * hidden;
        let preact = uniform(bh, seed, -4.0, 4.0);
        let dh = uniform(bh, seed + 1, -1.0, 1.0);
        for nonlinearity in NONLINEARITIES {
            let mut h_ref = vec![0.0; bh];
            reference::rnn_cell_forward(batch, hidden, nonlinearity, &preact, &mut h_ref);
            let mut dpre_ref = vec![0.0; bh];
            reference::rnn_cell_backward(batch, hidden, nonlinearity, &h_ref, &dh, &mut dpre_ref);
            // ReLU zeroes about half of them by design; tanh none.
            if nonlinearity == Nonlinearity::Tanh {
                assert_exercised("dpreact", &dpre_ref);
            }
            for_each_isa(|| {
                let (mut h_next, mut dpre) = (nan(bh), nan(bh));
                rnn::rnn_cell_forward(batch, hidden, nonlinearity, &preact, &mut h_next).unwrap();
                assert_close("h_next", &h_next, &h_ref, CELL_FWD.0, CELL_FWD.1);
                // Backward from the reference's h': only the derivative's rounding differs.
                rnn::rnn_cell_backward(batch, hidden, nonlinearity, &h_ref, &dh, &mut dpre).unwrap();
                assert_close("dpreact", &dpre, &dpre_ref, CELL_BWD.0, CELL_BWD.1);
            });
        }
    }

    #[test]
    fn rnn_step_matches_reference(
        batch in edge_size(17),
        input in edge_size(33),
        hidden in edge_size(33),
        relu in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let nonlinearity = if relu { Nonlinearity::Relu } else { Nonlinearity::Tanh };
        let bh = batch * hidden;
        let params = Params::random(1, input, hidden, seed, 0.4);
        let x = uniform(batch * input, seed + 10, -1.0, 1.0);
        let h_prev = uniform(bh, seed + 11, -1.0, 1.0);
        let dh = uniform(bh, seed + 13, -1.0, 1.0);
        let (rtol, atol) = STEP;

        let (mut pre_ref, mut h_ref) = (vec![0.0; bh], vec![0.0; bh]);
        reference::rnn_step_forward(batch, input, hidden, nonlinearity, &params.view(), &x, &h_prev,
            &mut pre_ref, &mut h_ref);
        let mut grads_ref = Params::filled(1, input, hidden, 0.0);
        let (mut dpre_ref, mut dx_ref, mut dh_prev_ref) = (vec![0.0; bh], vec![0.0; batch * input], vec![0.0; bh]);
        reference::rnn_step_backward(batch, input, hidden, nonlinearity, &params.view(), &x, &h_prev, &h_ref, &dh,
            &mut dpre_ref, &mut grads_ref.grads(), &mut dx_ref, &mut dh_prev_ref);

        for_each_isa(|| {
            let (mut pre, mut h_next) = (nan(bh), nan(bh));
            rnn::rnn_preact_forward(batch, input, hidden, &x, &h_prev, &params.view(), &mut pre).unwrap();
            assert_close("preact", &pre, &pre_ref, rtol, atol);
            rnn::rnn_cell_forward(batch, hidden, nonlinearity, &pre, &mut h_next).unwrap();
            assert_close("h_next", &h_next, &h_ref, rtol, atol);
            // Backward from the reference's h' and pre-activation (ReLU's kink at 0 would
            // otherwise let a rounding difference flip a derivative).
            let mut dpre = nan(bh);
            rnn::rnn_cell_backward(batch, hidden, nonlinearity, &h_ref, &dh, &mut dpre).unwrap();
            assert_close("dpreact", &dpre, &dpre_ref, rtol, atol);
            let mut grads = Params::filled(1, input, hidden, 0.0);
            let (mut dx, mut dh_prev) = (nan(batch * input), nan(bh));
            rnn::rnn_preact_backward(batch, input, hidden, &dpre_ref, &x, &h_prev, &params.view(),
                &mut grads.grads(), &mut dx, &mut dh_prev).unwrap();
            grads.assert_close("rnn", &grads_ref, STEP);
            assert_close("dx", &dx, &dx_ref, rtol, atol);
            assert_close("dh_prev", &dh_prev, &dh_prev_ref, rtol, atol);
        });
        if !relu {
            assert_exercised("dweight_hh", &grads_ref.weight_hh);
        }
    }
}

/// Plain RNN step in f64: loss `Σ act(x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh)·u`, inputs
/// `[x, h, W_ih, W_hh, b_ih, b_hh]`.
fn rnn_step_loss64(
    (batch, input, hidden): (usize, usize, usize),
    nonlinearity: Nonlinearity,
    p: &[Vec<f64>],
    u: &[f64],
) -> f64 {
    let mut pre = affine64(batch, input, hidden, &p[0], &p[2], &p[4]);
    let from_h = affine64(batch, hidden, hidden, &p[1], &p[3], &p[5]);
    pre.iter_mut().zip(from_h).for_each(|(a, b)| *a += b);
    pre.iter()
        .zip(u)
        .map(|(&z, &u)| {
            let h = match nonlinearity {
                Nonlinearity::Tanh => z.tanh(),
                Nonlinearity::Relu => z.max(0.0),
            };
            h * u
        })
        .sum()
}

#[test]
fn rnn_step_gradients_match_central_differences() {
    // hidden = 11: one full SIMD block and a tail of 3; input 5; batch 3; on every ISA.
    let (batch, input, hidden) = (3, 5, 11);
    let bh = batch * hidden;
    let params = Params::random(1, input, hidden, 9, 0.5);
    let x = uniform(batch * input, 50, -1.0, 1.0);
    let h_prev = uniform(bh, 51, -1.0, 1.0);
    let u = uniform(bh, 52, -1.0, 1.0);
    let u64_ = to_f64(&u);
    let inputs = [&x, &h_prev, &params.weight_ih, &params.weight_hh, &params.bias_ih, &params.bias_hh]
        .map(|values| to_f64(values));
    for nonlinearity in NONLINEARITIES {
        for_each_isa(|| {
            let (mut pre, mut h_next) = (nan(bh), nan(bh));
            rnn::rnn_preact_forward(batch, input, hidden, &x, &h_prev, &params.view(), &mut pre).unwrap();
            rnn::rnn_cell_forward(batch, hidden, nonlinearity, &pre, &mut h_next).unwrap();
            // ReLU's kink: no pre-activation may sit within the difference step of 0.
            assert!(pre.iter().all(|z| z.abs() > 1e-4), "a pre-activation is too close to 0");
            let mut dpre = nan(bh);
            rnn::rnn_cell_backward(batch, hidden, nonlinearity, &h_next, &u, &mut dpre).unwrap();
            let mut grads = Params::filled(1, input, hidden, 0.0);
            let (mut dx, mut dh_prev) = (nan(batch * input), nan(bh));
            rnn::rnn_preact_backward(
                batch,
                input,
                hidden,
                &dpre,
                &x,
                &h_prev,
                &params.view(),
                &mut grads.grads(),
                &mut dx,
                &mut dh_prev,
            )
            .unwrap();
            let loss = |p: &[Vec<f64>]| rnn_step_loss64((batch, input, hidden), nonlinearity, p, &u64_);
            for (which, name, analytic) in [
                (0, "dx", &dx),
                (1, "dh_prev", &dh_prev),
                (2, "dweight_ih", &grads.weight_ih),
                (3, "dweight_hh", &grads.weight_hh),
                (4, "dbias_ih", &grads.bias_ih),
                (5, "dbias_hh", &grads.bias_hh),
            ] {
                assert_grad(
                    &format!("{} {name}", nonlinearity.name()),
                    analytic,
                    &numeric_grad(&inputs, which, &loss),
                );
            }
        });
    }
}

#[test]
fn rnn_and_projection_lengths_are_checked() {
    let (batch, input, hidden) = (3, 4, 5);
    let (bh, bi) = (batch * hidden, batch * input);
    check_each_length(&[("preact", bh), ("h_next", bh)], |b| {
        let [p, h] = b else { unreachable!() };
        rnn::rnn_cell_forward(batch, hidden, Nonlinearity::Relu, p, h)
    });
    check_each_length(&[("h_next", bh), ("dh_next", bh), ("dpreact", bh)], |b| {
        let [h, dh, dp] = b else { unreachable!() };
        rnn::rnn_cell_backward(batch, hidden, Nonlinearity::Tanh, h, dh, dp)
    });
    let weight_lens = [
        ("weight_ih", hidden * input),
        ("weight_hh", hidden * hidden),
        ("bias_ih", hidden),
        ("bias_hh", hidden),
    ];
    let mut lens = weight_lens.to_vec();
    lens.extend([("x", bi), ("h_prev", bh), ("preact", bh)]);
    check_each_length(&lens, |b| {
        let (w, rest) = b.split_at_mut(4);
        let [x, hp, p] = rest else { unreachable!() };
        rnn::rnn_preact_forward(batch, input, hidden, x, hp, &weights_of(w), p)
    });
    let mut lens = weight_lens.to_vec();
    lens.extend([
        ("dweight_ih", hidden * input),
        ("dweight_hh", hidden * hidden),
        ("dbias_ih", hidden),
        ("dbias_hh", hidden),
    ]);
    lens.extend([("dpreact", bh), ("x", bi), ("h_prev", bh), ("dx", bi), ("dh_prev", bh)]);
    check_each_length(&lens, |b| {
        let (w, rest) = b.split_at_mut(4);
        let (d, rest) = rest.split_at_mut(4);
        let [dw_ih, dw_hh, db_ih, db_hh] = d else { unreachable!() };
        let mut grads =
            RnnWeightGrads { dweight_ih: dw_ih, dweight_hh: dw_hh, dbias_ih: db_ih, dbias_hh: db_hh };
        let [dp, x, hp, dx, dhp] = rest else { unreachable!() };
        rnn::rnn_preact_backward(batch, input, hidden, dp, x, hp, &weights_of(w), &mut grads, dx, dhp)
    });
    // The projections on (rows, cols) inputs and (rows, width) outputs.
    let (rows, cols, width) = (6, 4, 7);
    check_each_length(
        &[("x", rows * cols), ("weight", width * cols), ("bias", width), ("y", rows * width)],
        |b| {
            let [x, w, bias, y] = b else { unreachable!() };
            rnn::projection_forward(rows, cols, width, x, w, bias, true, y)
        },
    );
    check_each_length(&[("dy", rows * width), ("weight", width * cols), ("dx", rows * cols)], |b| {
        let [dy, w, dx] = b else { unreachable!() };
        rnn::projection_backward_data(rows, cols, width, dy, w, false, dx)
    });
    check_each_length(
        &[("dy", rows * width), ("x", rows * cols), ("dweight", width * cols), ("dbias", width)],
        |b| {
            let [dy, x, dw, db] = b else { unreachable!() };
            rnn::projection_backward_weight(rows, cols, width, dy, x, dw, db)
        },
    );
}

#[test]
fn projections_overwrite_or_accumulate_as_asked() {
    // The projections of many rows equal the step functions' products row block by row
    // block; `accumulate` adds to what is there, otherwise NaN already there does not leak.
    let (rows, cols, width) = (10, 6, 9);
    let x = uniform(rows * cols, 80, -1.0, 1.0);
    let w = uniform(width * cols, 81, -1.0, 1.0);
    let b = uniform(width, 82, -1.0, 1.0);
    let start = uniform(rows * width, 83, -1.0, 1.0);
    let mut fresh = nan(rows * width);
    rnn::projection_forward(rows, cols, width, &x, &w, &b, false, &mut fresh).unwrap();
    let mut expected = vec![0.0; rows * width];
    for r in 0..rows {
        for j in 0..width {
            expected[r * width + j] =
                b[j] + (0..cols).map(|p| x[r * cols + p] * w[j * cols + p]).sum::<f32>();
        }
    }
    assert_close("projection", &fresh, &expected, 1e-5, 1e-6);
    let mut summed = start.clone();
    rnn::projection_forward(rows, cols, width, &x, &w, &b, true, &mut summed).unwrap();
    let plus: Vec<f32> = start.iter().zip(&fresh).map(|(a, b)| a + b).collect();
    assert_close("projection accumulated", &summed, &plus, 1e-5, 1e-6);
    // The same with the weight packed once, on every instruction set.
    for_each_isa(|| {
        let mut packed = PackedB::default();
        rnn::projection_pack_weight(width, cols, &w, &mut packed).unwrap();
        let mut fresh = nan(rows * width);
        rnn::projection_forward_packed(rows, cols, width, &x, &packed, &b, false, &mut fresh).unwrap();
        assert_close("packed projection", &fresh, &expected, 1e-5, 1e-6);
        let mut summed = start.clone();
        rnn::projection_forward_packed(rows, cols, width, &x, &packed, &b, true, &mut summed).unwrap();
        assert_close("packed projection accumulated", &summed, &plus, 1e-5, 1e-6);
        // A weight packed for other sizes, a short weight, a short x: named errors.
        let other = rnn::projection_forward_packed(rows, cols, width + 1, &x, &packed, &b, false, &mut fresh);
        assert!(other.is_err(), "a weight packed for other sizes: {other:?}");
        let short = rnn::projection_pack_weight(width, cols, &w[1..], &mut packed);
        assert!(matches!(short, Err(KernelError::Length { ref what, .. }) if what.starts_with("weight")));
        let short_x =
            rnn::projection_forward_packed(rows, cols, width, &x[1..], &packed, &b, false, &mut fresh);
        assert!(matches!(short_x, Err(KernelError::Length { ref what, .. }) if what.starts_with("x")));
    });

    let dy = uniform(rows * width, 84, -1.0, 1.0);
    let mut dx = nan(rows * cols);
    rnn::projection_backward_data(rows, cols, width, &dy, &w, false, &mut dx).unwrap();
    let dx_start = uniform(rows * cols, 85, -1.0, 1.0);
    let mut dx_summed = dx_start.clone();
    rnn::projection_backward_data(rows, cols, width, &dy, &w, true, &mut dx_summed).unwrap();
    let plus: Vec<f32> = dx_start.iter().zip(&dx).map(|(a, b)| a + b).collect();
    assert_close("dx accumulated", &dx_summed, &plus, 1e-5, 1e-6);
    assert_exercised("dx", &dx);
}

/// The gates of the LSTM and GRU cells (a reciprocal estimate and a Newton step in place of
/// the divisions) against f64, read from the caches: σ within 4 ulp for pre-activations in
/// `[-80, 80]` and tanh over `[-12, 12]`, on every instruction set; below -80 and at -inf σ
/// is exactly 0, at +inf exactly 1; NaN stays NaN.
#[test]
fn cell_gates_are_accurate_against_f64() {
    for_each_isa(|| {
        for (lo, hi) in [(-80.0, 80.0), (-12.0, 12.0)] {
            let x = accuracy_points(lo, hi);
            let hidden = x.len();
            // LSTM: every gate block holds x; the cache is [i | f | g | o | tanh(c')].
            let gates: Vec<f32> = (0..4).flat_map(|_| x.iter().copied()).collect();
            let (mut c, mut h, mut cache) = (nan(hidden), nan(hidden), nan(5 * hidden));
            rnn::lstm_cell_forward(1, hidden, &gates, &vec![0.0; hidden], &mut c, &mut h, &mut cache)
                .unwrap();
            let sigmoid_ulp = max_ulp(&x, &cache[..hidden], sigmoid64);
            let tanh_ulp = max_ulp(&x, &cache[2 * hidden..3 * hidden], f64::tanh);
            // GRU with gh = 0: the cache is [r | z | n | gh_n], r = σ(x), n = tanh(x).
            let gi: Vec<f32> = (0..3).flat_map(|_| x.iter().copied()).collect();
            let (mut h_next, mut gru_cache) = (nan(hidden), nan(4 * hidden));
            let zeros = vec![0.0; 3 * hidden];
            rnn::gru_cell_forward(1, hidden, &gi, &zeros, &zeros[..hidden], &mut h_next, &mut gru_cache)
                .unwrap();
            let gru_sigmoid_ulp = max_ulp(&x, &gru_cache[..hidden], sigmoid64);
            let gru_tanh_ulp = max_ulp(&x, &gru_cache[2 * hidden..3 * hidden], f64::tanh);
            let isa = current_isa();
            assert!(
                sigmoid_ulp <= 4.0 && gru_sigmoid_ulp <= 4.0,
                "{isa:?} σ: {sigmoid_ulp}, {gru_sigmoid_ulp} ulp"
            );
            assert!(tanh_ulp <= 4.0 && gru_tanh_ulp <= 4.0, "{isa:?} tanh: {tanh_ulp}, {gru_tanh_ulp} ulp");
        }
        let x = [-1e4, -200.0, -88.0, -80.5, f32::NEG_INFINITY, f32::INFINITY, f32::NAN];
        let gates: Vec<f32> = (0..4).flat_map(|_| x.iter().copied()).collect();
        let n = x.len();
        let (mut c, mut h, mut cache) = (nan(n), nan(n), nan(5 * n));
        rnn::lstm_cell_forward(1, n, &gates, &vec![0.0; n], &mut c, &mut h, &mut cache).unwrap();
        let (sigma, g) = (&cache[..n], &cache[2 * n..3 * n]);
        assert_eq!(&sigma[..6], &[0.0, 0.0, 0.0, 0.0, 0.0, 1.0], "σ of large arguments");
        assert_eq!(&g[..6], &[-1.0, -1.0, -1.0, -1.0, -1.0, 1.0], "tanh of large arguments");
        assert!(sigma[6].is_nan() && g[6].is_nan() && h[6].is_nan(), "NaN in, NaN out");
    });
}
