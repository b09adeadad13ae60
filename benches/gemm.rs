//! SGEMM throughput (FLOP/s = 2·m·n·k per call), keel beside its baselines in each group:
//! matrixmultiply (single-threaded), the scalar reference (small shapes only), and the
//! system BLAS with `--features blas`. Each shape runs on a 1-thread and a 2-thread pool.
//!
//! `cargo bench --bench gemm` (unset OPENBLAS_CORETYPE for a fair BLAS figure).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use keel::kernels::gemm::{reference::sgemm_reference, sgemm_native, GemmShape, Transpose};

/// Square sizes and the network shapes of PEERS.md: (m, n, k).
const SHAPES: &[(usize, usize, usize)] = &[
    (64, 64, 64),
    (256, 256, 256),
    (512, 512, 512),
    (1024, 1024, 1024),
    (64, 128, 784),
    (128, 64, 128),
    (256, 10, 64),
    (16, 6400, 150),
    (64, 32768, 576),
];

fn filled(len: usize, seed: u32) -> Vec<f32> {
    // A cheap deterministic fill with both signs (benches must not run on zeros).
    (0..len)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / (1 << 24) as f32 - 0.5
        })
        .collect()
}

fn bench_gemm(criterion: &mut Criterion) {
    for &(m, n, k) in SHAPES {
        let a = filled(m * k, 1);
        let b = filled(k * n, 2);
        let mut c = vec![0.0f32; m * n];
        let mut group = criterion.benchmark_group(format!("sgemm/{m}x{n}x{k}"));
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        if m * n * k >= 1 << 27 {
            group.sample_size(10);
        }
        for threads in [1usize, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            group.bench_function(BenchmarkId::new("keel", format!("T{threads}")), |bench| {
                pool.install(|| {
                    bench.iter(|| {
                        sgemm_native(
                            Transpose::No,
                            Transpose::No,
                            m,
                            n,
                            k,
                            1.0,
                            black_box(&a),
                            k,
                            black_box(&b),
                            n,
                            0.0,
                            &mut c,
                            n,
                        )
                        .unwrap()
                    })
                })
            });
        }
        group.bench_function(BenchmarkId::new("matrixmultiply", "T1"), |bench| {
            bench.iter(|| unsafe {
                // SAFETY: a, b, c are contiguous (m,k), (k,n), (m,n) matrices.
                matrixmultiply::sgemm(
                    m,
                    k,
                    n,
                    1.0,
                    a.as_ptr(),
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
            })
        });
        #[cfg(feature = "blas")]
        group.bench_function(BenchmarkId::new("blas", "OPENBLAS_NUM_THREADS"), |bench| {
            bench.iter(|| {
                keel::kernels::sgemm(
                    Transpose::No,
                    Transpose::No,
                    m,
                    n,
                    k,
                    1.0,
                    black_box(&a),
                    k,
                    black_box(&b),
                    n,
                    0.0,
                    &mut c,
                    n,
                )
                .unwrap()
            })
        });
        if m * n * k <= 1 << 21 {
            let shape =
                GemmShape { transa: Transpose::No, transb: Transpose::No, m, n, k, lda: k, ldb: n, ldc: n };
            group.bench_function(BenchmarkId::new("reference", "T1"), |bench| {
                bench.iter(|| sgemm_reference(&shape, 1.0, black_box(&a), black_box(&b), 0.0, &mut c))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_gemm);
criterion_main!(benches);
