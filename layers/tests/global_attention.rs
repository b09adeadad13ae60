//! `GlobalAttention` (Luong's attentional layer on additive attention): its output against a
//! plain f64 implementation of the formula, gradient checks of the query, the memory and
//! every parameter (with and without a key-padding mask), the parameter names and shapes,
//! and shape and order errors.

use keel_layers::nn::AttentionMask;
use keel_layers::{gradcheck, GlobalAttention, Layer, LayerError, Mode, Param, Result, Tensor};
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

/// Query 3 wide over a memory 4 wide, 5 attention units, 6 outputs.
const QUERY: usize = 3;
const MEMORY: usize = 4;
const HIDDEN: usize = 5;
const OUT: usize = 6;

fn layer(seed: u64) -> GlobalAttention {
    GlobalAttention::new(QUERY, MEMORY, HIDDEN, OUT, &mut StdRng::seed_from_u64(seed)).unwrap()
}

/// The parameters by name, as f64.
fn params(layer: &mut GlobalAttention) -> Vec<(String, Vec<usize>, Vec<f64>)> {
    let mut out = Vec::new();
    layer.visit_params(&mut |name, p: &mut Param| {
        out.push((
            name.to_string(),
            p.value.shape().to_vec(),
            p.value.data().iter().map(|&v| v as f64).collect(),
        ))
    });
    out
}

/// `y = W·x` for `W (rows, x.len())`.
fn matvec(w: &[f64], x: &[f64]) -> Vec<f64> {
    w.chunks_exact(x.len()).map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum()).collect()
}

#[test]
fn output_follows_the_formula() {
    let (batch, q_len, k_len) = (2, 3, 4);
    let mut layer = layer(1);
    let (query, memory) = (tensor(&[batch, q_len, QUERY], 5), tensor(&[batch, k_len, MEMORY], 6));
    layer.forward(&query, &memory, None).unwrap();
    assert_eq!(layer.output().shape(), [batch, q_len, OUT]);
    assert_eq!(layer.attention_weights().shape(), [batch, q_len, k_len]);
    let p = params(&mut layer);
    let names: Vec<&str> = p.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["attention.w_query", "attention.w_key", "attention.v", "out.weight", "out.bias"]);
    let shapes: Vec<&[usize]> = p.iter().map(|(_, s, _)| s.as_slice()).collect();
    assert_eq!(shapes, [&[HIDDEN, QUERY][..], &[HIDDEN, MEMORY], &[HIDDEN], &[OUT, MEMORY + QUERY], &[OUT]]);
    let (w_q, w_k, v, w_c, b_c) = (&p[0].2, &p[1].2, &p[2].2, &p[3].2, &p[4].2);
    let f64s = |t: &Tensor| t.data().iter().map(|&x| x as f64).collect::<Vec<_>>();
    let (q, m) = (f64s(&query), f64s(&memory));
    for b in 0..batch {
        for t in 0..q_len {
            let h = &q[(b * q_len + t) * QUERY..][..QUERY];
            let pq = matvec(w_q, h);
            let scores: Vec<f64> = (0..k_len)
                .map(|s| {
                    let pk = matvec(w_k, &m[(b * k_len + s) * MEMORY..][..MEMORY]);
                    (0..HIDDEN).map(|j| v[j] * (pq[j] + pk[j]).tanh()).sum()
                })
                .collect();
            let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = scores.iter().map(|s| (s - max).exp()).sum();
            let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp() / sum).collect();
            let mut joined: Vec<f64> = (0..MEMORY)
                .map(|j| (0..k_len).map(|s| weights[s] * m[(b * k_len + s) * MEMORY + j]).sum())
                .collect();
            joined.extend_from_slice(h);
            let expected: Vec<f64> =
                matvec(w_c, &joined).iter().zip(b_c).map(|(z, b)| (z + b).tanh()).collect();
            let got = &layer.output().data()[(b * q_len + t) * OUT..][..OUT];
            for (g, e) in got.iter().zip(&expected) {
                assert!((*g as f64 - e).abs() < 1e-5, "item {b}, step {t}: {got:?} vs {expected:?}");
            }
            let got_weights = &layer.attention_weights().data()[(b * q_len + t) * k_len..][..k_len];
            for (g, e) in got_weights.iter().zip(&weights) {
                assert!((*g as f64 - e).abs() < 1e-6);
            }
        }
    }
}

/// Which input a [`Probe`] takes as its `Layer` input (the other one is fixed).
#[derive(Clone, Copy, Debug)]
enum Input {
    Query,
    Memory,
}

