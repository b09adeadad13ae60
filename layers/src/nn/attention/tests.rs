//! Attention against a plain f64 implementation of the formula: forward values, exact zeros
//! where masked, central-difference gradients of the formula, and shape errors.

use super::*;
use crate::error::LayerError;
use crate::tensor::Tensor;
use crate::train::relative_error;

/// Deterministic values in `[-scale, scale)` (both signs), from a 64-bit LCG.
fn values(len: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn tensor(shape: &[usize], seed: u64) -> Tensor {
    Tensor::from_vec(shape, values(shape.iter().product(), seed, 1.5)).unwrap()
}

/// The sizes of a test case.
#[derive(Clone, Copy)]
struct Case {
    batch: usize,
    q_len: usize,
    k_len: usize,
    d: usize,
    d_v: usize,
}

/// The masks a case is run with, and each one's expansion to an additive f64 mask of
/// `(batch, q_len, k_len)` for the reference.
enum MaskCase {
    None,
    /// Per item, with a fully blocked query row (item 0, query 1 when q_len > 1).
    Allow(Vec<bool>),
    /// One `(1, q_len, k_len)` causal-style mask shared by the batch.
    AllowShared(Vec<bool>),
    /// Finite biases and some `-inf`, per item.
    Additive(Tensor),
    /// Per item valid lengths, the rest padded (item 0 keeps all keys).
    KeyPadding(Vec<bool>),
}

impl MaskCase {
    fn all(c: Case) -> Vec<MaskCase> {
        let (b, q, k) = (c.batch, c.q_len, c.k_len);
        let mut allow: Vec<bool> = (0..b * q * k).map(|i| (i * 7 + i / k) % 3 != 0).collect();
        if q > 1 {
            allow[k..2 * k].fill(false);
        }
        let shared: Vec<bool> = (0..q * k).map(|i| i % k <= i / k).collect();
        let mut additive = tensor(&[b, q, k], 99);
        for (i, m) in additive.data_mut().iter_mut().enumerate() {
            if i % 5 == 2 {
                *m = f32::NEG_INFINITY;
            }
        }
        let padding: Vec<bool> = (0..b * k).map(|i| i % k >= k - (i / k) % k).collect();
        vec![
            MaskCase::None,
            MaskCase::Allow(allow),
            MaskCase::AllowShared(shared),
            MaskCase::Additive(additive),
            MaskCase::KeyPadding(padding),
        ]
    }

    fn mask(&self) -> Option<AttentionMask<'_>> {
        match self {
            MaskCase::None => None,
            MaskCase::Allow(allow) | MaskCase::AllowShared(allow) => Some(AttentionMask::Allow(allow)),
            MaskCase::Additive(mask) => Some(AttentionMask::Additive(mask)),
            MaskCase::KeyPadding(padded) => Some(AttentionMask::KeyPadding(padded)),
        }
    }

    /// The mask as f64 values added to the scores, `(batch, q_len, k_len)`.
    fn additive(&self, c: Case) -> Vec<f64> {
        let (b, q, k) = (c.batch, c.q_len, c.k_len);
        let block = |allowed: bool| if allowed { 0.0 } else { f64::NEG_INFINITY };
        (0..b * q * k)
            .map(|i| match self {
                MaskCase::None => 0.0,
                MaskCase::Allow(allow) => block(allow[i]),
                MaskCase::AllowShared(allow) => block(allow[i % (q * k)]),
                MaskCase::Additive(mask) => f64::from(mask.data()[i]),
                MaskCase::KeyPadding(padded) => block(!padded[(i / (q * k)) * k + i % k]),
            })
            .collect()
    }
}

/// The formula in f64, one scalar at a time: `(context, weights)`.
fn reference(c: Case, scale: f64, q: &[f64], k: &[f64], v: &[f64], mask: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut scores = vec![0.0; c.batch * c.q_len * c.k_len];
    for b in 0..c.batch {
        for i in 0..c.q_len {
            for j in 0..c.k_len {
                let dot: f64 =
                    (0..c.d).map(|t| q[(b * c.q_len + i) * c.d + t] * k[(b * c.k_len + j) * c.d + t]).sum();
                scores[(b * c.q_len + i) * c.k_len + j] = scale * dot;
            }
        }
    }
    attend(c, &scores, v, mask)
}

