//! The measurements behind `cargo run --release`: one row per kernel and shape, keel beside
//! its baseline, timed in the same process one after the other.

use std::hint::black_box;
use std::time::{Duration, Instant};

use keel::kernels::gemm::{native, GemmShape};

/// What a row's throughput counts.
#[derive(Clone, Copy)]
pub enum Unit {
    /// Floating-point operations (a multiply-add is two).
    Flops,
    /// Bytes read plus bytes written.
    Bytes,
}

impl Unit {
    pub fn label(self) -> &'static str {
        match self {
            Unit::Flops => "GFLOP/s",
            Unit::Bytes => "GB/s",
        }
    }
}

/// One kernel on one shape: keel's median time and its baseline's.
pub struct Row {
    pub kernel: String,
    pub shape: String,
    pub unit: Unit,
    /// FLOPs or bytes per call.
    pub work: f64,
    pub keel: Duration,
    pub baseline_name: &'static str,
    pub baseline: Duration,
}

impl Row {
    pub fn print_table(rows: &[Row]) {
        println!(
            "{:<30} {:<22} {:>9} {:>12} {:>16} {:>12} {:>7}",
            "kernel", "shape", "unit", "keel", "baseline", "baseline", "ratio"
        );
        for row in rows {
            let rate = |t: Duration| row.work / t.as_secs_f64() / 1e9;
            println!(
                "{:<30} {:<22} {:>9} {:>12.1} {:>16} {:>12.1} {:>6.2}x",
                row.kernel,
                row.shape,
                row.unit.label(),
                rate(row.keel),
                row.baseline_name,
                rate(row.baseline),
                row.baseline.as_secs_f64() / row.keel.as_secs_f64()
            );
        }
    }
}

