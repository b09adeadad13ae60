//! Activation kernels, on every instruction set the CPU has (forced with
//! `isa::with_isa`; `every_instruction_set_of_the_cpu_is_tested` fails if keel's detection
//! misses one the CPU reports): parity of the fast paths with the scalar references (serial
//! and parallel lengths, both signs, magnitudes up to 1e4), measured accuracy of the vector
//! exp/sigmoid/tanh against f64, every backward against central differences in f64,
//! stability at ±1e4, NaN propagation, NaN pre-filled outputs and every input check.

mod common;

use common::{
    accuracy_points, assert_close, assert_error, assert_length_error, assert_split, cpu_isas, edge_size,
    for_each_isa, lse64, magnitude, max_ulp, nan_vec, numeric_grad, parallel_len, parallel_matrix, sigmoid64,
    two_threads, ulp_error, uniform,
};
use keel_kernels::activation::{self as act, reference};
use keel_kernels::isa::Isa;
use keel_kernels::isa::{current_isa, with_isa};
use keel_kernels::loss;
use keel_kernels::KernelError;
use proptest::prelude::*;

/// keel's detection finds every instruction set the CPU has; `with_isa` rejects one it
/// lacks and restores the previous choice afterwards.
#[test]
fn every_instruction_set_of_the_cpu_is_tested() {
    assert_eq!(Isa::available(), cpu_isas());
    let before = current_isa();
    for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
        match with_isa(isa, current_isa) {
            Ok(seen) => assert!(cpu_isas().contains(&isa) && seen == isa, "{isa:?}"),
            Err(KernelError::Argument { what, .. }) => assert!(!cpu_isas().contains(&isa) && what == "isa"),
            Err(e) => panic!("{e}"),
        }
        assert_eq!(current_isa(), before);
    }
}

// ---------------------------------------------------------------------------------------
// f64 forward math for the derivative checks and the accuracy measurements.

fn leaky64(slope: f64, z: f64) -> f64 {
    if z > 0.0 {
        z
    } else {
        slope * z
    }
}

// ---------------------------------------------------------------------------------------
// Measured accuracy of the vector math against f64.

/// Measured on every instruction set (AVX-512F and AVX2 with FMA / portable without, x86-64
/// default build): exp 0.99 / 0.95 ulp; sigmoid 2.29 ulp (the same as libm's `1/(1 + e⁻ˣ)`,
/// the error is the formula's); tanh 1.27 ulp (libm 2.05 by this measure, which counts in
/// the ulp above the exact value); softplus (the BCE term, exp then ln_1p) 2.29 ulp.
/// Asserted with margin for other targets.
#[test]
fn vector_math_accuracy_against_f64() {
    for_each_isa(vector_math_accuracy_against_f64_on_isa);
}

