//! Convolution throughput in FLOP/s (2·n·c_out·out_h·out_w·(c_in/groups)·kh·kw per forward
//! pass; a training step, forward + backward-data + backward-weight, counts three times that).
//! keel on 1- and 2-thread pools beside keel's per-image paths alone (direct loops or im2col +
//! sgemm, without the images-in-lanes path) and the direct scalar reference, which runs on the
//! small shapes only (it is slow).
//!
//! `cargo bench --bench conv`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use keel::kernels::conv::{
    conv2d_backward_data, conv2d_backward_weight, conv2d_forward, conv2d_workspace_len, reference,
    Conv2dShape,
};

/// (name, shape, run the reference): conv A (LeNet-like first layer), LeNet-5's second layer
/// (B), conv C (a VGG/ResNet 3x3 block) and a 1x1 channel mix (ResNet bottleneck) from the
/// PEERS shapes.
fn shapes() -> [(&'static str, Conv2dShape, bool); 4] {
    [
        ("A_b64_1x28x28_6_5x5_p2", Conv2dShape::new(64, 1, 28, 28, 6, 5, 5).with_pad(2), true),
        ("B_b64_6x14x14_16_5x5", Conv2dShape::new(64, 6, 14, 14, 16, 5, 5), true),
        ("C_b32_64x32x32_64_3x3_p1", Conv2dShape::new(32, 64, 32, 32, 64, 3, 3).with_pad(1), false),
        ("1x1_b32_64x32x32_128", Conv2dShape::new(32, 64, 32, 32, 128, 1, 1), false),
    ]
}

fn filled(len: usize, seed: u32) -> Vec<f32> {
    // A cheap deterministic fill with both signs (benches must not run on zeros).
    (0..len)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / (1 << 24) as f32 - 0.5
        })
        .collect()
}

/// Inputs, parameters and gradient buffers of one shape.
struct Buffers {
    x: Vec<f32>,
    weight: Vec<f32>,
    bias: Vec<f32>,
    y: Vec<f32>,
    dy: Vec<f32>,
    dx: Vec<f32>,
    dweight: Vec<f32>,
    dbias: Vec<f32>,
}

impl Buffers {
    fn new(s: &Conv2dShape) -> Self {
        Self {
            x: filled(s.x_len(), 1),
            weight: filled(s.weight_len(), 2),
            bias: filled(s.c_out, 3),
            y: vec![0.0; s.y_len()],
            dy: filled(s.y_len(), 4),
            dx: vec![0.0; s.x_len()],
            dweight: vec![0.0; s.weight_len()],
            dbias: vec![0.0; s.c_out],
        }
    }

    fn keel_forward(&mut self, s: &Conv2dShape, workspace: &mut [f32]) {
        conv2d_forward(s, black_box(&self.x), &self.weight, Some(&self.bias), &mut self.y, workspace)
            .unwrap();
    }

    fn keel_step(&mut self, s: &Conv2dShape, workspace: &mut [f32]) {
        self.keel_forward(s, workspace);
        conv2d_backward_data(s, black_box(&self.dy), &self.weight, &mut self.dx, workspace).unwrap();
        conv2d_backward_weight(s, &self.x, &self.dy, &mut self.dweight, Some(&mut self.dbias), workspace)
            .unwrap();
    }

    fn reference_forward(&mut self, s: &Conv2dShape) {
        reference::conv2d_forward(s, black_box(&self.x), &self.weight, Some(&self.bias), &mut self.y)
            .unwrap();
    }

    fn reference_step(&mut self, s: &Conv2dShape) {
        self.reference_forward(s);
        reference::conv2d_backward_data(s, black_box(&self.dy), &self.weight, &mut self.dx).unwrap();
        reference::conv2d_backward_weight(s, &self.x, &self.dy, &mut self.dweight, Some(&mut self.dbias))
            .unwrap();
    }
}

fn bench_conv(criterion: &mut Criterion) {
    let pools: Vec<_> = [1usize, 2]
        .into_iter()
        .map(|threads| (threads, rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()))
        .collect();
    for (name, s, with_reference) in shapes() {
        s.check().unwrap();
        let mut buffers = Buffers::new(&s);
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
            if with_reference {
                group.bench_function(BenchmarkId::new("reference", "T1"), |bench| match pass {
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
