//! Pooling throughput in bytes moved (read + written) per call: keel on 1- and 2-thread
//! pools beside the scalar reference. Max and average pool 2x2 stride 2 (forward, and
//! forward + backward as in a training step) on LeNet-5's two pools at batch 64
//! ((64, 6, 28, 28) and (64, 16, 10, 10)) and on the (64, 64, 32, 32) activations of a small
//! CNN; global average pool forward and backward on the latter. Max and average pool and
//! global average pool forward also run on 1 thread on every other instruction set the CPU
//! has (`keel-avx2`, ...).
//!
//! `cargo bench --bench pool`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use keel::kernels::isa::{current_isa, with_isa, Isa};
use keel::kernels::pool::{self, reference, Pool2dShape};

const F32: u64 = 4;

fn filled(len: usize, seed: u32) -> Vec<f32> {
    // A cheap deterministic fill with both signs (benches must not run on zeros).
    (0..len)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / (1 << 24) as f32 - 0.5
        })
        .collect()
}

/// The outputs the kernels overwrite.
struct Outputs {
    y: Vec<f32>,
    argmax: Vec<u32>,
    dx: Vec<f32>,
}

/// Benches `keel` on the selected instruction set on 1 and 2 threads, on each of
/// `other_isas` on 1 thread ("keel-avx2", ...), and the reference, in one group.
fn group(
    criterion: &mut Criterion,
    name: &str,
    bytes: u64,
    out: &mut Outputs,
    other_isas: &[Isa],
    keel: impl Fn(Isa, &mut Outputs) + Sync,
    reference: impl Fn(&mut Outputs),
) {
    let mut group = criterion.benchmark_group(name);
    group.throughput(Throughput::Bytes(bytes));
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    for threads in [1usize, 2] {
        let threads_pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        group.bench_function(BenchmarkId::new("keel", format!("T{threads}")), |bench| {
            threads_pool.install(|| bench.iter(|| keel(current_isa(), out)))
        });
    }
    for &isa in other_isas {
        group.bench_function(BenchmarkId::new(format!("keel-{}", isa.name()), "T1"), |bench| {
            one_thread.install(|| bench.iter(|| keel(isa, out)))
        });
    }
    group.bench_function(BenchmarkId::new("reference", "T1"), |bench| bench.iter(|| reference(out)));
    group.finish();
}

