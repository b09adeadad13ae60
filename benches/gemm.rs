//! SGEMM throughput (FLOP/s = 2·m·n·k per call), keel beside its baselines in each group:
//! keel's default native path (its packed GEMM on the selected instruction set) on 1 and 2
//! threads, the packed GEMM on the other instruction sets the CPU has, matrixmultiply on 1
//! and 2 threads (C split in blocks, one call per thread), the scalar reference
//! (small shapes only), and the system BLAS with `--features blas`. The `peak` group is the
//! machine's limit: a register-only FMA loop on each vector instruction set the CPU has
//! (`common/fma_peak.rs`). The `sgemm_fused` groups time the
//! fused bias + ReLU epilogue against the GEMM followed by a separate pass over C (a dense
//! layer's 128x256x784, bias per column; a convolution's 16x6400x150, bias per row), and the
//! `sgemm_strided_batched` group a batch of small per-image products against a loop of GEMMs.
//!
//! `OPENBLAS_CORETYPE=SkylakeX OPENBLAS_NUM_THREADS=1 cargo bench --features blas --bench
//! gemm`: Debian's OpenBLAS 0.3.21 does not know the reference CPU (an Intel Xeon, model
//! 207) and, left to pick, runs its Prescott (SSE3) kernels, at about a fifth of its AVX-512
//! ones; the `blas` row runs on OPENBLAS_NUM_THREADS threads.

use std::hint::black_box;

use rayon::prelude::*;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use keel::kernels::gemm::{
    native, reference::sgemm_reference, sgemm_strided_batched, Activation, BatchStrides, Bias, Epilogue,
    GemmShape, Transpose,
};
use keel::kernels::isa::{current_isa, with_isa, Isa};
use keel::kernels::parallel::MIN_PARALLEL_MULADDS;

#[path = "common/gemm_shapes.rs"]
mod gemm_shapes;

#[path = "common/fma_peak.rs"]
mod fma_peak;

use fma_peak::{fma_peak, peak_flops};
use gemm_shapes::{filled, SHAPES};

fn bench_peak(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("peak");
    for isa in Isa::available() {
        let Some(flops) = peak_flops(isa) else { continue };
        group.throughput(Throughput::Elements(flops));
        for threads in [1usize, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            group.bench_function(
                BenchmarkId::new(format!("{}-fma", isa.name()), format!("T{threads}")),
                |bench| {
                    // Each thread runs the loop once: T2 does twice the FLOPs of T1.
                    bench.iter_custom(|iters| {
                        let start = std::time::Instant::now();
                        for _ in 0..iters {
                            pool.broadcast(|_| black_box(fma_peak(isa, black_box(1.0))));
                        }
                        start.elapsed() / threads as u32
                    })
                },
            );
        }
    }
    group.finish();
}

