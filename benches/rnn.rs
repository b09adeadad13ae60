//! LSTM and GRU: whole sequences (gate GEMMs + fused cells, per step) in FLOP/s of the GEMMs,
//! and the fused cell kernels alone in bytes/s, keel on 1- and 2-thread pools beside the
//! scalar reference (reference cell + reference GEMM) in each group. The sequence groups also
//! run the layers (`keel_layer`: `keel_layers::{Lstm, Gru, Rnn}`, the input projection of all
//! steps as one GEMM and the weight gradients batched over time), and `rnn_seq` the plain
//! RNN layer alone. The cell groups run keel
//! on every instruction set of the CPU (`keel_avx512`, `keel_avx2`, `keel_portable`).
//!
//! Shape: PEERS "small" LSTM, seq 50, batch 32, input 64, hidden 128; the sequence is
//! many-to-one (the loss reads the last `h`), so backward carries `dh` (and `dc`) back
//! through every step. `cargo bench --bench rnn`.

mod common;

use std::hint::black_box;

use common::{isa_runs, pools};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use keel::kernels::isa::with_isa;
use keel::kernels::rnn::{self, reference, RnnWeightGrads, RnnWeights};
use keel::layers::{
    Gru as GruLayer, Layer, Lstm as LstmLayer, Mode, RecurrentConfig, Rnn as RnnLayer, RnnConfig, Tensor,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

const SEQ: usize = 50;
const BATCH: usize = 32;
const INPUT: usize = 64;
const HIDDEN: usize = 128;
const SHAPE: &str = "s50b32i64h128";

fn filled(len: usize, seed: u32, scale: f32) -> Vec<f32> {
    // A cheap deterministic fill with both signs (benches must not run on zeros).
    (0..len)
        .map(|i| {
            let unit =
                ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / (1 << 24) as f32;
            scale * (2.0 * unit - 1.0)
        })
        .collect()
}

/// Parameters (or their gradients) of a layer with `gates` gates.
struct Params {
    weight_ih: Vec<f32>,
    weight_hh: Vec<f32>,
    bias_ih: Vec<f32>,
    bias_hh: Vec<f32>,
}

impl Params {
    fn new(gates: usize, scale: f32) -> Self {
        let width = gates * HIDDEN;
        Params {
            weight_ih: filled(width * INPUT, 1, scale),
            weight_hh: filled(width * HIDDEN, 2, scale),
            bias_ih: filled(width, 3, scale),
            bias_hh: filled(width, 4, scale),
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
}

/// GEMM FLOPs of one forward step with `gates` gates: `2·batch·G·H·(input + H)`. Backward
/// does twice that (weight gradients and input gradients).
fn step_flops(gates: usize) -> u64 {
    (2 * BATCH * gates * HIDDEN * (INPUT + HIDDEN)) as u64
}

const BH: usize = BATCH * HIDDEN;
const BI: usize = BATCH * INPUT;

/// Every buffer of an LSTM sequence: inputs, states of every step, caches, workspaces.
struct Lstm {
    params: Params,
    grads: Params,
    xs: Vec<f32>,     // (seq, batch, input)
    hs: Vec<f32>,     // (seq + 1, batch, hidden), hs[0] = h0
    cs: Vec<f32>,     // (seq + 1, batch, hidden), cs[0] = c0
    caches: Vec<f32>, // (seq, batch, 5·hidden)
    gates: Vec<f32>,  // (batch, 4·hidden) workspace, also dgates
    dxs: Vec<f32>,    // (seq, batch, input)
    dh: [Vec<f32>; 2],
    dc: [Vec<f32>; 2],
}

impl Lstm {
    fn new() -> Self {
        let mut hs = vec![0.0; (SEQ + 1) * BH];
        let mut cs = vec![0.0; (SEQ + 1) * BH];
        hs[..BH].copy_from_slice(&filled(BH, 5, 0.5));
        cs[..BH].copy_from_slice(&filled(BH, 6, 0.5));
        Lstm {
            params: Params::new(4, 0.1),
            grads: Params::new(4, 0.0),
            xs: filled(SEQ * BI, 7, 1.0),
            hs,
            cs,
            caches: vec![0.0; SEQ * 5 * BH],
            gates: vec![0.0; 4 * BH],
            dxs: vec![0.0; SEQ * BI],
            dh: [vec![0.0; BH], vec![0.0; BH]],
            dc: [vec![0.0; BH], vec![0.0; BH]],
        }
    }

    fn forward(&mut self, keel: bool) {
        let weights = self.params.view();
        for t in 0..SEQ {
            let x = &self.xs[t * BI..(t + 1) * BI];
            let (h_prev, h_next) = self.hs[t * BH..(t + 2) * BH].split_at_mut(BH);
            let (c_prev, c_next) = self.cs[t * BH..(t + 2) * BH].split_at_mut(BH);
            let cache = &mut self.caches[t * 5 * BH..(t + 1) * 5 * BH];
            if keel {
                rnn::lstm_preact_forward(BATCH, INPUT, HIDDEN, x, h_prev, &weights, &mut self.gates).unwrap();
                rnn::lstm_cell_forward(BATCH, HIDDEN, &self.gates, c_prev, c_next, h_next, cache).unwrap();
            } else {
                let gates = &mut self.gates;
                reference::lstm_step_forward(
                    BATCH, INPUT, HIDDEN, &weights, x, h_prev, c_prev, gates, h_next, c_next, cache,
                );
            }
        }
    }

    fn backward(&mut self, keel: bool) {
        let weights = self.params.view();
        let mut grads = self.grads.grads();
        let [dh, dh_prev] = &mut self.dh;
        let [dc, dc_prev] = &mut self.dc;
        dh.copy_from_slice(&self.hs[..BH]); // ∂L/∂h_last: any non-zero values
        for t in (0..SEQ).rev() {
            let x = &self.xs[t * BI..(t + 1) * BI];
            let h_prev = &self.hs[t * BH..(t + 1) * BH];
            let c_prev = &self.cs[t * BH..(t + 1) * BH];
            let cache = &self.caches[t * 5 * BH..(t + 1) * 5 * BH];
            let dx = &mut self.dxs[t * BI..(t + 1) * BI];
            let dc_next = (t + 1 < SEQ).then_some(dc.as_slice());
            let dgates = &mut self.gates;
            if keel {
                rnn::lstm_cell_backward(BATCH, HIDDEN, cache, c_prev, dh, dc_next, dgates, dc_prev).unwrap();
                rnn::lstm_preact_backward(
                    BATCH, INPUT, HIDDEN, dgates, x, h_prev, &weights, &mut grads, dx, dh_prev,
                )
                .unwrap();
            } else {
                reference::lstm_step_backward(
                    BATCH, INPUT, HIDDEN, &weights, x, h_prev, c_prev, cache, dh, dc_next, dgates,
                    &mut grads, dx, dh_prev, dc_prev,
                );
            }
            std::mem::swap(dh, dh_prev);
            std::mem::swap(dc, dc_prev);
        }
        black_box(&self.dxs);
    }
}

/// Every buffer of a GRU sequence.
struct Gru {
    params: Params,
    grads: Params,
    xs: Vec<f32>,      // (seq, batch, input)
    hs: Vec<f32>,      // (seq + 1, batch, hidden)
    caches: Vec<f32>,  // (seq, batch, 4·hidden)
    gi: Vec<f32>,      // (batch, 3·hidden) workspace, also dgi
    gh: Vec<f32>,      // (batch, 3·hidden) workspace, also dgh
    dxs: Vec<f32>,     // (seq, batch, input)
    dh: [Vec<f32>; 3], // dh, dh_prev, dh_direct
}

impl Gru {
    fn new() -> Self {
        let mut hs = vec![0.0; (SEQ + 1) * BH];
        hs[..BH].copy_from_slice(&filled(BH, 5, 0.5));
        Gru {
            params: Params::new(3, 0.1),
            grads: Params::new(3, 0.0),
            xs: filled(SEQ * BI, 7, 1.0),
            hs,
            caches: vec![0.0; SEQ * 4 * BH],
            gi: vec![0.0; 3 * BH],
            gh: vec![0.0; 3 * BH],
            dxs: vec![0.0; SEQ * BI],
            dh: [vec![0.0; BH], vec![0.0; BH], vec![0.0; BH]],
        }
    }

    fn forward(&mut self, keel: bool) {
        let weights = self.params.view();
        for t in 0..SEQ {
            let x = &self.xs[t * BI..(t + 1) * BI];
            let (h_prev, h_next) = self.hs[t * BH..(t + 2) * BH].split_at_mut(BH);
            let cache = &mut self.caches[t * 4 * BH..(t + 1) * 4 * BH];
            let (gi, gh) = (&mut self.gi, &mut self.gh);
            if keel {
                rnn::gru_preact_forward(BATCH, INPUT, HIDDEN, x, h_prev, &weights, gi, gh).unwrap();
                rnn::gru_cell_forward(BATCH, HIDDEN, gi, gh, h_prev, h_next, cache).unwrap();
            } else {
                reference::gru_step_forward(BATCH, INPUT, HIDDEN, &weights, x, h_prev, gi, gh, h_next, cache);
            }
        }
    }

    fn backward(&mut self, keel: bool) {
        let weights = self.params.view();
        let mut grads = self.grads.grads();
        let [dh, dh_prev, dh_direct] = &mut self.dh;
        dh.copy_from_slice(&self.hs[..BH]);
        for t in (0..SEQ).rev() {
            let x = &self.xs[t * BI..(t + 1) * BI];
            let h_prev = &self.hs[t * BH..(t + 1) * BH];
            let cache = &self.caches[t * 4 * BH..(t + 1) * 4 * BH];
            let dx = &mut self.dxs[t * BI..(t + 1) * BI];
            let (dgi, dgh) = (&mut self.gi, &mut self.gh);
            if keel {
                rnn::gru_cell_backward(BATCH, HIDDEN, cache, h_prev, dh, dgi, dgh, dh_direct).unwrap();
                rnn::gru_preact_backward(
                    BATCH, INPUT, HIDDEN, dgi, dgh, dh_direct, x, h_prev, &weights, &mut grads, dx, dh_prev,
                )
                .unwrap();
            } else {
                reference::gru_step_backward(
                    BATCH, INPUT, HIDDEN, &weights, x, h_prev, cache, dh, dgi, dgh, dh_direct, &mut grads,
                    dx, dh_prev,
                );
            }
            std::mem::swap(dh, dh_prev);
        }
        black_box(&self.dxs);
    }
}

/// A recurrent layer on the benches' shape, with its input and a many-to-one output gradient
/// (the last step's `h` only, as the per-step sequences above).
struct LayerRun {
    layer: Box<dyn Layer>,
    x: Tensor,
    grad: Tensor,
}

impl LayerRun {
    fn new(layer: Box<dyn Layer>) -> Self {
        let x = Tensor::from_vec(&[SEQ, BATCH, INPUT], filled(SEQ * BI, 7, 1.0)).unwrap();
        let mut grad = Tensor::zeros(&[SEQ, BATCH, HIDDEN]);
        grad.data_mut()[(SEQ - 1) * BH..].copy_from_slice(&filled(BH, 5, 0.5));
        LayerRun { layer, x, grad }
    }

    fn run(&mut self, backward: bool) {
        self.layer.forward(&self.x, Mode::Train).unwrap();
        if backward {
            self.layer.backward(&self.x, &self.grad).unwrap();
        }
        black_box(self.layer.output());
    }
}

/// Sequence groups: forward, and forward + backward, keel T1/T2 beside the reference.
fn bench_sequences(criterion: &mut Criterion) {
    let pools = pools();
    let mut lstm = Lstm::new();
    let mut gru = Gru::new();
    let mut rng = StdRng::seed_from_u64(1);
    let config = RecurrentConfig::new(INPUT, HIDDEN);
    let mut lstm_layer = LayerRun::new(Box::new(LstmLayer::new(config, &mut rng).unwrap()));
    let mut gru_layer = LayerRun::new(Box::new(GruLayer::new(config, &mut rng).unwrap()));
    let rnn_config = RnnConfig { recurrent: config, ..RnnConfig::new(INPUT, HIDDEN) };
    let mut rnn_layer = LayerRun::new(Box::new(RnnLayer::new(rnn_config, &mut rng).unwrap()));
    for (pass, flops) in [("forward", step_flops(1)), ("forward_backward", 3 * step_flops(1))] {
        let mut group = criterion.benchmark_group(format!("rnn_seq/{pass}/{SHAPE}"));
        group.throughput(Throughput::Elements(SEQ as u64 * flops));
        group.sample_size(10);
        for (threads, pool) in &pools {
            group.bench_function(BenchmarkId::new("keel_layer", format!("T{threads}")), |bench| {
                pool.install(|| bench.iter(|| rnn_layer.run(pass != "forward")))
            });
        }
        group.finish();
    }
    for (cell, gates) in [("lstm", 4), ("gru", 3)] {
        for (pass, flops) in [("forward", step_flops(gates)), ("forward_backward", 3 * step_flops(gates))] {
            let mut group = criterion.benchmark_group(format!("{cell}_seq/{pass}/{SHAPE}"));
            group.throughput(Throughput::Elements(SEQ as u64 * flops));
            group.sample_size(10);
            let mut run = |keel: bool| match (cell, pass) {
                ("lstm", "forward") => lstm.forward(keel),
                ("lstm", _) => {
                    lstm.forward(keel);
                    lstm.backward(keel);
                }
                ("gru", "forward") => gru.forward(keel),
                _ => {
                    gru.forward(keel);
                    gru.backward(keel);
                }
            };
            for (threads, pool) in &pools {
                group.bench_function(BenchmarkId::new("keel", format!("T{threads}")), |bench| {
                    pool.install(|| bench.iter(|| run(true)))
                });
            }
            group.bench_function(BenchmarkId::new("reference", "T1"), |bench| bench.iter(|| run(false)));
            let layer = if cell == "lstm" { &mut lstm_layer } else { &mut gru_layer };
            for (threads, pool) in &pools {
                group.bench_function(BenchmarkId::new("keel_layer", format!("T{threads}")), |bench| {
                    pool.install(|| bench.iter(|| layer.run(pass != "forward")))
                });
            }
            group.finish();
        }
    }
}

/// The fused cells alone on one step, bytes read + written per call.
fn bench_cells(criterion: &mut Criterion) {
    let runs = isa_runs();
    let bytes = |floats_per_row_per_hidden: usize| (4 * floats_per_row_per_hidden * BH) as u64;

    // LSTM forward reads gates (4H) and c (H), writes c', h' and the cache (5H): 12H a row.
    let gates = filled(4 * BH, 11, 4.0);
    let c_prev = filled(BH, 12, 2.0);
    let (mut c_next, mut h_next, mut cache) = (vec![0.0; BH], vec![0.0; BH], vec![0.0; 5 * BH]);
    let mut group = criterion.benchmark_group(format!("lstm_cell/forward/b{BATCH}h{HIDDEN}"));
    group.throughput(Throughput::Bytes(bytes(12)));
    for run in &runs {
        let (id, isa, pool) = (run.id(""), &run.isa, &run.pool);
        group.bench_function(id.clone(), |bench| {
            pool.install(|| {
                with_isa(*isa, || {
                    bench.iter(|| {
                        rnn::lstm_cell_forward(
                            BATCH,
                            HIDDEN,
                            black_box(&gates),
                            &c_prev,
                            &mut c_next,
                            &mut h_next,
                            &mut cache,
                        )
                        .unwrap()
                    })
                })
                .unwrap()
            })
        });
    }
    group.bench_function(BenchmarkId::new("reference", "T1"), |bench| {
        bench.iter(|| {
            reference::lstm_cell_forward(
                BATCH,
                HIDDEN,
                black_box(&gates),
                &c_prev,
                &mut c_next,
                &mut h_next,
                &mut cache,
            )
        })
    });
    group.finish();

    // LSTM backward reads the cache (5H), c, dh', dc' (3H), writes dgates (4H) and dc: 13H.
    let dh = filled(BH, 13, 1.0);
    let dc = filled(BH, 14, 1.0);
    let (mut dgates, mut dc_prev) = (vec![0.0; 4 * BH], vec![0.0; BH]);
    let mut group = criterion.benchmark_group(format!("lstm_cell/backward/b{BATCH}h{HIDDEN}"));
    group.throughput(Throughput::Bytes(bytes(13)));
    for run in &runs {
        let (id, isa, pool) = (run.id(""), &run.isa, &run.pool);
        group.bench_function(id.clone(), |bench| {
            pool.install(|| {
                with_isa(*isa, || {
                    bench.iter(|| {
                        rnn::lstm_cell_backward(
                            BATCH,
                            HIDDEN,
                            black_box(&cache),
                            &c_prev,
                            &dh,
                            Some(&dc),
                            &mut dgates,
                            &mut dc_prev,
                        )
                        .unwrap()
                    })
                })
                .unwrap()
            })
        });
    }
    group.bench_function(BenchmarkId::new("reference", "T1"), |bench| {
        bench.iter(|| {
            reference::lstm_cell_backward(
                BATCH,
                HIDDEN,
                black_box(&cache),
                &c_prev,
                &dh,
                Some(&dc),
                &mut dgates,
                &mut dc_prev,
            )
        })
    });
    group.finish();

    // GRU forward reads gi, gh (6H) and h (H), writes h' and the cache (4H): 12H a row.
    let gi = filled(3 * BH, 15, 4.0);
    let gh = filled(3 * BH, 16, 4.0);
    let h_prev = filled(BH, 17, 1.0);
    let (mut h_next, mut cache) = (vec![0.0; BH], vec![0.0; 4 * BH]);
    let mut group = criterion.benchmark_group(format!("gru_cell/forward/b{BATCH}h{HIDDEN}"));
    group.throughput(Throughput::Bytes(bytes(12)));
    for run in &runs {
        let (id, isa, pool) = (run.id(""), &run.isa, &run.pool);
        group.bench_function(id.clone(), |bench| {
            pool.install(|| {
                with_isa(*isa, || {
                    bench.iter(|| {
                        rnn::gru_cell_forward(
                            BATCH,
                            HIDDEN,
                            black_box(&gi),
                            &gh,
                            &h_prev,
                            &mut h_next,
                            &mut cache,
                        )
                        .unwrap()
                    })
                })
                .unwrap()
            })
        });
    }
    group.bench_function(BenchmarkId::new("reference", "T1"), |bench| {
        bench.iter(|| {
            reference::gru_cell_forward(BATCH, HIDDEN, black_box(&gi), &gh, &h_prev, &mut h_next, &mut cache)
        })
    });
    group.finish();

    // GRU backward reads the cache (4H), h, dh' (2H), writes dgi, dgh (6H) and dh: 13H.
    let (mut dgi, mut dgh, mut dh_prev) = (vec![0.0; 3 * BH], vec![0.0; 3 * BH], vec![0.0; BH]);
    let mut group = criterion.benchmark_group(format!("gru_cell/backward/b{BATCH}h{HIDDEN}"));
    group.throughput(Throughput::Bytes(bytes(13)));
    for run in &runs {
        let (id, isa, pool) = (run.id(""), &run.isa, &run.pool);
        group.bench_function(id.clone(), |bench| {
            pool.install(|| {
                with_isa(*isa, || {
                    bench.iter(|| {
                        rnn::gru_cell_backward(
                            BATCH,
                            HIDDEN,
                            black_box(&cache),
                            &h_prev,
                            &dh,
                            &mut dgi,
                            &mut dgh,
                            &mut dh_prev,
                        )
                        .unwrap()
                    })
                })
                .unwrap()
            })
        });
    }
    group.bench_function(BenchmarkId::new("reference", "T1"), |bench| {
        bench.iter(|| {
            reference::gru_cell_backward(
                BATCH,
                HIDDEN,
                black_box(&cache),
                &h_prev,
                &dh,
                &mut dgi,
                &mut dgh,
                &mut dh_prev,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench_sequences, bench_cells);
criterion_main!(benches);
