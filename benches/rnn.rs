//! Recurrent layers on the peers' shapes (`../shared/perf/peers/torch_ops.py rnn`, PyTorch's
//! `nn.LSTM` / `nn.GRU` / `nn.RNN` with the same arguments): forward, and forward + backward
//! with a gradient on every step's output (`∂L/∂x` and every parameter gradient, as the peers'
//! `torch.autograd.grad`). Throughput is the GEMM FLOPs, `2·seq·batch·G·H·(input + H)` for
//! the forward and three times that for forward + backward, the peers' convention.
//!
//! Runs: `keel_<isa>_layer/T<threads>`, the layer (`keel_layers::{Lstm, Gru, Rnn}`) on every
//! instruction set of the CPU on 1 and 2 threads; `reference/T1` on the small shape, the
//! scalar kernels of `keel_kernels::rnn::reference` step by step (the large one would take
//! seconds per iteration). The groups `*_cell/*` time the fused cell kernels alone in bytes/s.
//!
//! Shapes: small `s50b32i64h128` (seq 50, batch 32, input 64, hidden 128) and large
//! `s100b64i128h256`. `cargo bench --bench rnn`.

mod common;

use std::hint::black_box;

use common::isa_runs;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use keel::kernels::isa::with_isa;
use keel::kernels::rnn::{self, reference, Nonlinearity, RnnWeightGrads, RnnWeights};
use keel::layers::{Gru, Layer, Lstm, Mode, RecurrentConfig, Rnn, RnnConfig, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// `(seq, batch, input, hidden)`, as the peers' scripts.
#[derive(Clone, Copy)]
struct Shape {
    seq: usize,
    batch: usize,
    input: usize,
    hidden: usize,
}

impl Shape {
    const SMALL: Shape = Shape { seq: 50, batch: 32, input: 64, hidden: 128 };
    const LARGE: Shape = Shape { seq: 100, batch: 64, input: 128, hidden: 256 };

    fn name(&self) -> String {
        format!("s{}b{}i{}h{}", self.seq, self.batch, self.input, self.hidden)
    }

    /// GEMM FLOPs of a forward pass with `gates` gate blocks.
    fn forward_flops(&self, gates: usize) -> u64 {
        (2 * self.seq * self.batch * gates * self.hidden * (self.input + self.hidden)) as u64
    }
}

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

/// The cells the layer groups run.
#[derive(Clone, Copy)]
enum Cell {
    Lstm,
    Gru,
    RnnTanh,
}

impl Cell {
    fn name(self) -> &'static str {
        match self {
            Cell::Lstm => "lstm",
            Cell::Gru => "gru",
            Cell::RnnTanh => "rnn_tanh",
        }
    }

    fn gates(self) -> usize {
        match self {
            Cell::Lstm => rnn::LSTM_GATES,
            Cell::Gru => rnn::GRU_GATES,
            Cell::RnnTanh => rnn::RNN_GATES,
        }
    }

    fn layer(self, shape: Shape) -> Box<dyn Layer> {
        let mut rng = StdRng::seed_from_u64(1);
        let config = RecurrentConfig::new(shape.input, shape.hidden);
        match self {
            Cell::Lstm => Box::new(Lstm::new(config, &mut rng).unwrap()),
            Cell::Gru => Box::new(Gru::new(config, &mut rng).unwrap()),
            Cell::RnnTanh => {
                let config = RnnConfig { recurrent: config, ..RnnConfig::new(shape.input, shape.hidden) };
                Box::new(Rnn::new(config, &mut rng).unwrap())
            }
        }
    }
}

/// A layer with its input `(seq, batch, input)` and an output gradient on every step.
struct LayerRun {
    layer: Box<dyn Layer>,
    x: Tensor,
    grad: Tensor,
}

impl LayerRun {
    fn new(cell: Cell, shape: Shape) -> Self {
        let Shape { seq, batch, input, hidden } = shape;
        LayerRun {
            layer: cell.layer(shape),
            x: Tensor::from_vec(&[seq, batch, input], filled(seq * batch * input, 7, 1.0)).unwrap(),
            grad: Tensor::from_vec(&[seq, batch, hidden], filled(seq * batch * hidden, 5, 0.5)).unwrap(),
        }
    }