/// Max and average pool (forward, and forward + backward as in a training step) on one shape.
fn bench_pooling(criterion: &mut Criterion, shape: Pool2dShape, label: &str) {
    let (xl, yl) = (shape.in_len(), shape.out_len());
    let (xb, yb) = (xl as u64 * F32, yl as u64 * F32);
    let x = filled(xl, 1);
    let dy = filled(yl, 2);
    let out = &mut Outputs { y: vec![0.0; yl], argmax: vec![0; yl], dx: vec![0.0; xl] };
    // The tiled fast path's other instruction sets ("keel" runs the selected one).
    let isas: Vec<Isa> = Isa::available().into_iter().filter(|&isa| isa != current_isa()).collect();

    // Forward reads x, writes y and the mask; backward reads dy and the mask, writes dx.
    let (fwd, bwd) = (xb + 2 * yb, 2 * yb + xb);
    group(
        criterion,
        &format!("maxpool2d_forward/{label}"),
        fwd,
        out,
        &isas,
        |isa, o| {
            with_isa(isa, || pool::maxpool2d_forward(&shape, black_box(&x), &mut o.y, &mut o.argmax))
                .unwrap()
                .unwrap()
        },
        |o| reference::maxpool2d_forward(&shape, black_box(&x), &mut o.y, &mut o.argmax),
    );
    group(
        criterion,
        &format!("maxpool2d_forward_backward/{label}"),
        fwd + bwd,
        out,
        &isas,
        |isa, o| {
            with_isa(isa, || pool::maxpool2d_forward(&shape, black_box(&x), &mut o.y, &mut o.argmax))
                .unwrap()
                .unwrap();
            with_isa(isa, || pool::maxpool2d_backward(&shape, black_box(&dy), &o.argmax, &mut o.dx))
                .unwrap()
                .unwrap()
        },
        |o| {
            reference::maxpool2d_forward(&shape, black_box(&x), &mut o.y, &mut o.argmax);
            reference::maxpool2d_backward(&shape, black_box(&dy), &o.argmax, &mut o.dx)
        },
    );

    // Average pool (count_include_pad = true, PyTorch's default): no mask.
    let (fwd, bwd) = (xb + yb, yb + xb);
    group(
        criterion,
        &format!("avgpool2d_forward/{label}"),
        fwd,
        out,
        &isas,
        |isa, o| {
            with_isa(isa, || pool::avgpool2d_forward(&shape, true, black_box(&x), &mut o.y)).unwrap().unwrap()
        },
        |o| reference::avgpool2d_forward(&shape, true, black_box(&x), &mut o.y),
    );
    group(
        criterion,
        &format!("avgpool2d_forward_backward/{label}"),
        fwd + bwd,
        out,
        &isas,
        |isa, o| {
            with_isa(isa, || pool::avgpool2d_forward(&shape, true, black_box(&x), &mut o.y))
                .unwrap()
                .unwrap();
            with_isa(isa, || pool::avgpool2d_backward(&shape, true, black_box(&dy), &mut o.dx))
                .unwrap()
                .unwrap()
        },
        |o| {
            reference::avgpool2d_forward(&shape, true, black_box(&x), &mut o.y);
            reference::avgpool2d_backward(&shape, true, black_box(&dy), &mut o.dx)
        },
    );
}

fn bench_pool(criterion: &mut Criterion) {
    // LeNet-5's two pools at batch 64 (outputs 14 and 5 wide), then a small CNN's.
    bench_pooling(criterion, Pool2dShape::square(64, 6, 28, 28, 2, 2, 0), "lenet1 64x6x28x28 k2s2");
    bench_pooling(criterion, Pool2dShape::square(64, 16, 10, 10, 2, 2, 0), "lenet2 64x16x10x10 k2s2");
    bench_pooling(criterion, Pool2dShape::square(64, 64, 32, 32, 2, 2, 0), "64x64x32x32 k2s2");

    // Global average pool: (64, 64, 32, 32) -> (64, 64) and back.
    let (n, c, h, w) = (64, 64, 32, 32);
    let xb = (n * c * h * w) as u64 * F32;
    let planes = (n * c) as u64 * F32;
    let x = filled(n * c * h * w, 1);
    let dg = filled(n * c, 3);
    let out = &mut Outputs { y: vec![0.0; n * c], argmax: Vec::new(), dx: vec![0.0; n * c * h * w] };
    // The forward dispatches at run time (`with_isa` forces the other instruction sets).
    let isas: Vec<Isa> = Isa::available().into_iter().filter(|&isa| isa != current_isa()).collect();
    group(
        criterion,
        "global_avgpool_forward/64x64x32x32",
        xb + planes,
        out,
        &isas,
        |isa, o| {
            with_isa(isa, || pool::global_avgpool_forward(n, c, h, w, black_box(&x), &mut o.y))
                .unwrap()
                .unwrap()
        },
        |o| reference::global_avgpool_forward(n, c, h, w, black_box(&x), &mut o.y),
    );
    group(
        criterion,
        "global_avgpool_backward/64x64x32x32",
        planes + xb,
        out,
        &[],
        |_, o| pool::global_avgpool_backward(n, c, h, w, black_box(&dg), &mut o.dx).unwrap(),
        |o| reference::global_avgpool_backward(n, c, h, w, black_box(&dg), &mut o.dx),
    );
}

criterion_group!(benches, bench_pool);
criterion_main!(benches);