fn vector_math_accuracy_against_f64_on_isa() {
    // exp, read through log_softmax_backward: rows [x, 0] with dy = [0, -1] give
    // dx[0] = 0 - e^{x}·(-1) = e^{x} exactly.
    let x = accuracy_points(-86.9, 88.0);
    let rows = x.len();
    let y: Vec<f32> = x.iter().flat_map(|&v| [v, 0.0]).collect();
    let dy: Vec<f32> = (0..rows).flat_map(|_| [0.0, -1.0]).collect();
    let mut dx = nan_vec(2 * rows);
    act::log_softmax_backward(rows, 2, &y, &dy, &mut dx).unwrap();
    let exp_got: Vec<f32> = dx.iter().step_by(2).cloned().collect();
    let exp_ulp = max_ulp(&x, &exp_got, f64::exp);

    let x = accuracy_points(-87.0, 87.0);
    let mut got = nan_vec(x.len());
    act::sigmoid_forward(&x, &mut got).unwrap();
    let sigmoid_ulp = max_ulp(&x, &got, sigmoid64);
    let mut libm = nan_vec(x.len());
    reference::sigmoid_forward(&x, &mut libm);
    let sigmoid_libm_ulp = max_ulp(&x, &libm, sigmoid64);

    let x = accuracy_points(-12.0, 12.0);
    let mut got = nan_vec(x.len());
    act::tanh_forward(&x, &mut got).unwrap();
    let tanh_ulp = max_ulp(&x, &got, f64::tanh);
    reference::tanh_forward(&x, &mut libm[..x.len()]);
    let tanh_libm_ulp = max_ulp(&x, &libm[..x.len()], f64::tanh);

    // softplus(z) = max(z, 0) + ln(1 + e^{-|z|}) (exp and ln_1p together), read through a
    // one-element BCE loss with target 0, whose mean is that one term.
    let z = accuracy_points(-30.0, 30.0);
    let softplus_ulp = z
        .iter()
        .step_by(7)
        .map(|&z| {
            let loss = loss::bce_with_logits_forward(&[z], &[0.0], &mut [0.0]).unwrap();
            let z = f64::from(z);
            ulp_error(loss, z.max(0.0) + (-z.abs()).exp().ln_1p())
        })
        .fold(0.0, f64::max);

    println!(
        "{:?}: max error vs f64: exp {exp_ulp:.2} ulp, sigmoid {sigmoid_ulp:.2} ulp (libm {sigmoid_libm_ulp:.2}), \
         tanh {tanh_ulp:.2} ulp (libm {tanh_libm_ulp:.2}), softplus {softplus_ulp:.2} ulp",
        current_isa()
    );
    assert!(softplus_ulp <= 3.0, "softplus: {softplus_ulp} ulp");
    assert!(exp_ulp <= 2.0, "exp: {exp_ulp} ulp");
    assert!(sigmoid_ulp <= 3.0, "sigmoid: {sigmoid_ulp} ulp");
    assert!(tanh_ulp <= 3.0, "tanh: {tanh_ulp} ulp");
}

// ---------------------------------------------------------------------------------------
// Element-wise parity with the references.

/// The element-wise kernels, fast and reference, by name.
type Forward = fn(&[f32], &mut [f32]) -> keel_kernels::Result<()>;
type ForwardRef = fn(&[f32], &mut [f32]);
type Backward = fn(&[f32], &[f32], &mut [f32]) -> keel_kernels::Result<()>;
type BackwardRef = fn(&[f32], &[f32], &mut [f32]);

const SLOPE: f32 = 0.01;

fn leaky_forward(x: &[f32], y: &mut [f32]) -> keel_kernels::Result<()> {
    act::leaky_relu_forward(SLOPE, x, y)
}
fn leaky_forward_ref(x: &[f32], y: &mut [f32]) {
    reference::leaky_relu_forward(SLOPE, x, y)
}
fn leaky_inplace(x: &mut [f32]) {
    act::leaky_relu_forward_inplace(SLOPE, x).unwrap()
}
fn leaky_backward(y: &[f32], dy: &[f32], dx: &mut [f32]) -> keel_kernels::Result<()> {
    act::leaky_relu_backward(SLOPE, y, dy, dx)
}
fn leaky_backward_ref(y: &[f32], dy: &[f32], dx: &mut [f32]) {
    reference::leaky_relu_backward(SLOPE, y, dy, dx)
}

struct Elementwise {
    name: &'static str,
    forward: Forward,
    forward_ref: ForwardRef,
    inplace: fn(&mut [f32]),
    backward: Backward,
    backward_ref: BackwardRef,
    /// Relative tolerance of forward vs libm: the vector exp/tanh are within 2 ulp and libm
    /// within 1 (see `vector_math_accuracy_against_f64`), so 4 ulp ≈ 5e-7 apart at most; the
    /// ReLUs are exact.
    rtol: f32,
}

const ELEMENTWISE: [Elementwise; 4] = [
    Elementwise {
        name: "sigmoid",
        forward: act::sigmoid_forward,
        forward_ref: reference::sigmoid_forward,
        inplace: act::sigmoid_forward_inplace,
        backward: act::sigmoid_backward,
        backward_ref: reference::sigmoid_backward,
        rtol: 6e-7,
    },
    Elementwise {
        name: "tanh",
        forward: act::tanh_forward,
        forward_ref: reference::tanh_forward,
        inplace: act::tanh_forward_inplace,
        backward: act::tanh_backward,
        backward_ref: reference::tanh_backward,
        rtol: 6e-7,
    },
    Elementwise {
        name: "relu",
        forward: act::relu_forward,
        forward_ref: reference::relu_forward,
        inplace: act::relu_forward_inplace,
        backward: act::relu_backward,
        backward_ref: reference::relu_backward,
        rtol: 0.0,
    },
    Elementwise {
        name: "leaky_relu",
        forward: leaky_forward,
        forward_ref: leaky_forward_ref,
        inplace: leaky_inplace,
        backward: leaky_backward,
        backward_ref: leaky_backward_ref,
        rtol: 0.0,
    },
];