/// matrixmultiply on `threads` threads: the longer side of C cut into one block per thread
/// (as keel's native path did before it ran its own GEMM), each block one single-threaded
/// matrixmultiply call.
fn matrixmultiply_split(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], threads: usize) {
    struct Ptr(*mut f32);
    // SAFETY: the tasks below write disjoint blocks of C through it.
    unsafe impl Sync for Ptr {}
    impl Ptr {
        fn get(&self) -> *mut f32 {
            self.0
        }
    }
    let c_ptr = Ptr(c.as_mut_ptr());
    let split_rows = m >= n;
    let side = if split_rows { m } else { n };
    // Small products stay on one thread, as in keel.
    let parts = if m * n * k < MIN_PARALLEL_MULADDS { 1 } else { threads };
    let block = side.div_ceil(parts).div_ceil(16) * 16;
    let run = |index: usize| {
        let start = index * block;
        let len = block.min(side - start);
        let (row0, rows, col0, cols) = if split_rows { (start, len, 0, n) } else { (0, m, start, len) };
        // SAFETY: rows row0..row0 + rows and columns col0..col0 + cols lie inside the
        // contiguous (m,k), (k,n), (m,n) matrices; each task writes its own block of C.
        unsafe {
            matrixmultiply::sgemm(
                rows,
                k,
                cols,
                1.0,
                a.as_ptr().add(row0 * k),
                k as isize,
                1,
                b.as_ptr().add(col0),
                n as isize,
                1,
                0.0,
                c_ptr.get().add(row0 * n + col0),
                n as isize,
                1,
            )
        }
    };
    (0..side.div_ceil(block)).into_par_iter().for_each(run);
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
        let keel = |c: &mut Vec<f32>| {
            native::sgemm(&GemmShape::new(m, n, k), 1.0, black_box(&a), black_box(&b), 0.0, c).unwrap()
        };
        for threads in [1usize, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            group.bench_function(BenchmarkId::new("keel", format!("T{threads}")), |bench| {
                pool.install(|| bench.iter(|| keel(&mut c)))
            });
        }
        // keel's packed GEMM on the other instruction sets the CPU has ("keel" above runs it
        // on the selected one), up to 1024³ (beyond, the portable kernel takes seconds a call).
        let other_isas = if m * n * k <= 1 << 30 { Isa::available() } else { Vec::new() };
        let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        for isa in other_isas.into_iter().filter(|&isa| isa != current_isa()) {
            group.bench_function(BenchmarkId::new(format!("keel-packed-{}", isa.name()), "T1"), |bench| {
                one_thread.install(|| bench.iter(|| with_isa(isa, || keel(&mut c)).unwrap()))
            });
        }
        for threads in [1usize, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            group.bench_function(BenchmarkId::new("matrixmultiply", format!("T{threads}")), |bench| {
                pool.install(|| bench.iter(|| matrixmultiply_split(m, n, k, &a, &b, &mut c, threads)))
            });
        }
        #[cfg(feature = "blas")]
        group.bench_function(
            BenchmarkId::new(format!("blas-{}", keel::kernels::gemm::BLAS_LIBRARY), "threads-from-env"),
            |bench| {
                bench.iter(|| {
                    keel::kernels::sgemm(
                        &GemmShape::new(m, n, k),
                        1.0,
                        black_box(&a),
                        black_box(&b),
                        0.0,
                        &mut c,
                    )
                    .unwrap()
                })
            },
        );
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

/// The separate pass the fused epilogue saves: `C = relu(C + bias)` over the `m x n` matrix C,
/// the bias per row or per column (a plain loop the compiler vectorises).
fn bias_relu_pass(c: &mut [f32], n: usize, bias: &Bias) {
    for (i, row) in c.chunks_mut(n).enumerate() {
        match *bias {
            Bias::PerRow(bias) => row.iter_mut().for_each(|x| *x = (*x + bias[i]).max(0.0)),
            Bias::PerColumn(bias) => row.iter_mut().zip(bias).for_each(|(x, &b)| *x = (*x + b).max(0.0)),
            Bias::None => row.iter_mut().for_each(|x| *x = x.max(0.0)),
        }
    }
}

/// Fused bias + ReLU against GEMM + a separate pass, on 1 and 2 threads: a dense layer
/// (C = X·Wᵀ, (batch, out) = (128, 256), k = 784, bias per column) and a convolution
/// (C = W·col, (c_out, positions) = (16, 6400), k = 150, bias per row).
fn bench_fused(criterion: &mut Criterion) {
    // (name, m, n, k, transb, bias per row)
    let cases =
        [("dense", 128, 256, 784, Transpose::Yes, false), ("conv", 16, 6400, 150, Transpose::No, true)];
    for (name, m, n, k, transb, per_row) in cases {
        let a = filled(m * k, 1);
        let b = filled(k * n, 2);
        let bias_values = filled(if per_row { m } else { n }, 3);
        let bias = if per_row { Bias::PerRow(&bias_values) } else { Bias::PerColumn(&bias_values) };
        let epilogue = Epilogue { bias, activation: Activation::Relu };
        let ldb = if transb == Transpose::No { n } else { k };
        let mut c = vec![0.0f32; m * n];
        let mut group = criterion.benchmark_group(format!("sgemm_fused/{name}-{m}x{n}x{k}"));
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        for threads in [1usize, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            group.bench_function(BenchmarkId::new("fused", format!("T{threads}")), |bench| {
                pool.install(|| {
                    // keel's own kernels on both sides (under `--features blas`, `sgemm_fused`
                    // would run OpenBLAS and then one pass).
                    bench.iter(|| {
                        {
                            native::sgemm_fused(
                                &GemmShape { transa: Transpose::No, transb, m, n, k, lda: k, ldb, ldc: n },
                                1.0,
                                black_box(&a),
                                black_box(&b),
                                0.0,
                                &mut c,
                                &epilogue,
                            )
                        }
                        .unwrap()
                    })
                })
            });
            group.bench_function(BenchmarkId::new("gemm+pass", format!("T{threads}")), |bench| {
                pool.install(|| {
                    bench.iter(|| {
                        native::sgemm(
                            &GemmShape { transa: Transpose::No, transb, m, n, k, lda: k, ldb, ldc: n },
                            1.0,
                            black_box(&a),
                            black_box(&b),
                            0.0,
                            &mut c,
                        )
                        .unwrap();
                        bias_relu_pass(&mut c, n, &bias);
                    })
                })
            });
        }
        group.finish();
    }
}

/// A convolution's per-image products as one strided batch: 64 images of
/// (6, 784) = (6, 25)·(25, 784), the weight shared (stride 0), against a loop of GEMMs.
fn bench_batched(criterion: &mut Criterion) {
    let (batch, m, n, k) = (64usize, 6usize, 784usize, 25usize);
    let weight = filled(m * k, 1);
    let cols = filled(batch * k * n, 2);
    let mut c = vec![0.0f32; batch * m * n];
    let mut group = criterion.benchmark_group(format!("sgemm_strided_batched/{batch}x{m}x{n}x{k}"));
    group.throughput(Throughput::Elements((2 * batch * m * n * k) as u64));
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        group.bench_function(BenchmarkId::new("batched", format!("T{threads}")), |bench| {
            pool.install(|| {
                bench.iter(|| {
                    sgemm_strided_batched(
                        &GemmShape::new(m, n, k),
                        batch,
                        BatchStrides { a: 0, b: k * n, c: m * n },
                        1.0,
                        black_box(&weight),
                        black_box(&cols),
                        0.0,
                        &mut c,
                        &Epilogue::NONE,
                    )
                    .unwrap()
                })
            })
        });
        group.bench_function(BenchmarkId::new("gemm-loop", format!("T{threads}")), |bench| {
            pool.install(|| {
                bench.iter(|| {
                    for (col, c_i) in cols.chunks(k * n).zip(c.chunks_mut(m * n)) {
                        native::sgemm(
                            &GemmShape::new(m, n, k),
                            1.0,
                            black_box(&weight),
                            black_box(col),
                            0.0,
                            c_i,
                        )
                        .unwrap()
                    }
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_peak, bench_gemm, bench_fused, bench_batched);
criterion_main!(benches);