/// The tail of every attention in f64: `(context, weights)` from the unmasked scores.
fn attend(c: Case, scores: &[f64], v: &[f64], mask: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut weights = vec![0.0; c.batch * c.q_len * c.k_len];
    let mut context = vec![0.0; c.batch * c.q_len * c.d_v];
    for b in 0..c.batch {
        for i in 0..c.q_len {
            let row = (b * c.q_len + i) * c.k_len;
            let scores: Vec<f64> = (0..c.k_len).map(|j| scores[row + j] + mask[row + j]).collect();
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if max == f64::NEG_INFINITY {
                continue; // every key masked: zero weights, zero context
            }
            let sum: f64 = scores.iter().map(|s| (s - max).exp()).sum();
            for j in 0..c.k_len {
                let w = (scores[j] - max).exp() / sum;
                weights[row + j] = w;
                for t in 0..c.d_v {
                    context[(b * c.q_len + i) * c.d_v + t] += w * v[(b * c.k_len + j) * c.d_v + t];
                }
            }
        }
    }
    (context, weights)
}

fn to_f64(t: &Tensor) -> Vec<f64> {
    t.data().iter().map(|&x| f64::from(x)).collect()
}

/// Largest `|a - b| / (1 + |b|)`.
fn max_diff(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(&x, &y)| (f64::from(x) - y).abs() / (1.0 + y.abs())).fold(0.0, f64::max)
}

const CASES: [Case; 3] = [
    Case { batch: 1, q_len: 1, k_len: 1, d: 1, d_v: 1 },
    Case { batch: 3, q_len: 5, k_len: 7, d: 6, d_v: 3 },
    Case { batch: 2, q_len: 17, k_len: 33, d: 20, d_v: 19 },
];

fn inputs(c: Case) -> (Tensor, Tensor, Tensor) {
    (
        tensor(&[c.batch, c.q_len, c.d], 1),
        tensor(&[c.batch, c.k_len, c.d], 2),
        tensor(&[c.batch, c.k_len, c.d_v], 3),
    )
}

#[test]
fn forward_matches_the_formula_and_masked_weights_are_exactly_zero() {
    for c in CASES {
        let (q, k, v) = inputs(c);
        for mask_case in MaskCase::all(c) {
            let additive = mask_case.additive(c);
            let mut attention = ScaledDotProductAttention::new();
            attention.output.resize(&[c.batch, c.q_len, c.d_v]);
            attention.output.data_mut().fill(f32::NAN); // overwritten, never read
            attention.forward(&q, &k, &v, mask_case.mask()).unwrap();
            let scale = 1.0 / (c.d as f64).sqrt();
            let (context, weights) = reference(c, scale, &to_f64(&q), &to_f64(&k), &to_f64(&v), &additive);
            assert!(max_diff(attention.output().data(), &context) < 1e-5);
            assert!(max_diff(attention.attention_weights().data(), &weights) < 1e-5);
            assert_eq!(attention.attention_weights().shape(), &[c.batch, c.q_len, c.k_len]);
            for (&w, &m) in attention.attention_weights().data().iter().zip(&additive) {
                if m == f64::NEG_INFINITY {
                    assert_eq!(w.to_bits(), 0.0f32.to_bits(), "a masked weight is exactly +0");
                }
            }
            // The one-shot function agrees bit for bit.
            let (context, weights) = scaled_dot_product_attention(&q, &k, &v, mask_case.mask()).unwrap();
            assert_eq!(context, *attention.output());
            assert_eq!(weights, *attention.attention_weights());
        }
    }
}

#[test]
fn a_fully_masked_query_gets_zeros_not_nan() {
    let c = Case { batch: 2, q_len: 3, k_len: 4, d: 5, d_v: 2 };
    let (q, k, v) = inputs(c);
    // Item 1, query 2 may attend to nothing; the others to everything.
    let mut allow = vec![true; 2 * 3 * 4];
    allow[(3 + 2) * 4..(3 + 3) * 4].fill(false);
    let mut additive = Tensor::zeros(&[1, 3, 4]);
    additive.data_mut()[4..8].fill(f32::NEG_INFINITY); // query 1 of every item
    for (mask, item, query) in
        [(AttentionMask::Allow(&allow), 1, 2), (AttentionMask::Additive(&additive), 0, 1)]
    {
        let mut attention = ScaledDotProductAttention::new();
        attention.forward(&q, &k, &v, Some(mask)).unwrap();
        let row = item * 3 + query;
        let weights = attention.attention_weights().data();
        assert!(weights.iter().all(|w| w.is_finite()));
        assert!(weights[row * 4..(row + 1) * 4].iter().all(|&w| w == 0.0));
        let context = attention.output().data();
        assert!(context.iter().all(|x| x.is_finite()));
        assert!(context[row * 2..(row + 1) * 2].iter().all(|&x| x == 0.0));
        // Backward: finite everywhere, and the dead query gets no gradient.
        let grad = tensor(&[2, 3, 2], 7);
        attention.backward(&q, &k, &v, &grad).unwrap();
        for g in [attention.grad_query(), attention.grad_key(), attention.grad_value()] {
            assert!(g.data().iter().all(|x| x.is_finite()));
        }
        assert!(attention.grad_query().data()[row * 5..(row + 1) * 5].iter().all(|&g| g == 0.0));
    }
    // Every query of every item masked: all zeros.
    let padded = vec![true; 2 * 4];
    let (context, weights) =
        scaled_dot_product_attention(&q, &k, &v, Some(AttentionMask::KeyPadding(&padded))).unwrap();
    assert!(context.data().iter().chain(weights.data()).all(|&x| x == 0.0));
}