/// `GlobalAttention` as a one-input `Layer` for `gradcheck`: the input is the query or the
/// memory, the other fixed, under an optional key-padding mask.
struct Probe {
    layer: GlobalAttention,
    input: Input,
    other: Tensor,
    padded: Option<Vec<bool>>,
}

impl Layer for Probe {
    fn name(&self) -> String {
        format!("{} ({:?} as input)", self.layer.name(), self.input)
    }

    fn forward(&mut self, input: &Tensor, _mode: Mode) -> Result<()> {
        let (query, memory) = match self.input {
            Input::Query => (input, &self.other),
            Input::Memory => (&self.other, input),
        };
        let mask = self.padded.as_deref().map(AttentionMask::KeyPadding);
        self.layer.forward(query, memory, mask)
    }

    fn backward(&mut self, input: &Tensor, grad_output: &Tensor) -> Result<()> {
        let (query, memory) = match self.input {
            Input::Query => (input, &self.other),
            Input::Memory => (&self.other, input),
        };
        self.layer.backward(query, memory, grad_output)
    }

    fn output(&self) -> &Tensor {
        self.layer.output()
    }

    fn grad_input(&self) -> &Tensor {
        match self.input {
            Input::Query => self.layer.grad_query(),
            Input::Memory => self.layer.grad_memory(),
        }
    }

    fn visit_params(&mut self, visit: &mut dyn FnMut(&str, &mut Param)) {
        self.layer.visit_params(visit)
    }
}

#[test]
fn query_memory_and_parameters_pass_gradcheck() {
    let (batch, q_len, k_len) = (2, 3, 4);
    let query = tensor(&[batch, q_len, QUERY], 11);
    let memory = tensor(&[batch, k_len, MEMORY], 12);
    // Item 1 has its last key padded.
    let padded = vec![false, false, false, false, false, false, false, true];
    for mask in [None, Some(padded)] {
        for input in [Input::Query, Input::Memory] {
            let (x, other) = match input {
                Input::Query => (query.clone(), memory.clone()),
                Input::Memory => (memory.clone(), query.clone()),
            };
            let mut probe = Probe { layer: layer(3), input, other, padded: mask.clone() };
            let report = gradcheck(&mut probe, &x, Mode::Train, 1e-2).unwrap();
            assert!(report.max_error() < 1e-3, "{input:?}, mask {}: {report:?}", mask.is_some());
            assert_eq!(report.params.len(), 5);
            assert!(probe.grad_input().data().iter().filter(|&&g| g.abs() > 1e-4).count() > x.len() / 2);
            // The padded key passes no gradient to the memory.
            if let (Input::Memory, Some(_)) = (input, &mask) {
                let grad = &probe.grad_input().data()[(k_len + 3) * MEMORY..][..MEMORY];
                assert!(grad.iter().all(|&g| g == 0.0), "{grad:?}");
            }
        }
    }
}

#[test]
fn wrong_shapes_and_order_are_errors() {
    let mut layer = layer(4);
    let (query, memory) = (tensor(&[2, 3, QUERY], 1), tensor(&[2, 4, MEMORY], 2));
    let shape_error = |result: Result<()>, what: &str| match result {
        Err(LayerError::Shape { layer, .. }) => assert!(layer.contains(what), "{layer}"),
        other => panic!("{what}: {other:?}"),
    };
    shape_error(layer.forward(&tensor(&[2, 3, QUERY + 1], 1), &memory, None), "(query)");
    shape_error(layer.forward(&query, &tensor(&[2, 4, MEMORY + 1], 2), None), "(memory)");
    shape_error(layer.forward(&query, &tensor(&[3, 4, MEMORY], 2), None), "(memory)");
    let padded = [false; 3];
    shape_error(layer.forward(&query, &memory, Some(AttentionMask::KeyPadding(&padded))), "(mask)");
    // Backward before any forward on these shapes.
    let grad = tensor(&[2, 3, OUT], 3);
    assert!(matches!(layer.backward(&query, &memory, &grad), Err(LayerError::State(_))));
    layer.forward(&query, &memory, None).unwrap();
    shape_error(layer.backward(&query, &memory, &tensor(&[2, 3, OUT + 1], 3)), "(gradient)");
    let longer = tensor(&[2, 5, MEMORY], 2);
    assert!(matches!(layer.backward(&query, &longer, &grad), Err(LayerError::State(_))));
    layer.backward(&query, &memory, &grad).unwrap();
    assert_eq!(layer.grad_query().shape(), query.shape());
    assert_eq!(layer.grad_memory().shape(), memory.shape());
}
