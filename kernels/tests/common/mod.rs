//! Helpers shared by the kernel test files: deterministic data, edge-size strategies and
//! closeness checks that report the first mismatch.
#![allow(dead_code)] // each test file uses its own subset

use keel_kernels::isa::Isa;
use keel_kernels::isa::{current_isa, with_isa};
use keel_kernels::parallel::{chunk_len, current_num_threads, MIN_PARALLEL_ELEMENTS};
use keel_kernels::KernelError;
use proptest::prelude::*;

/// Deterministic values uniform in `[lo, hi)` from a seed (SplitMix64), both signs when
/// `lo < 0 < hi`. Tests draw seeds from proptest so failures shrink and replay.
pub fn uniform(len: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut state = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let unit = (z >> 40) as f32 / (1u64 << 24) as f32;
            lo + (hi - lo) * unit
        })
        .collect()
}

/// Sizes that stress SIMD tails and blocking: 1, small primes, each side of the 8- and
/// 16-lane widths and of 32/64, plus anything up to `max`.
pub fn edge_size(max: usize) -> impl Strategy<Value = usize> {
    let special: Vec<usize> =
        [1, 2, 3, 5, 7, 8, 9, 13, 15, 16, 17, 23, 31, 32, 33, 47, 63, 64, 65, 97, 127, 128, 129]
            .into_iter()
            .filter(|&s| s <= max)
            .collect();
    prop_oneof![proptest::sample::select(special), 1..=max.max(1)]
}

/// Asserts `|actual - expected| <= atol + rtol·|expected|` element-wise, NaN only where
/// expected is NaN; panics naming `what`, the first bad index and both values.
#[track_caller]
pub fn assert_close(what: &str, actual: &[f32], expected: &[f32], rtol: f32, atol: f32) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let ok = if e.is_nan() { a.is_nan() } else { (a - e).abs() <= atol + rtol * e.abs() };
        assert!(ok, "{what}[{i}]: got {a}, expected {e} (rtol {rtol}, atol {atol})");
    }
}

/// The instruction sets this CPU has, best first, from the CPU's own feature flags (not
/// from keel's detection, so that a detection bug cannot shrink what the tests run).
pub fn cpu_isas() -> Vec<Isa> {
    let mut isas = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            isas.push(Isa::Avx512);
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            isas.push(Isa::Avx2);
        }
    }
    isas.push(Isa::Portable);
    isas
}

/// Runs `f` once on every instruction set of the CPU, forced with `with_isa` (which must
/// accept it, and which the kernels must then see). Messages name `current_isa()`.
pub fn for_each_isa(f: impl Fn()) {
    for isa in cpu_isas() {
        with_isa(isa, || {
            assert_eq!(current_isa(), isa);
            f()
        })
        .unwrap();
    }
}

/// Runs `f` with `isa` forced on this thread ([`with_isa`], which must accept it).
#[track_caller]
pub fn on_isa<R>(isa: Isa, f: impl FnOnce() -> R) -> R {
    with_isa(isa, f).unwrap()
}

/// Runs `f` with `isa` forced on this thread for the test `test`, which exists to exercise a
/// path of that instruction set: `Some` of its result, or `None` on a CPU without it, where
/// the test is reported skipped by name ([`Isa::supported_or_skip`]) instead of passing
/// silently.
#[track_caller]
pub fn on_isa_or_skip<R>(test: &str, isa: Isa, f: impl FnOnce() -> R) -> Option<R> {
    isa.supported_or_skip(test).then(|| on_isa(isa, f))
}

/// Lengths at and above the parallel threshold (`MIN_PARALLEL_ELEMENTS` = 65536), with
/// tails of every kind (below 8, between 8 and 16): element-wise passes over them split
/// across a pool of two threads (see [`assert_split`]).
pub fn parallel_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        proptest::sample::select(vec![65536usize, 65537, 65536 + 13, 65536 + 16 * 1000 + 3]),
        65536usize..140_000
    ]
}