/// Central differences of `L = Σ context·u` through the f64 formula, step `1e-6`, for each
/// element of the input `which` (0: query, 1: key, 2: value).
fn numeric_grad(c: Case, scale: f64, inputs: [&[f64]; 3], mask: &[f64], u: &[f64], which: usize) -> Vec<f64> {
    let eps = 1e-6;
    let mut x: [Vec<f64>; 3] = inputs.map(|x| x.to_vec());
    let loss = |x: &[Vec<f64>; 3]| -> f64 {
        let (context, _) = reference(c, scale, &x[0], &x[1], &x[2], mask);
        context.iter().zip(u).map(|(a, b)| a * b).sum()
    };
    (0..x[which].len())
        .map(|i| {
            let original = x[which][i];
            x[which][i] = original + eps;
            let plus = loss(&x);
            x[which][i] = original - eps;
            let minus = loss(&x);
            x[which][i] = original;
            (plus - minus) / (2.0 * eps)
        })
        .collect()
}

#[test]
fn gradients_match_central_differences_of_the_formula() {
    for c in &CASES[..2] {
        let c = *c;
        let (q, k, v) = inputs(c);
        let u = tensor(&[c.batch, c.q_len, c.d_v], 5);
        for mask_case in MaskCase::all(c) {
            for scale in [None, Some(0.7f32)] {
                let additive = mask_case.additive(c);
                let mut attention = ScaledDotProductAttention::new();
                if let Some(scale) = scale {
                    attention = attention.with_scale(scale);
                }
                attention.forward(&q, &k, &v, mask_case.mask()).unwrap();
                attention.backward(&q, &k, &v, &u).unwrap();
                let scale = scale.map_or(1.0 / (c.d as f64).sqrt(), f64::from);
                let x = [to_f64(&q), to_f64(&k), to_f64(&v)];
                let analytic = [attention.grad_query(), attention.grad_key(), attention.grad_value()];
                for (which, analytic) in analytic.iter().enumerate() {
                    assert_eq!(analytic.shape(), [&q, &k, &v][which].shape());
                    let numeric =
                        numeric_grad(c, scale, [&x[0], &x[1], &x[2]], &additive, &to_f64(&u), which);
                    if matches!(mask_case, MaskCase::None) && c.k_len > 1 {
                        assert!(numeric.iter().any(|&g| g.abs() > 1e-3), "input {which}: a vacuous check");
                    }
                    let error = relative_error(&to_f64(analytic), &numeric);
                    assert!(error < 1e-4, "input {which}: relative error {error}");
                }
            }
        }
    }
}

#[test]
fn buffers_are_reused_once_warm() {
    let c = CASES[1];
    let (q, k, v) = inputs(c);
    let u = tensor(&[c.batch, c.q_len, c.d_v], 5);
    let mut attention = ScaledDotProductAttention::new();
    attention.forward(&q, &k, &v, None).unwrap();
    attention.backward(&q, &k, &v, &u).unwrap();
    let pointers = |a: &ScaledDotProductAttention| {
        [a.output(), a.attention_weights(), a.grad_query(), a.grad_key(), a.grad_value()]
            .map(|t| t.data().as_ptr())
    };
    let before = pointers(&attention);
    let first = attention.output().clone();
    attention.forward(&q, &k, &v, None).unwrap();
    attention.backward(&q, &k, &v, &u).unwrap();
    assert_eq!(pointers(&attention), before);
    assert_eq!(*attention.output(), first);
}

