//! The measurements behind `cargo run --release`: one row per kernel and shape, keel beside
//! its baseline, timed in the same process one after the other.

use std::hint::black_box;
use std::time::{Duration, Instant};

use keel::kernels::gemm::{sgemm_native, Transpose};

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
            "{:<28} {:<22} {:>9} {:>12} {:>16} {:>12} {:>7}",
            "kernel", "shape", "unit", "keel", "baseline", "baseline", "ratio"
        );
        for row in rows {
            let rate = |t: Duration| row.work / t.as_secs_f64() / 1e9;
            println!(
                "{:<28} {:<22} {:>9} {:>12.1} {:>16} {:>12.1} {:>6.2}x",
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
                sgemm_native(
                    Transpose::No,
                    Transpose::No,
                    m,
                    n,
                    k,
                    1.0,
                    black_box(&a),
                    k,
                    &b,
                    n,
                    0.0,
                    &mut c,
                    n,
                )
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