/// `(rows, cols)` of a row-wise pass (softmax, cross-entropy) that splits across a pool of two
/// threads: columns from [`edge_size`] up to 130, and enough rows (up to 600 more) that the
/// matrix holds at least `MIN_PARALLEL_ELEMENTS` values.
pub fn parallel_matrix() -> impl Strategy<Value = (usize, usize)> {
    (edge_size(130), 0usize..600)
        .prop_map(|(cols, extra)| (MIN_PARALLEL_ELEMENTS.div_ceil(cols) + extra, cols))
}

/// Asserts that a pass over `len` floats called on this thread's pool is cut into several
/// chunks ([`chunk_len`]), so that a test of the multi-threaded path reaches it.
#[track_caller]
pub fn assert_split(len: usize) {
    let threads = current_num_threads();
    assert!(
        chunk_len(len, 1) < len,
        "{len} floats run whole on {threads} thread(s): the split is not reached"
    );
}

/// Magnitudes of the random inputs: the usual range, saturation, and the ±1e4 extreme.
pub fn magnitude() -> impl Strategy<Value = f32> {
    proptest::sample::select(vec![1.0f32, 8.0, 30.0, 100.0, 1e4])
}

/// A rayon pool of two threads.
pub fn two_threads() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap()
}

/// `len` NaNs: an output buffer whose old contents must not survive.
pub fn nan_vec(len: usize) -> Vec<f32> {
    vec![f32::NAN; len]
}

/// The logistic function in f64.
pub fn sigmoid64(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// `ln Σ e^{x}` of one row in f64.
pub fn lse64(x: &[f64]) -> f64 {
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// Central difference of `f` at every coordinate of `x` (f64, step `h`).
pub fn numeric_grad(x: &[f32], h: f64, f: impl Fn(&[f64]) -> f64) -> Vec<f32> {
    let mut xd: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    (0..x.len())
        .map(|i| {
            let v = xd[i];
            xd[i] = v + h;
            let plus = f(&xd);
            xd[i] = v - h;
            let minus = f(&xd);
            xd[i] = v;
            ((plus - minus) / (2.0 * h)) as f32
        })
        .collect()
}

/// Asserts a length error naming `what`.
#[track_caller]
pub fn assert_length_error<T: std::fmt::Debug>(r: keel_kernels::Result<T>, what: &str) {
    match r {
        Err(e @ KernelError::Length { .. }) => {
            assert!(e.to_string().contains(what), "{e} does not name {what}")
        }
        other => panic!("expected a length error naming {what}, got {other:?}"),
    }
}

#[track_caller]
pub fn assert_error<T: std::fmt::Debug>(r: keel_kernels::Result<T>, shape: bool, what: &str) {
    match r {
        Err(e @ KernelError::Shape { .. }) if shape => assert!(e.to_string().contains(what), "{e}"),
        Err(e @ KernelError::Argument { .. }) if !shape => assert!(e.to_string().contains(what), "{e}"),
        other => panic!(
            "expected a {} error naming {what}, got {other:?}",
            if shape { "shape" } else { "argument" }
        ),
    }
}

/// Error of `got` in units of the f32 ulp at `exact` (ulps of `f32::MIN_POSITIVE` below it).
pub fn ulp_error(got: f32, exact: f64) -> f64 {
    let e = (exact as f32).abs().max(f32::MIN_POSITIVE);
    let ulp = f64::from(f32::from_bits(e.to_bits() + 1) - e);
    (f64::from(got) - exact).abs() / ulp
}

/// A dense sweep where the results are normal floats, plus random points.
pub fn accuracy_points(lo: f32, hi: f32) -> Vec<f32> {
    let n = 200_001;
    let mut x: Vec<f32> = (0..n).map(|i| lo + (hi - lo) * i as f32 / (n - 1) as f32).collect();
    x.extend(uniform(100_000, 7, lo, hi));
    x.extend(uniform(100_000, 8, -1e-3, 1e-3));
    x
}

pub fn max_ulp(x: &[f32], got: &[f32], exact: impl Fn(f64) -> f64) -> f64 {
    x.iter().zip(got).map(|(&x, &g)| ulp_error(g, exact(f64::from(x)))).fold(0.0, f64::max)
}