#[test]
fn mismatched_shapes_are_named_errors() {
    let c = Case { batch: 2, q_len: 3, k_len: 4, d: 5, d_v: 6 };
    let (q, k, v) = inputs(c);
    let mut attention = ScaledDotProductAttention::new();
    let shape_error = |result: crate::error::Result<()>| match result {
        Err(LayerError::Shape { layer, expected, actual }) => (layer, expected, actual),
        other => panic!("expected a shape error, got {other:?}"),
    };
    let bad_key = tensor(&[2, 4, 4], 0);
    let (layer, expected, actual) = shape_error(attention.forward(&q, &bad_key, &v, None));
    assert_eq!(
        (layer.as_str(), expected.as_str(), actual),
        ("scaled_dot_product_attention (key)", "(2, k_len >= 1, 5)", vec![2, 4, 4])
    );
    let bad_value = tensor(&[2, 3, 6], 0);
    let (layer, expected, actual) = shape_error(attention.forward(&q, &k, &bad_value, None));
    assert_eq!(
        (layer.as_str(), expected.as_str(), actual),
        ("scaled_dot_product_attention (value)", "(2, 4, d_v >= 1)", vec![2, 3, 6])
    );
    let flat_query = tensor(&[6, 5], 0);
    let (layer, _, actual) = shape_error(attention.forward(&flat_query, &k, &v, None));
    assert_eq!((layer.as_str(), actual), ("scaled_dot_product_attention (query)", vec![6, 5]));
    let allow = vec![true; 3 * 4 + 1];
    let (layer, expected, actual) =
        shape_error(attention.forward(&q, &k, &v, Some(AttentionMask::Allow(&allow))));
    assert_eq!(layer, "scaled_dot_product_attention (mask)");
    assert!(expected.contains("(2 or 1, 3, 4)"), "{expected}");
    assert_eq!(actual, vec![13]);
    let additive = Tensor::zeros(&[3, 3, 4]);
    let (_, _, actual) = shape_error(attention.forward(&q, &k, &v, Some(AttentionMask::Additive(&additive))));
    assert_eq!(actual, vec![3, 3, 4]);
    let padded = vec![false; 4];
    let (_, expected, actual) =
        shape_error(attention.forward(&q, &k, &v, Some(AttentionMask::KeyPadding(&padded))));
    assert!(expected.contains("(2, 4)"), "{expected}");
    assert_eq!(actual, vec![4]);
    // Backward: before any forward, then with a gradient of the wrong shape.
    let grad = tensor(&[2, 3, 6], 0);
    assert!(matches!(attention.backward(&q, &k, &v, &grad), Err(LayerError::State(_))));
    attention.forward(&q, &k, &v, None).unwrap();
    let (layer, expected, actual) = shape_error(attention.backward(&q, &k, &v, &tensor(&[2, 3, 5], 0)));
    assert_eq!(
        (layer.as_str(), expected.as_str(), actual),
        ("scaled_dot_product_attention (gradient)", "(2, 3, 6)", vec![2, 3, 5])
    );
}

/// Additive attention's formula in f64: inputs `[q, k, v, w_query, w_key, v_param]`, query
/// width `c.d`, key width `c.d + 1`, `hidden` units.
fn additive_reference(c: Case, hidden: usize, x: &[Vec<f64>; 6], mask: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (q, k, v, wq, wk, vp) = (&x[0], &x[1], &x[2], &x[3], &x[4], &x[5]);
    let (dq, dk) = (c.d, c.d + 1);
    let mut scores = vec![0.0; c.batch * c.q_len * c.k_len];
    for b in 0..c.batch {
        for i in 0..c.q_len {
            for j in 0..c.k_len {
                let mut score = 0.0;
                for h in 0..hidden {
                    let pq: f64 = (0..dq).map(|t| wq[h * dq + t] * q[(b * c.q_len + i) * dq + t]).sum();
                    let pk: f64 = (0..dk).map(|t| wk[h * dk + t] * k[(b * c.k_len + j) * dk + t]).sum();
                    score += vp[h] * (pq + pk).tanh();
                }
                scores[(b * c.q_len + i) * c.k_len + j] = score;
            }
        }
    }
    attend(c, &scores, v, mask)
}

fn additive_layer(c: Case, hidden: usize) -> AdditiveAttention {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    AdditiveAttention::new(c.d, c.d + 1, hidden, crate::nn::Init::Xavier, &mut rng).unwrap()
}