    fn run(&mut self, backward: bool) {
        let mode = if backward { Mode::Train } else { Mode::Eval };
        self.layer.forward(&self.x, mode).unwrap();
        if backward {
            self.layer.backward(&self.x, &self.grad).unwrap();
            black_box(self.layer.grad_input());
        }
        black_box(self.layer.output());
    }
}

/// Parameters (or their gradients) of a layer with `gates` gate blocks.
struct Params {
    weight_ih: Vec<f32>,
    weight_hh: Vec<f32>,
    bias_ih: Vec<f32>,
    bias_hh: Vec<f32>,
}

impl Params {
    fn new(shape: Shape, gates: usize, scale: f32) -> Self {
        let width = gates * shape.hidden;
        Params {
            weight_ih: filled(width * shape.input, 1, scale),
            weight_hh: filled(width * shape.hidden, 2, scale),
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

/// The scalar reference of a whole sequence: every step through
/// `keel_kernels::rnn::reference`, with the buffers the steps need.
struct ReferenceRun {
    cell: Cell,
    shape: Shape,
    params: Params,
    grads: Params,
    xs: Vec<f32>,     // (seq, batch, input)
    dys: Vec<f32>,    // (seq, batch, hidden): the output gradient
    hs: Vec<f32>,     // (seq + 1, batch, hidden), hs[0] = h0 = 0
    cs: Vec<f32>,     // LSTM: (seq + 1, batch, hidden)
    caches: Vec<f32>, // (seq, batch, cache width·hidden)
    gates: [Vec<f32>; 2],
    dxs: Vec<f32>,
    dh: [Vec<f32>; 3], // ∂L/∂h at the step, ∂L/∂h_prev, GRU's dh_direct
    dc: [Vec<f32>; 2],
}

impl ReferenceRun {
    fn new(cell: Cell, shape: Shape) -> Self {
        let Shape { seq, batch, input, hidden } = shape;
        let bh = batch * hidden;
        let gates = cell.gates();
        let cache_width = match cell {
            Cell::Lstm => rnn::LSTM_CACHE_WIDTH,
            Cell::Gru => rnn::GRU_CACHE_WIDTH,
            Cell::RnnTanh => 0,
        };
        ReferenceRun {
            cell,
            shape,
            params: Params::new(shape, gates, 0.1),
            grads: Params::new(shape, gates, 0.0),
            xs: filled(seq * batch * input, 7, 1.0),
            dys: filled(seq * bh, 5, 0.5),
            hs: vec![0.0; (seq + 1) * bh],
            cs: vec![0.0; (seq + 1) * bh],
            caches: vec![0.0; seq * cache_width * bh],
            gates: [vec![0.0; gates * bh], vec![0.0; gates * bh]],
            dxs: vec![0.0; seq * batch * input],
            dh: [vec![0.0; bh], vec![0.0; bh], vec![0.0; bh]],
            dc: [vec![0.0; bh], vec![0.0; bh]],
        }
    }

    fn forward(&mut self) {
        let Shape { seq, batch, input, hidden } = self.shape;
        let (bh, bi) = (batch * hidden, batch * input);
        let weights = self.params.view();
        let cache_len = self.caches.len() / seq;
        let [g0, g1] = &mut self.gates;
        for t in 0..seq {
            let x = &self.xs[t * bi..(t + 1) * bi];
            let (h_prev, h_next) = self.hs[t * bh..(t + 2) * bh].split_at_mut(bh);
            let cache = &mut self.caches[t * cache_len..(t + 1) * cache_len];
            match self.cell {
                Cell::Lstm => {
                    let (c_prev, c_next) = self.cs[t * bh..(t + 2) * bh].split_at_mut(bh);
                    reference::lstm_step_forward(
                        batch, input, hidden, &weights, x, h_prev, c_prev, g0, h_next, c_next, cache,
                    );
                }
                Cell::Gru => reference::gru_step_forward(
                    batch, input, hidden, &weights, x, h_prev, g0, g1, h_next, cache,
                ),
                Cell::RnnTanh => reference::rnn_step_forward(
                    batch,
                    input,
                    hidden,
                    Nonlinearity::Tanh,
                    &weights,
                    x,
                    h_prev,
                    g0,
                    h_next,
                ),
            }
        }
    }

    fn backward(&mut self) {
        let Shape { seq, batch, input, hidden } = self.shape;
        let (bh, bi) = (batch * hidden, batch * input);
        let weights = self.params.view();
        let mut grads = self.grads.grads();
        let cache_len = self.caches.len() / seq;
        let [g0, g1] = &mut self.gates;
        let [dh, dh_prev, dh_direct] = &mut self.dh;
        let [dc, dc_prev] = &mut self.dc;
        dh_prev.fill(0.0);
        for t in (0..seq).rev() {
            // ∂L/∂h at t: the output's gradient plus the one carried from t + 1.
            let dy = &self.dys[t * bh..(t + 1) * bh];
            dh.iter_mut().zip(dy).zip(dh_prev.iter()).for_each(|((dh, dy), carry)| *dh = dy + carry);
            let x = &self.xs[t * bi..(t + 1) * bi];
            let h_prev = &self.hs[t * bh..(t + 1) * bh];
            let cache = &self.caches[t * cache_len..(t + 1) * cache_len];
            let dx = &mut self.dxs[t * bi..(t + 1) * bi];
            match self.cell {
                Cell::Lstm => {
                    let c_prev = &self.cs[t * bh..(t + 1) * bh];
                    let dc_next = (t + 1 < seq).then_some(dc.as_slice());
                    reference::lstm_step_backward(
                        batch, input, hidden, &weights, x, h_prev, c_prev, cache, dh, dc_next, g0,
                        &mut grads, dx, dh_prev, dc_prev,
                    );
                    std::mem::swap(dc, dc_prev);
                }
                Cell::Gru => reference::gru_step_backward(
                    batch, input, hidden, &weights, x, h_prev, cache, dh, g0, g1, dh_direct, &mut grads, dx,
                    dh_prev,
                ),
                Cell::RnnTanh => {
                    let h_next = &self.hs[(t + 1) * bh..(t + 2) * bh];
                    reference::rnn_step_backward(
                        batch,
                        input,
                        hidden,
                        Nonlinearity::Tanh,
                        &weights,
                        x,
                        h_prev,
                        h_next,
                        dh,
                        g0,
                        &mut grads,
                        dx,
                        dh_prev,
                    );
                }
            }
        }
        black_box(&self.dxs);
    }

    fn run(&mut self, backward: bool) {
        self.forward();
        if backward {
            self.backward();
        }
    }
}

/// The layer groups, `{cell}/{pass}/{shape}`: keel's layer on every instruction set and 1
/// and 2 threads, beside the scalar reference on the small shape.
fn bench_layers(criterion: &mut Criterion) {
    let runs = isa_runs();
    for shape in [Shape::SMALL, Shape::LARGE] {
        for cell in [Cell::Lstm, Cell::Gru, Cell::RnnTanh] {
            let mut layer = LayerRun::new(cell, shape);
            let mut reference = ReferenceRun::new(cell, shape);
            for (pass, backward, factor) in [("forward", false, 1), ("forward_backward", true, 3)] {
                let mut group = criterion.benchmark_group(format!("{}/{pass}/{}", cell.name(), shape.name()));
                group.throughput(Throughput::Elements(factor * shape.forward_flops(cell.gates())));
                group.sample_size(10);
                for run in &runs {
                    let (isa, pool) = (run.isa, &run.pool);
                    group.bench_function(run.id("_layer"), |bench| {
                        pool.install(|| with_isa(isa, || bench.iter(|| layer.run(backward))).unwrap())
                    });
                }
                if shape.seq == Shape::SMALL.seq {
                    group.bench_function(BenchmarkId::new("reference", "T1"), |bench| {
                        bench.iter(|| reference.run(backward))
                    });
                }
                group.finish();
            }
        }
    }
}
/// The fused cells alone on one step, bytes read + written per call.
fn bench_cells(criterion: &mut Criterion) {
    const BATCH: usize = Shape::SMALL.batch;
    const HIDDEN: usize = Shape::SMALL.hidden;
    const BH: usize = BATCH * HIDDEN;
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

criterion_group!(benches, bench_layers, bench_cells);
criterion_main!(benches);
