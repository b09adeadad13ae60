//! Convolution throughput in FLOP/s (2·n·c_out·out_h·out_w·(c_in/groups)·kh·kw per forward
//! pass; a training step, forward + backward-data + backward-weight, counts three times that).
//! keel on 1- and 2-thread pools beside keel's per-image paths alone (direct loops or im2col +
//! sgemm, without the images-in-lanes path), plain f32 loops that the compiler vectorises
//! (`common/direct_loops.rs`, the fast baseline, checked against the reference first) and the
//! f64 scalar reference, a correctness oracle that runs on the small shapes only (it is slow).
//!
//! `cargo bench --bench conv`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use keel::kernels::conv::{conv2d_workspace_len, Conv2dShape};

#[path = "common/gemm_shapes.rs"]
mod gemm_shapes;

#[path = "common/direct_loops.rs"]
mod direct_loops;

#[path = "common/conv_work.rs"]
mod conv_work;

use conv_work::{peer_conv_shapes, Buffers};

/// (name, shape, run the reference): conv A (LeNet-like first layer), LeNet-5's second layer
/// (B), conv C (a VGG/ResNet 3x3 block) from the PEERS shapes, and a 1x1 channel mix (ResNet
/// bottleneck).
fn shapes() -> [(&'static str, Conv2dShape, bool); 4] {
    let [(_, a), (_, b), (_, c), _] = peer_conv_shapes();
    [
        ("A_b64_1x28x28_6_5x5_p2", a, true),
        ("B_b64_6x14x14_16_5x5", b, true),
        ("C_b32_64x32x32_64_3x3_p1", c, false),
        ("1x1_b32_64x32x32_128", Conv2dShape::new(32, 64, 32, 32, 128, 1, 1), false),
    ]
}

fn bench_conv(criterion: &mut Criterion) {
    let pools: Vec<_> = [1usize, 2]
        .into_iter()
        .map(|threads| (threads, rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()))
        .collect();
    for (name, s, with_reference) in shapes() {
        s.check().unwrap();
        let mut buffers = Buffers::new(&s);
        if with_reference {
            buffers.check_loops_against_reference(&s);
        }
        let forward_flops = 2 * s.muladds() as u64;
        for (pass, flops) in [("forward", forward_flops), ("forward_backward", 3 * forward_flops)] {
            let mut group = criterion.benchmark_group(format!("conv2d_{pass}/{name}"));
            group.throughput(Throughput::Elements(flops));
            group.sample_size(10);
            for (threads, pool) in &pools {
                group.bench_function(BenchmarkId::new("keel", format!("T{threads}")), |bench| {
                    pool.install(|| {
                        // Sized inside the pool: one column buffer per thread.
                        let mut workspace = vec![0.0; conv2d_workspace_len(&s)];
                        match pass {
                            "forward" => bench.iter(|| buffers.keel_forward(&s, &mut workspace)),
                            _ => bench.iter(|| buffers.keel_step(&s, &mut workspace)),
                        }
                    })
                });
            }
            // The per-image paths alone (a workspace of one image's scratch), which the
            // images-in-lanes path replaces on small planes.
            let one_image = conv2d_workspace_len(&Conv2dShape { n: 1, ..s });
            group.bench_function(BenchmarkId::new("keel-per-image", "T1"), |bench| {
                pools[0].1.install(|| {
                    let mut workspace = vec![0.0; one_image];
                    match pass {
                        "forward" => bench.iter(|| buffers.keel_forward(&s, &mut workspace)),
                        _ => bench.iter(|| buffers.keel_step(&s, &mut workspace)),
                    }
                })
            });
            group.bench_function(BenchmarkId::new("f32-loops", "T1"), |bench| match pass {
                "forward" => bench.iter(|| buffers.loops_forward(&s)),
                _ => bench.iter(|| buffers.loops_step(&s)),
            });
            if with_reference {
                group.bench_function(BenchmarkId::new("f64-reference", "T1"), |bench| match pass {
                    "forward" => bench.iter(|| buffers.reference_forward(&s)),
                    _ => bench.iter(|| buffers.reference_step(&s)),
                });
            }
            group.finish();
        }
    }
}

criterion_group!(benches, bench_conv);
criterion_main!(benches);