/// Forward, in-place forward and backward of every element-wise kernel against the
/// references, outputs pre-filled with NaN (which must not survive).
fn check_elementwise(len: usize, seed: u64, mag: f32) {
    let x = uniform(len, seed, -mag, mag);
    let dy = uniform(len, seed ^ 0xD1, -1.0, 1.0);
    for k in &ELEMENTWISE {
        let mut y = nan_vec(len);
        (k.forward)(&x, &mut y).unwrap();
        let mut y_ref = nan_vec(len);
        (k.forward_ref)(&x, &mut y_ref);
        // atol: below 1e-30 the libm result is subnormal where the vector exp flushes to 0.
        assert_close(
            &format!("{} forward on {:?} (len {len}, mag {mag})", k.name, current_isa()),
            &y,
            &y_ref,
            k.rtol,
            1e-30,
        );

        // In place runs the same vector code: bit-identical.
        let mut inplace = x.clone();
        (k.inplace)(&mut inplace);
        assert!(
            inplace.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{} in place differs from out of place",
            k.name
        );

        // Backward on the same saved y: identical arithmetic, so only the last bit may move.
        let mut dx = nan_vec(len);
        (k.backward)(&y, &dy, &mut dx).unwrap();
        let mut dx_ref = nan_vec(len);
        (k.backward_ref)(&y, &dy, &mut dx_ref);
        assert_close(
            &format!("{} backward on {:?} (len {len})", k.name, current_isa()),
            &dx,
            &dx_ref,
            2e-7,
            1e-30,
        );
        // Not vacuous: below saturation a fair share of the gradients is non-zero.
        if mag <= 8.0 && len >= 64 {
            assert!(dx.iter().filter(|v| **v != 0.0).count() >= len / 4, "{}: mostly zero dx", k.name);
        }
    }
}

