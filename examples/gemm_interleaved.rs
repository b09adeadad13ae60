//! `cargo run --release --example gemm_interleaved [--features blas] -- [ROUNDS] [MxNxK ...]`:
//! keel's SGEMM beside its baselines, **interleaved**: every round times each contender once
//! in turn (keel on 1 and 2 threads, matrixmultiply on 1, and the system BLAS with `--features
//! blas`, on `OPENBLAS_NUM_THREADS` threads), so a minute when another tenant of a shared
//! machine holds the core slows all of them, not one. It prints the median GFLOP/s of each
//! and the median over rounds of keel's speed-up on one thread against each baseline.
//!
//! Criterion runs its benchmarks one after the other, which on a noisy host can put a busy
//! minute on one side of a comparison only; this is the measurement to trust there.
//! Debian's OpenBLAS 0.3.21 needs `OPENBLAS_CORETYPE=SkylakeX` on the reference CPU (left to
//! pick, it runs its SSE3 kernels).
//!
//! Against MKL (PyTorch's GEMM) in the same process (Intel publishes it on PyPI; its sequential
//! layer, since a threaded one, even on one thread, left threads that slowed keel's T2):
//!
//! ```sh
//! pip download mkl --no-deps -d /tmp/mkl && unzip -q -d /tmp/mkl /tmp/mkl/mkl-*.whl
//! LIB=$(dirname $(find /tmp/mkl -name libmkl_rt.so.3)) && ln -sf libmkl_rt.so.3 $LIB/libmkl_rt.so
//! KEEL_BLAS_LIB=mkl_rt KEEL_BLAS_LIB_DIR=$LIB cargo build --release --features blas --example gemm_interleaved
//! LD_LIBRARY_PATH=$LIB MKL_THREADING_LAYER=SEQUENTIAL target/release/examples/gemm_interleaved
//! ```
//!
//! Defaults: 15 rounds over the square and network shapes of `PEERS.md`.

use std::time::Instant;

use keel::kernels::gemm::{native, GemmShape};

// The square and network shapes of `PEERS.md`, and the operand fill, as in `benches/gemm.rs`.
#[path = "../benches/common/gemm_shapes.rs"]
mod gemm_shapes;

use gemm_shapes::{filled, SHAPES};

/// Each timing repeats the product for at least this long.
const MIN_SECONDS: f64 = 0.03;

/// One call of `C = A·B` (row-major m x k by k x n, C overwritten).
type Product = fn(usize, usize, usize, &[f32], &[f32], &mut [f32]);

/// A contender: its name, its product, and the rayon pool it runs in (entered once per
/// timing, not per call, as a caller inside the pool would).
struct Contender {
    name: String,
    product: Product,
    pool: rayon::ThreadPool,
}

impl Contender {
    fn new(name: &str, product: Product, threads: usize) -> Contender {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a rayon pool");
        Contender { name: name.to_owned(), product, pool }
    }

    /// Seconds per call, over `reps` calls.
    fn time(
        &self,
        reps: usize,
        (m, n, k): (usize, usize, usize),
        a: &[f32],
        b: &[f32],
        c: &mut [f32],
    ) -> f64 {
        self.pool.install(|| {
            let start = Instant::now();
            for _ in 0..reps {
                (self.product)(m, n, k, a, b, c);
            }
            start.elapsed().as_secs_f64() / reps as f64
        })
    }
}

fn keel(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    native::sgemm(&GemmShape::new(m, n, k), 1.0, a, b, 0.0, c).expect("shapes are consistent")
}

fn matrixmultiply_single(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: A is m x k, B k x n and C m x n, contiguous row-major (asserted above).
    unsafe {
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
    }
}

#[cfg(feature = "blas")]
fn system_blas(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    // With the `blas` feature, `sgemm` calls `cblas_sgemm`.
    keel::kernels::sgemm(&GemmShape::new(m, n, k), 1.0, a, b, 0.0, c).expect("shapes are consistent")
}

fn contenders() -> Vec<Contender> {
    let list = vec![
        Contender::new("keel T1", keel, 1),
        Contender::new("keel T2", keel, 2),
        Contender::new("matrixmultiply T1", matrixmultiply_single, 1),
    ];
    #[cfg(feature = "blas")]
    let list = list
        .into_iter()
        .chain([Contender::new(&format!("BLAS: {}", keel::kernels::gemm::BLAS_LIBRARY), system_blas, 1)])
        .collect();
    list
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn parse_shape(text: &str) -> (usize, usize, usize) {
    let sides: Vec<usize> =
        text.split('x').map(|side| side.parse().expect("MxNxK with whole numbers")).collect();
    match sides[..] {
        [m, n, k] if m > 0 && n > 0 && k > 0 => (m, n, k),
        _ => panic!("a shape is MxNxK with positive sides, got {text}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args.first().and_then(|arg| arg.parse().ok()).unwrap_or(15);
    let shape_args = args.iter().filter(|arg| arg.contains('x'));
    let mut shapes: Vec<(usize, usize, usize)> = shape_args.map(|arg| parse_shape(arg)).collect();
    if shapes.is_empty() {
        shapes = SHAPES.to_vec();
    }
    let contenders = contenders();
    println!("{rounds} interleaved rounds: median GFLOP/s, and medians over rounds of the ratios\n");
    for (m, n, k) in shapes {
        let (a, b) = (filled(m * k, 1), filled(k * n, 2));
        let mut c = vec![0.0f32; m * n];
        let flops = 2.0 * (m * n * k) as f64;
        // Repetitions per timing, from one warm-up call of keel.
        let reps = ((MIN_SECONDS / contenders[0].time(1, (m, n, k), &a, &b, &mut c)) as usize).max(1);
        let mut seconds = vec![Vec::with_capacity(rounds); contenders.len()];
        for round in 0..=rounds {
            for (contender, times) in contenders.iter().zip(&mut seconds) {
                let time = contender.time(reps, (m, n, k), &a, &b, &mut c);
                // Round 0 warms every contender up and is not counted.
                if round > 0 {
                    times.push(time);
                }
            }
        }
        println!("{m}x{n}x{k}:");
        for (index, (contender, times)) in contenders.iter().zip(&seconds).enumerate() {
            let mut ratios: Vec<f64> =
                times.iter().zip(&seconds[0]).map(|(theirs, keel)| theirs / keel).collect();
            let gflops = flops / median(&mut times.clone()) / 1e9;
            let ratio = median(&mut ratios);
            let comparison = match index {
                0 => String::new(),
                1 => format!("   {:.2}x keel T1's speed", 1.0 / ratio),
                _ => format!("   keel T1 {ratio:.2}x as fast"),
            };
            println!("  {:<18} {gflops:7.1} GFLOP/s{comparison}", contender.name);
        }
    }
}