/// Median wall time of `run`, repeated until about 0.3 s have passed (at least 5 times)
/// after one warm-up call.
pub fn median_time(mut run: impl FnMut()) -> Duration {
    run();
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 5 || (start.elapsed() < Duration::from_millis(300) && times.len() < 1000) {
        let t = Instant::now();
        run();
        times.push(t.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

/// Deterministic values in [-0.5, 0.5) with both signs.
pub fn filled(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| ((i as u32 ^ seed).wrapping_mul(2_654_435_761) >> 8) as f32 / (1u32 << 24) as f32 - 0.5)
        .collect()
}

/// SGEMM on square and network shapes, keel's native path against matrixmultiply.
pub fn gemm_rows() -> Vec<Row> {
    let shapes = [(256, 256, 256), (1024, 1024, 1024), (64, 128, 784), (256, 10, 64), (16, 6400, 150)];
    shapes
        .into_iter()
        .map(|(m, n, k)| {
            let a = filled(m * k, 1);
            let b = filled(k * n, 2);
            let mut c = vec![0.0f32; m * n];
            let keel = median_time(|| {
                native::sgemm(&GemmShape::new(m, n, k), 1.0, black_box(&a), &b, 0.0, &mut c)
                    .expect("shapes are consistent")
            });
            let baseline = median_time(|| {
                // SAFETY: a, b, c are contiguous (m, k), (k, n), (m, n) row-major matrices.
                unsafe {
                    matrixmultiply::sgemm(
                        m,
                        k,
                        n,
                        1.0,
                        black_box(a.as_ptr()),
                        k as isize,
                        1,
                        b.as_ptr(),
                        n as isize,
                        1,
                        0.0,
                        c.as_mut_ptr(),
                        n as isize,
                        1,
                    )
                }
            });
            Row {
                kernel: "sgemm".into(),
                shape: format!("{m}x{n}x{k}"),
                unit: Unit::Flops,
                work: 2.0 * (m * n * k) as f64,
                keel,
                baseline_name: "matrixmultiply",
                baseline,
            }
        })
        .collect()
}

/// A row from two closures timed one after the other.
fn row(
    kernel: &str,
    shape: String,
    unit: Unit,
    work: f64,
    keel: impl FnMut(),
    baseline_name: &'static str,
    baseline: impl FnMut(),
) -> Row {
    let keel = median_time(keel);
    let baseline = median_time(baseline);
    Row { kernel: kernel.into(), shape, unit, work, keel, baseline_name, baseline }
}

/// Convolution forward (im2col + GEMM) on LeNet's two layers, against the direct loops.
pub fn conv_rows() -> Vec<Row> {
    use keel::kernels::conv::{conv2d_forward, conv2d_workspace_len, reference, Conv2dShape};
    [Conv2dShape::new(64, 1, 28, 28, 6, 5, 5).with_pad(2), Conv2dShape::new(64, 6, 14, 14, 16, 5, 5)]
        .into_iter()
        .map(|shape| {
            let x = filled(shape.x_len(), 3);
            let weight = filled(shape.weight_len(), 4);
            let bias = filled(shape.c_out, 5);
            let mut y = vec![0.0f32; shape.y_len()];
            let mut workspace = vec![0.0f32; conv2d_workspace_len(&shape)];
            let mut y_reference = y.clone();
            row(
                "conv2d_forward",
                format!(
                    "{}x{}x{}x{}->{} {}x{}",
                    shape.n, shape.c_in, shape.h, shape.w, shape.c_out, shape.kh, shape.kw
                ),
                Unit::Flops,
                2.0 * shape.muladds() as f64,
                || {
                    conv2d_forward(&shape, &x, &weight, Some(&bias), &mut y, &mut workspace)
                        .expect("valid shape")
                },
                "direct loops",
                || {
                    reference::conv2d_forward(&shape, &x, &weight, Some(&bias), &mut y_reference)
                        .expect("valid shape")
                },
            )
        })
        .collect()
}

/// Max and average pooling 2x2 stride 2 on (64, 64, 32, 32), against the scalar loops.
pub fn pool_rows() -> Vec<Row> {
    use keel::kernels::pool::{avgpool2d_forward, maxpool2d_forward, reference, Pool2dShape};
    let shape = Pool2dShape::square(64, 64, 32, 32, 2, 2, 0);
    let x = filled(shape.in_len(), 6);
    let (mut y, mut y_reference) = (vec![0.0f32; shape.out_len()], vec![0.0f32; shape.out_len()]);
    let (mut argmax, mut argmax_reference) = (vec![0u32; shape.out_len()], vec![0u32; shape.out_len()]);
    let bytes = 4.0 * (shape.in_len() + shape.out_len()) as f64;
    let name = "64x64x32x32 2x2 s2".to_string();
    vec![
        row(
            "maxpool2d_forward",
            name.clone(),
            Unit::Bytes,
            bytes + 4.0 * shape.out_len() as f64,
            || maxpool2d_forward(&shape, &x, &mut y, &mut argmax).expect("valid shape"),
            "scalar loops",
            || reference::maxpool2d_forward(&shape, &x, &mut y_reference, &mut argmax_reference),
        ),
        row(
            "avgpool2d_forward",
            name,
            Unit::Bytes,
            bytes,
            || avgpool2d_forward(&shape, true, &x, &mut y).expect("valid shape"),
            "scalar loops",
            || reference::avgpool2d_forward(&shape, true, &x, &mut y_reference),
        ),
    ]
}

/// Element-wise activations on 16M floats and the fused softmax + cross-entropy, against
/// the scalar libm loops.
pub fn activation_rows() -> Vec<Row> {
    use keel::kernels::activation::{reference, sigmoid_forward, tanh_forward};
    use keel::kernels::loss::reference as loss_reference;
    use keel::kernels::loss::softmax_cross_entropy_forward;
    let len = 1 << 24;
    let x: Vec<f32> = filled(len, 7).into_iter().map(|v| 16.0 * v).collect();
    let (mut y, mut y_reference) = (vec![0.0f32; len], vec![0.0f32; len]);
    let bytes = 8.0 * len as f64;
    let (batch, classes) = (64, 1000);
    let logits = filled(batch * classes, 8);
    let targets: Vec<u32> = (0..batch as u32).map(|i| i * 37 % classes as u32).collect();
    let mut probs = vec![0.0f32; batch * classes];
    let mut probs_reference = probs.clone();
    let name = "16M floats".to_string();
    let mut rows = vec![
        row(
            "sigmoid_forward",
            name.clone(),
            Unit::Bytes,
            bytes,
            || sigmoid_forward(&x, &mut y).expect("same lengths"),
            "scalar libm",
            || reference::sigmoid_forward(&x, &mut y_reference),
        ),
        row(
            "tanh_forward",
            name,
            Unit::Bytes,
            bytes,
            || tanh_forward(&x, &mut y).expect("same lengths"),
            "scalar libm",
            || reference::tanh_forward(&x, &mut y_reference),
        ),
    ];
    rows.push(row(
        "softmax_cross_entropy_forward",
        format!("{batch}x{classes}"),
        Unit::Bytes,
        8.0 * (batch * classes) as f64,
        || {
            black_box(
                softmax_cross_entropy_forward(batch, classes, &logits, &targets, &mut probs)
                    .expect("valid targets"),
            );
        },
        "scalar libm",
        || {
            black_box(loss_reference::softmax_cross_entropy_forward(
                classes,
                &logits,
                &targets,
                &mut probs_reference,
            ));
        },
    ));
    rows
}

/// One fused LSTM cell step (batch 32, hidden 128) from the gate pre-activations.
pub fn rnn_rows() -> Vec<Row> {
    use keel::kernels::rnn::{lstm_cell_forward, reference};
    let (batch, hidden) = (32, 128);
    let gates = filled(batch * 4 * hidden, 9);
    let c_prev = filled(batch * hidden, 10);
    let (mut c, mut h, mut cache) =
        (vec![0.0f32; batch * hidden], vec![0.0f32; batch * hidden], vec![0.0f32; batch * 5 * hidden]);
    let (mut c_r, mut h_r, mut cache_r) = (c.clone(), h.clone(), cache.clone());
    // Reads the gates and c, writes c', h' and the 5H cache.
    let bytes = 4.0 * (batch * hidden * (4 + 1 + 2 + 5)) as f64;
    vec![row(
        "lstm_cell_forward",
        format!("b{batch} h{hidden}"),
        Unit::Bytes,
        bytes,
        || {
            lstm_cell_forward(batch, hidden, &gates, &c_prev, &mut c, &mut h, &mut cache)
                .expect("valid shape")
        },
        "scalar libm",
        || reference::lstm_cell_forward(batch, hidden, &gates, &c_prev, &mut c_r, &mut h_r, &mut cache_r),
    )]
}

/// Batch norm (training) on (32, 64, 32, 32), an Adam step on 1M parameters and dropout on
/// 16M floats, against the scalar loops.
pub fn norm_optim_rows() -> Vec<Row> {
    use keel::kernels::norm::{batchnorm_forward_train, dropout_forward, reference as norm_reference};
    use keel::kernels::optim::{adam_update, reference as optim_reference, AdamConfig};
    let (n, c, spatial) = (32, 64, 32 * 32);
    let x = filled(n * c * spatial, 11);
    let (gamma, beta) = (vec![1.0f32; c], vec![0.0f32; c]);
    let (mut running_mean, mut running_var) = (vec![0.0f32; c], vec![1.0f32; c]);
    let (mut y, mut save_mean, mut save_invstd) = (vec![0.0f32; x.len()], vec![0.0f32; c], vec![0.0f32; c]);
    let (mut y_r, mut save_mean_r, mut save_invstd_r) = (y.clone(), save_mean.clone(), save_invstd.clone());
    let (mut running_mean_r, mut running_var_r) = (running_mean.clone(), running_var.clone());
    let batchnorm = row(
        "batchnorm_forward_train",
        format!("{n}x{c}x32x32"),
        Unit::Bytes,
        // Reads x twice (statistics, then normalisation) and writes y.
        12.0 * x.len() as f64,
        || {
            batchnorm_forward_train(
                n,
                c,
                spatial,
                &x,
                &gamma,
                &beta,
                1e-5,
                0.1,
                &mut running_mean,
                &mut running_var,
                &mut y,
                &mut save_mean,
                &mut save_invstd,
            )
            .expect("valid shape")
        },
        "scalar loops",
        || {
            norm_reference::batchnorm_forward_train(
                n,
                c,
                spatial,
                &x,
                &gamma,
                &beta,
                1e-5,
                0.1,
                &mut running_mean_r,
                &mut running_var_r,
                &mut y_r,
                &mut save_mean_r,
                &mut save_invstd_r,
            )
        },
    );

    let params = 1 << 20;
    let grad = filled(params, 12);
    let config = AdamConfig::default();
    let mut state = [filled(params, 13), vec![0.0f32; params], vec![0.0f32; params]];
    let mut state_r = state.clone();
    let (mut step, mut step_r) = (0u64, 0u64);
    let adam = row(
        "adam_update",
        "1M params".into(),
        Unit::Bytes,
        // Reads param, grad, m, v; writes param, m, v.
        28.0 * params as f64,
        || {
            step += 1;
            let [param, m, v] = &mut state;
            adam_update(&config, step, param, &grad, m, v, &mut []).expect("valid config")
        },
        "scalar loops",
        || {
            step_r += 1;
            let [param, m, v] = &mut state_r;
            optim_reference::adam_update(&config, step_r, param, &grad, m, v, &mut [])
        },
    );

    let len = 1 << 24;
    let x = filled(len, 14);
    let (mut y, mut mask) = (vec![0.0f32; len], vec![0u8; len]);
    let (mut y_r, mut mask_r) = (y.clone(), mask.clone());
    let dropout = row(
        "dropout_forward",
        "16M floats, p = 0.5".into(),
        Unit::Bytes,
        9.0 * len as f64,
        || dropout_forward(0.5, 42, 0, &x, &mut y, &mut mask).expect("valid p"),
        "scalar loops",
        || norm_reference::dropout_forward(0.5, 42, 0, &x, &mut y_r, &mut mask_r),
    );
    vec![batchnorm, adam, dropout]
}