#[test]
fn additive_attention_matches_its_formula_with_gradients_of_inputs_and_parameters() {
    let hidden = 4;
    for c in &CASES[..2] {
        let c = *c;
        let q = tensor(&[c.batch, c.q_len, c.d], 1);
        let k = tensor(&[c.batch, c.k_len, c.d + 1], 2);
        let v = tensor(&[c.batch, c.k_len, c.d_v], 3);
        let u = tensor(&[c.batch, c.q_len, c.d_v], 5);
        for mask_case in MaskCase::all(c) {
            let additive = mask_case.additive(c);
            let mut layer = additive_layer(c, hidden);
            layer.forward(&q, &k, &v, mask_case.mask()).unwrap();
            let x = [&q, &k, &v, &layer.w_query.value, &layer.w_key.value, &layer.v.value].map(to_f64);
            let (context, weights) = additive_reference(c, hidden, &x, &additive);
            assert!(max_diff(layer.output().data(), &context) < 1e-5);
            assert!(max_diff(layer.attention_weights().data(), &weights) < 1e-5);
            for (&w, &m) in layer.attention_weights().data().iter().zip(&additive) {
                if m == f64::NEG_INFINITY {
                    assert_eq!(w, 0.0);
                }
            }
            // Parameter gradients accumulate: two backwards give twice one.
            layer.backward(&q, &k, &v, &u).unwrap();
            let once = layer.w_query.grad.clone();
            layer.backward(&q, &k, &v, &u).unwrap();
            let twice: Vec<f32> = once.data().iter().map(|g| 2.0 * g).collect();
            assert!(
                max_diff(layer.w_query.grad.data(), &to_f64(&Tensor::from_vec(once.shape(), twice).unwrap()))
                    < 1e-6
            );
            layer.visit_params(&mut |_, p| p.zero_grad());
            layer.backward(&q, &k, &v, &u).unwrap();
            let analytic = [
                layer.grad_query(),
                layer.grad_key(),
                layer.grad_value(),
                &layer.w_query.grad,
                &layer.w_key.grad,
                &layer.v.grad,
            ]
            .map(to_f64);
            let loss = |x: &[Vec<f64>; 6]| -> f64 {
                let (context, _) = additive_reference(c, hidden, x, &additive);
                context.iter().zip(u.data()).map(|(a, &b)| a * f64::from(b)).sum()
            };
            let eps = 1e-6;
            for which in 0..6 {
                let mut x = x.clone();
                let numeric: Vec<f64> = (0..x[which].len())
                    .map(|i| {
                        let original = x[which][i];
                        x[which][i] = original + eps;
                        let plus = loss(&x);
                        x[which][i] = original - eps;
                        let minus = loss(&x);
                        x[which][i] = original;
                        (plus - minus) / (2.0 * eps)
                    })
                    .collect();
                if matches!(mask_case, MaskCase::None) && c.k_len > 1 {
                    assert!(numeric.iter().any(|&g| g.abs() > 1e-3), "input {which}: a vacuous check");
                }
                let error = relative_error(&analytic[which], &numeric);
                assert!(error < 1e-4, "input {which}: relative error {error}");
            }
        }
    }
}

#[test]
fn additive_attention_names_mismatched_shapes() {
    let c = Case { batch: 2, q_len: 3, k_len: 4, d: 5, d_v: 6 };
    let mut layer = additive_layer(c, 7);
    let (q, k, v) = (tensor(&[2, 3, 5], 1), tensor(&[2, 4, 6], 2), tensor(&[2, 4, 6], 3));
    layer.forward(&q, &k, &v, None).unwrap();
    match layer.forward(&q, &tensor(&[2, 4, 5], 2), &v, None) {
        Err(LayerError::Shape { layer, expected, actual }) => {
            assert_eq!(layer, "additive_attention(5, 6 -> 7) (key)");
            assert_eq!(expected, "(2, k_len >= 1, 6)");
            assert_eq!(actual, vec![2, 4, 5]);
        }
        other => panic!("expected a shape error, got {other:?}"),
    }
    // The failed forward changed nothing: backward still follows the last good one.
    let bad_grad = tensor(&[2, 3, 5], 0);
    assert!(matches!(layer.backward(&q, &k, &v, &bad_grad), Err(LayerError::Shape { .. })));
    layer.backward(&q, &k, &v, &tensor(&[2, 3, 6], 0)).unwrap();
    let mut fresh = additive_layer(c, 7);
    assert!(matches!(fresh.backward(&q, &k, &v, &bad_grad), Err(LayerError::State(_))));
}