/// The sums of residual branches against the references: `a + b` and `max(a + b, 0)` are
/// exact in f32 on every path (one rounding), so bit for bit; `y += x` equals `add_forward`;
/// a NaN input stays NaN.
fn check_sums(len: usize, seed: u64, mag: f32) {
    let a = uniform(len, seed, -mag, mag);
    let mut b = uniform(len, seed ^ 0x5A, -mag, mag);
    if len > 3 {
        b[len / 2] = f32::NAN;
    }
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let isa = current_isa();
    for (name, fast, slow) in [
        (
            "add",
            act::add_forward as fn(&[f32], &[f32], &mut [f32]) -> keel_kernels::Result<()>,
            reference::add_forward as fn(&[f32], &[f32], &mut [f32]),
        ),
        ("add_relu", act::add_relu_forward, reference::add_relu_forward),
    ] {
        let (mut y, mut y_ref) = (nan_vec(len), nan_vec(len));
        fast(&a, &b, &mut y).unwrap();
        slow(&a, &b, &mut y_ref);
        assert_eq!(bits(&y), bits(&y_ref), "{name} on {isa:?} (len {len})");
    }
    let mut sum = a.clone();
    act::add_inplace(&mut sum, &b).unwrap();
    let mut expected = nan_vec(len);
    reference::add_forward(&a, &b, &mut expected);
    assert_eq!(bits(&sum), bits(&expected), "add_inplace on {isa:?} (len {len})");
    if len > 3 {
        assert!(sum[len / 2].is_nan());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn sums_match_reference(len in edge_size(300), seed in any::<u64>(), mag in magnitude()) {
        for_each_isa(|| check_sums(len, seed, mag));
    }

    #[test]
    fn elementwise_match_reference(len in edge_size(300), seed in any::<u64>(), mag in magnitude()) {
        for_each_isa(|| check_elementwise(len, seed, mag));
    }

    #[test]
    fn softmax_family_match_reference(
        rows in edge_size(40), cols in edge_size(130), seed in any::<u64>(), mag in magnitude(),
    ) {
        for_each_isa(|| check_rowwise(rows, cols, seed, mag));
    }
}

// On two threads, sizes that split (asserted): enough cases that a race in the chunking (a
// chunk written twice or not at all, a sum taken before a chunk finished) shows.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sums_match_reference_parallel(len in parallel_len(), seed in any::<u64>()) {
        two_threads().install(|| {
            assert_split(len);
            for_each_isa(|| check_sums(len, seed, 30.0))
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn elementwise_match_reference_parallel(len in parallel_len(), seed in any::<u64>(), mag in magnitude()) {
        two_threads().install(|| {
            assert_split(len);
            for_each_isa(|| check_elementwise(len, seed, mag))
        });
    }

    #[test]
    fn softmax_family_match_reference_parallel((rows, cols) in parallel_matrix(), seed in any::<u64>()) {
        two_threads().install(|| {
            assert_split(rows * cols);
            for_each_isa(|| check_rowwise(rows, cols, seed, 30.0))
        });
    }
}

/// Element-wise passes split into chunks that are multiples of the vector width, row-wise
/// ones into whole rows (groups of 8 narrow rows), so every thread count gives the same bits.
#[test]
fn outputs_same_bits_on_any_thread_count() {
    let x = uniform(200_003, 3, -20.0, 20.0);
    let run = |isa: Isa, threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            with_isa(isa, || {
                let mut y = nan_vec(x.len());
                act::tanh_forward(&x, &mut y).unwrap();
                // Narrow (10 columns, transposed path) and wide rows, with a remainder of rows.
                let mut narrow = nan_vec(19_997 * 10);
                act::softmax_forward(19_997, 10, &x[..19_997 * 10], &mut narrow).unwrap();
                let mut wide = nan_vec(2_003 * 99);
                act::softmax_forward(2_003, 99, &x[..2_003 * 99], &mut wide).unwrap();
                y.extend(narrow);
                y.extend(wide);
                y
            })
        })
        .unwrap()
    };
    for isa in cpu_isas() {
        let one = run(isa, 1);
        for threads in [2, 3] {
            let other = run(isa, threads);
            assert!(one.iter().zip(other).all(|(a, b)| a.to_bits() == b.to_bits()), "{isa:?} T{threads}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Row-wise parity: softmax and log-softmax.

fn check_rowwise(rows: usize, cols: usize, seed: u64, mag: f32) {
    let len = rows * cols;
    let x = uniform(len, seed, -mag, mag);
    let dy = uniform(len, seed ^ 0xD1, -1.0, 1.0);

    // Softmax: exp within 2 ulp of libm, the sum in another order; atol for the entries the
    // vector exp flushes to 0 where libm is subnormal.
    let mut y = nan_vec(len);
    act::softmax_forward(rows, cols, &x, &mut y).unwrap();
    let mut y_ref = nan_vec(len);
    reference::softmax_forward(cols, &x, &mut y_ref);
    assert_close(&format!("softmax on {:?}", current_isa()), &y, &y_ref, 2e-6, 1e-30);

    // Log-softmax: (x - max) is exact in both; ln Σ differs by an ulp of ln Σ.
    let mut ly = nan_vec(len);
    act::log_softmax_forward(rows, cols, &x, &mut ly).unwrap();
    let mut ly_ref = nan_vec(len);
    reference::log_softmax_forward(cols, &x, &mut ly_ref);
    assert_close(&format!("log_softmax on {:?}", current_isa()), &ly, &ly_ref, 1e-6, 2e-6);

    // Backward: Σ dy·y summed in lanes vs in order (|dy| <= 1, y <= 1: error ~ cols·eps).
    let mut dx = nan_vec(len);
    act::softmax_backward(rows, cols, &y, &dy, &mut dx).unwrap();
    let mut dx_ref = nan_vec(len);
    reference::softmax_backward(cols, &y, &dy, &mut dx_ref);
    assert_close(&format!("softmax_backward on {:?}", current_isa()), &dx, &dx_ref, 1e-5, 1e-6);
    act::log_softmax_backward(rows, cols, &ly, &dy, &mut dx).unwrap();
    reference::log_softmax_backward(cols, &ly, &dy, &mut dx_ref);
    // Σ dy has |Σ dy| up to cols; its rounding (~cols·eps) scales e^{y}.
    assert_close(
        &format!("log_softmax_backward on {:?}", current_isa()),
        &dx,
        &dx_ref,
        1e-5,
        1e-6 * cols as f32,
    );
}

// ---------------------------------------------------------------------------------------
// Derivatives against central differences in f64.

/// Backward of every element-wise kernel vs `dy·f'(z)` with `f'` by central differences of
/// the f64 forward. Tolerance: the kernels take `f'` from the f32 output `y`, so `1 - y` has
/// an absolute error of ~6e-8 (y near 1): atol 2e-7 on `|dy| <= 1`, rtol 1e-5.
#[test]
fn elementwise_backward_matches_central_differences() {
    for_each_isa(elementwise_backward_matches_central_differences_on_isa);
}

fn elementwise_backward_matches_central_differences_on_isa() {
    let mut z = uniform(1001, 21, -9.0, 9.0);
    // ReLU kinks: keep every z at least 1e-3 away from 0, well beyond the step.
    z.iter_mut().filter(|v| v.abs() < 1e-3).for_each(|v| *v = 0.5);
    let dy = uniform(z.len(), 22, -1.0, 1.0);
    let h = 1e-5;
    let cases: [(&str, &dyn Fn(f64) -> f64); 4] = [
        ("sigmoid", &sigmoid64),
        ("tanh", &f64::tanh),
        ("relu", &|z| leaky64(0.0, z)),
        ("leaky_relu", &|z| leaky64(0.01, z)),
    ];
    for (k, (name, f)) in ELEMENTWISE.iter().zip(cases) {
        assert_eq!(k.name, name);
        let mut y = nan_vec(z.len());
        (k.forward)(&z, &mut y).unwrap();
        let mut dx = nan_vec(z.len());
        (k.backward)(&y, &dy, &mut dx).unwrap();
        let expected: Vec<f32> = z
            .iter()
            .zip(&dy)
            .map(|(&z, &dy)| {
                let z = f64::from(z);
                (f64::from(dy) * (f(z + h) - f(z - h)) / (2.0 * h)) as f32
            })
            .collect();
        assert_close(&format!("{name} backward vs central differences"), &dx, &expected, 1e-5, 2e-7);
    }
}

/// Softmax and log-softmax backward vs the gradient of `L = Σ dy·f(x)` in f64.
#[test]
fn softmax_backward_matches_central_differences() {
    for_each_isa(softmax_backward_matches_central_differences_on_isa);
}

fn softmax_backward_matches_central_differences_on_isa() {
    let (rows, cols) = (5, 13);
    let x = uniform(rows * cols, 31, -6.0, 6.0);
    let dy = uniform(rows * cols, 32, -1.0, 1.0);
    let dyd: Vec<f64> = dy.iter().map(|&v| f64::from(v)).collect();
    let softmax64 = |x: &[f64], log: bool| -> f64 {
        x.chunks(cols)
            .zip(dyd.chunks(cols))
            .map(|(x, dy)| {
                let lse = lse64(x);
                x.iter().zip(dy).map(|(&v, &d)| d * if log { v - lse } else { (v - lse).exp() }).sum::<f64>()
            })
            .sum()
    };
    for log in [false, true] {
        let mut y = nan_vec(x.len());
        let mut dx = nan_vec(x.len());
        if log {
            act::log_softmax_forward(rows, cols, &x, &mut y).unwrap();
            act::log_softmax_backward(rows, cols, &y, &dy, &mut dx).unwrap();
        } else {
            act::softmax_forward(rows, cols, &x, &mut y).unwrap();
            act::softmax_backward(rows, cols, &y, &dy, &mut dx).unwrap();
        }
        let expected = numeric_grad(&x, 1e-6, |x| softmax64(x, log));
        // f32 y and Σ in the kernel vs f64 differences: ~1e-6 absolute on |dx| <= ~2.
        assert_close(&format!("log={log} backward vs central differences"), &dx, &expected, 1e-4, 2e-6);
    }
}

// ---------------------------------------------------------------------------------------
// Stability at ±1e4, NaN propagation, zero sizes.

#[test]
fn stable_at_large_magnitudes() {
    for_each_isa(stable_at_large_magnitudes_on_isa);
}

fn stable_at_large_magnitudes_on_isa() {
    let x = [1e4f32, -1e4, 100.0, -100.0, 89.0, -89.0, 0.0, -0.0, 1e-30];
    let mut y = nan_vec(x.len());
    act::sigmoid_forward(&x, &mut y).unwrap();
    assert_eq!(&y[..4], &[1.0, 0.0, 1.0, 0.0]);
    assert!(y.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)), "{y:?}");
    assert_eq!(y[6], 0.5);
    act::tanh_forward(&x, &mut y).unwrap();
    assert_eq!(&y[..6], &[1.0, -1.0, 1.0, -1.0, 1.0, -1.0]);
    assert_eq!((y[6], y[7].to_bits(), y[8]), (0.0, (-0.0f32).to_bits(), 1e-30));
    act::relu_forward(&x, &mut y).unwrap();
    assert_eq!(&y[..2], &[1e4, 0.0]);
    act::leaky_relu_forward(0.01, &x, &mut y).unwrap();
    assert_eq!(&y[..2], &[1e4, -100.0]);

    // Backward on saturated outputs is finite (and 0 where the function is flat).
    let dy = [1.0f32; 9];
    let mut dx = nan_vec(9);
    let mut s = nan_vec(9);
    act::sigmoid_forward(&x, &mut s).unwrap();
    act::sigmoid_backward(&s, &dy, &mut dx).unwrap();
    assert_eq!(&dx[..2], &[0.0, 0.0]);
    assert!(dx.iter().all(|v| v.is_finite()));

    // Softmax of [1e4, -1e4]: exactly one-hot; log-softmax: [0, -2e4].
    let x2 = [1e4f32, -1e4, -1e4, 1e4];
    let mut y2 = nan_vec(4);
    act::softmax_forward(2, 2, &x2, &mut y2).unwrap();
    assert_eq!(y2, [1.0, 0.0, 0.0, 1.0]);
    act::log_softmax_forward(2, 2, &x2, &mut y2).unwrap();
    assert_eq!(y2, [0.0, -2e4, -2e4, 0.0]);
    let mut dx2 = nan_vec(4);
    act::log_softmax_backward(2, 2, &y2, &[1.0, -1.0, 0.5, 0.5], &mut dx2).unwrap();
    assert!(dx2.iter().all(|v| v.is_finite()), "{dx2:?}");
}

#[test]
fn nan_propagates() {
    for_each_isa(nan_propagates_on_isa);
}

fn nan_propagates_on_isa() {
    let mut x = uniform(37, 61, -3.0, 3.0);
    x[20] = f32::NAN;
    let mut y = vec![0.0; 37];
    for k in &ELEMENTWISE {
        (k.forward)(&x, &mut y).unwrap();
        assert!(y[20].is_nan(), "{} forward", k.name);
        assert!(y.iter().enumerate().all(|(i, v)| i == 20 || !v.is_nan()), "{}: NaN spread", k.name);
        let mut dx = vec![0.0; 37];
        (k.backward)(&y, &[1.0; 37], &mut dx).unwrap();
        assert!(dx[20].is_nan(), "{} backward", k.name);
        let mut inplace = x.clone();
        (k.inplace)(&mut inplace);
        assert!(inplace[20].is_nan(), "{} in place", k.name);
    }
    // Softmax: the row holding NaN becomes NaN, the other row is untouched.
    let (rows, cols) = (2, 37);
    let mut x2 = uniform(rows * cols, 62, -3.0, 3.0);
    x2[40] = f32::NAN;
    let mut y2 = vec![0.0; rows * cols];
    act::softmax_forward(rows, cols, &x2, &mut y2).unwrap();
    assert!(y2[..cols].iter().all(|v| v.is_finite()) && y2[cols..].iter().all(|v| v.is_nan()));
    act::log_softmax_forward(rows, cols, &x2, &mut y2).unwrap();
    assert!(y2[..cols].iter().all(|v| v.is_finite()) && y2[cols..].iter().all(|v| v.is_nan()));
}

/// `-inf` logits are a mask: they get probability 0, the rest a proper softmax.
#[test]
fn softmax_masks_negative_infinity() {
    for_each_isa(softmax_masks_negative_infinity_on_isa);
}

fn softmax_masks_negative_infinity_on_isa() {
    let x = [f32::NEG_INFINITY, 1.0, 1.0, f32::NEG_INFINITY];
    let mut y = nan_vec(4);
    act::softmax_forward(1, 4, &x, &mut y).unwrap();
    assert_eq!(y, [0.0, 0.5, 0.5, 0.0]);
}

#[test]
fn zero_sizes_are_no_ops() {
    for_each_isa(zero_sizes_are_no_ops_on_isa);
}

fn zero_sizes_are_no_ops_on_isa() {
    let mut empty: [f32; 0] = [];
    for k in &ELEMENTWISE {
        (k.forward)(&[], &mut empty).unwrap();
        (k.backward)(&[], &[], &mut empty).unwrap();
        (k.inplace)(&mut empty);
    }
    act::softmax_forward(0, 5, &[], &mut empty).unwrap();
    act::softmax_forward(5, 0, &[], &mut empty).unwrap();
    act::log_softmax_forward(0, 5, &[], &mut empty).unwrap();
    act::softmax_backward(3, 0, &[], &[], &mut empty).unwrap();
    act::log_softmax_backward(0, 3, &[], &[], &mut empty).unwrap();
}

// ---------------------------------------------------------------------------------------
// Every input check.

#[test]
fn elementwise_bad_input() {
    let x = [1.0f32, -2.0, 3.0];
    let mut short = [0.0f32; 2];
    for k in &ELEMENTWISE {
        assert_length_error((k.forward)(&x, &mut short), "y");
        assert_length_error((k.backward)(&x, &[1.0; 2], &mut [0.0; 3]), "dy");
        assert_length_error((k.backward)(&x, &[1.0; 3], &mut short), "dx");
    }
    for sum in [act::add_forward, act::add_relu_forward] {
        assert_length_error(sum(&x, &[1.0; 2], &mut [0.0; 3]), "b");
        assert_length_error(sum(&x, &x, &mut short), "y");
    }
    assert_length_error(act::add_inplace(&mut short, &x), "x");
    let mut y = [0.0f32; 3];
    for slope in [-0.1f32, f32::NAN, f32::INFINITY] {
        assert_error(act::leaky_relu_forward(slope, &x, &mut y), false, "slope");
        assert_error(act::leaky_relu_forward_inplace(slope, &mut y), false, "slope");
        assert_error(act::leaky_relu_backward(slope, &x, &x, &mut y), false, "slope");
    }
    // slope = 0 is ReLU and accepted.
    act::leaky_relu_backward(0.0, &x, &x, &mut y).unwrap();
}

#[test]
fn softmax_bad_input() {
    let x = [0.5f32; 6];
    let mut y = [0.0f32; 6];
    assert_length_error(act::softmax_forward(2, 4, &x, &mut y), "x (rows, cols) = (2, 4)");
    assert_length_error(act::softmax_forward(2, 3, &x, &mut y[..5]), "y (rows, cols)");
    assert_length_error(act::log_softmax_forward(3, 3, &x, &mut y), "x (rows, cols)");
    assert_length_error(act::log_softmax_forward(2, 3, &x, &mut y[..4]), "y (rows, cols)");
    assert_length_error(act::softmax_backward(2, 3, &x[..5], &x, &mut y), "y (rows, cols)");
    assert_length_error(act::softmax_backward(2, 3, &x, &x[..5], &mut y), "dy (rows, cols)");
    assert_length_error(act::softmax_backward(2, 3, &x, &x, &mut y[..5]), "dx (rows, cols)");
    assert_length_error(act::log_softmax_backward(2, 3, &x[..5], &x, &mut y), "y (rows, cols)");
    assert_length_error(act::log_softmax_backward(2, 3, &x, &x[..5], &mut y), "dy (rows, cols)");
    assert_length_error(act::log_softmax_backward(2, 3, &x, &x, &mut y[..5]), "dx (rows, cols)");
    assert_error(act::softmax_forward(usize::MAX, 2, &x, &mut y), true, "(rows, cols)");
}
