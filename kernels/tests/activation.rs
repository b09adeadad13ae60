//! Activation and loss kernels, on every instruction set the CPU has (forced with
//! `isa::with_isa`; `every_instruction_set_of_the_cpu_is_tested` fails if keel's detection
//! misses one the CPU reports): parity of the fast paths with the scalar references (serial
//! and parallel lengths, both signs, magnitudes up to 1e4), measured accuracy of the vector
//! exp/sigmoid/tanh against f64, every backward against central differences in f64,
//! stability at ±1e4, NaN propagation, NaN pre-filled outputs and every input check.

mod common;

use common::{assert_close, cpu_isas, edge_size, for_each_isa, uniform};
use keel_kernels::activation::{self as act, reference};
use keel_kernels::isa::Isa;
use keel_kernels::isa::{current_isa, with_isa};
use keel_kernels::loss;
use keel_kernels::loss::reference as loss_reference;
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

/// Lengths around and above the parallel threshold (`MIN_PARALLEL_ELEMENTS` = 65536), with
/// tails of every kind (below 8, between 8 and 16).
fn parallel_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        proptest::sample::select(vec![65535usize, 65536, 65537, 65536 + 13, 65536 + 16 * 1000 + 3]),
        65536usize..140_000
    ]
}

/// Magnitudes of the random inputs: the usual range, saturation, and the ±1e4 extreme.
fn magnitude() -> impl Strategy<Value = f32> {
    proptest::sample::select(vec![1.0f32, 8.0, 30.0, 100.0, 1e4])
}

fn two_threads() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap()
}

fn nan_vec(len: usize) -> Vec<f32> {
    vec![f32::NAN; len]
}

// ---------------------------------------------------------------------------------------
// f64 forward math for the derivative checks and the accuracy measurements.

fn sigmoid64(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn leaky64(slope: f64, z: f64) -> f64 {
    if z > 0.0 {
        z
    } else {
        slope * z
    }
}

/// `ln Σ e^{x}` of one row in f64.
fn lse64(x: &[f64]) -> f64 {
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// Central difference of `f` at every coordinate of `x` (f64, step `h`).
fn numeric_grad(x: &[f32], h: f64, f: impl Fn(&[f64]) -> f64) -> Vec<f32> {
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

/// Error of `got` in units of the f32 ulp at `exact` (ulps of `f32::MIN_POSITIVE` below it).
fn ulp_error(got: f32, exact: f64) -> f64 {
    let e = (exact as f32).abs().max(f32::MIN_POSITIVE);
    let ulp = f64::from(f32::from_bits(e.to_bits() + 1) - e);
    (f64::from(got) - exact).abs() / ulp
}

// ---------------------------------------------------------------------------------------
// Measured accuracy of the vector math against f64.

/// A dense sweep where the results are normal floats, plus random points.
fn accuracy_points(lo: f32, hi: f32) -> Vec<f32> {
    let n = 200_001;
    let mut x: Vec<f32> = (0..n).map(|i| lo + (hi - lo) * i as f32 / (n - 1) as f32).collect();
    x.extend(uniform(100_000, 7, lo, hi));
    x.extend(uniform(100_000, 8, -1e-3, 1e-3));
    x
}

fn max_ulp(x: &[f32], got: &[f32], exact: impl Fn(f64) -> f64) -> f64 {
    x.iter().zip(got).map(|(&x, &g)| ulp_error(g, exact(f64::from(x)))).fold(0.0, f64::max)
}

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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn elementwise_match_reference_parallel(len in parallel_len(), seed in any::<u64>(), mag in magnitude()) {
        two_threads().install(|| for_each_isa(|| check_elementwise(len, seed, mag)));
    }

    #[test]
    fn softmax_family_match_reference_parallel(rows in 600usize..1200, cols in edge_size(130), seed in any::<u64>()) {
        two_threads().install(|| for_each_isa(|| check_rowwise(rows, cols, seed, 30.0)));
    }

    #[test]
    fn bce_matches_reference_parallel(len in parallel_len(), seed in any::<u64>(), mag in magnitude()) {
        two_threads().install(|| for_each_isa(|| check_bce(len, seed, mag)));
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

/// MSE on every instruction set (the `mse` tests run the selected one): the residual and
/// gradient are one f32 subtraction / product each, as in the reference (exact); the loss
/// sums in f32 lanes over blocks of 1024 before f64, within ~1024·2⁻²⁴ relative of the
/// all-f64 reference (1e-4 is ample). Serial lengths with every kind of tail, and the
/// parallel path on two threads.
#[test]
fn mse_matches_reference_on_every_isa() {
    for_each_isa(|| {
        let isa = current_isa();
        for (i, len) in
            [1usize, 7, 13, 16, 17, 31, 33, 64, 65, 1023, 1025, 65537, 150_001].into_iter().enumerate()
        {
            let pred = uniform(len, 90 + i as u64, -3.0, 3.0);
            let target = uniform(len, 190 + i as u64, -3.0, 3.0);
            let (mut diff, mut diff_ref) = (nan_vec(len), nan_vec(len));
            let loss = two_threads()
                .install(|| with_isa(isa, || loss::mse_forward(&pred, &target, &mut diff)))
                .unwrap()
                .unwrap();
            let loss_ref = loss_reference::mse_forward(&pred, &target, &mut diff_ref);
            assert_close(&format!("mse diff len {len} on {isa:?}"), &diff, &diff_ref, 0.0, 0.0);
            assert_close(&format!("mse loss len {len} on {isa:?}"), &[loss], &[loss_ref], 1e-4, 0.0);
            let (mut dpred, mut dpred_ref) = (nan_vec(len), nan_vec(len));
            loss::mse_backward(&diff, &mut dpred).unwrap();
            loss_reference::mse_backward(&diff_ref, &mut dpred_ref);
            assert_close(&format!("mse dpred len {len} on {isa:?}"), &dpred, &dpred_ref, 0.0, 0.0);
        }
    });
}

// ---------------------------------------------------------------------------------------
// Row-wise parity: softmax, log-softmax and the cross-entropies.

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

    // Cross-entropy with class indices: the loss of one row is (max - x_t) + ln Σ, the same
    // f32 operations as the reference apart from the exp and the sum order.
    let targets: Vec<u32> = uniform(rows, seed ^ 0x7A, 0.0, cols as f32).iter().map(|&t| t as u32).collect();
    let mut probs = nan_vec(len);
    let loss = loss::softmax_cross_entropy_forward(rows, cols, &x, &targets, &mut probs).unwrap();
    let mut probs_ref = nan_vec(len);
    let loss_ref = loss_reference::softmax_cross_entropy_forward(cols, &x, &targets, &mut probs_ref);
    assert_close(&format!("softmax_ce loss on {:?}", current_isa()), &[loss], &[loss_ref], 1e-5, 1e-6);
    assert_close(&format!("softmax_ce probs on {:?}", current_isa()), &probs, &probs_ref, 2e-6, 1e-30);
    let mut dlogits = nan_vec(len);
    loss::softmax_cross_entropy_backward(rows, cols, &probs, &targets, &mut dlogits).unwrap();
    let mut dlogits_ref = nan_vec(len);
    loss_reference::softmax_cross_entropy_backward(cols, &probs, &targets, &mut dlogits_ref);
    // p·(1/batch) vs p/batch: one rounding apart.
    assert_close(&format!("softmax_ce dlogits on {:?}", current_isa()), &dlogits, &dlogits_ref, 4e-7, 1e-30);

    // Probability targets: each row a random distribution.
    let mut soft = uniform(len, seed ^ 0x50F7, 0.0, 1.0);
    for row in soft.chunks_exact_mut(cols) {
        let s: f32 = row.iter().sum();
        row.iter_mut().for_each(|t| *t /= s);
    }
    let loss = loss::softmax_cross_entropy_soft_forward(rows, cols, &x, &soft, &mut probs).unwrap();
    let loss_ref = loss_reference::softmax_cross_entropy_soft_forward(cols, &x, &soft, &mut probs_ref);
    assert_close(&format!("softmax_ce_soft loss on {:?}", current_isa()), &[loss], &[loss_ref], 1e-5, 1e-6);
    loss::softmax_cross_entropy_soft_backward(rows, cols, &probs, &soft, &mut dlogits).unwrap();
    loss_reference::softmax_cross_entropy_soft_backward(cols, &probs, &soft, &mut dlogits_ref);
    // Σ t summed in lanes vs in order, times p, minus t: a few ulps of 1/batch.
    assert_close(
        &format!("softmax_ce_soft dlogits on {:?}", current_isa()),
        &dlogits,
        &dlogits_ref,
        1e-5,
        1e-6 / rows as f32,
    );
}

fn check_bce(len: usize, seed: u64, mag: f32) {
    let z = uniform(len, seed, -mag, mag);
    // Soft targets in [0, 1] exercise the z·y term beyond the 0/1 labels.
    let y = uniform(len, seed ^ 0xB, 0.0, 1.0);
    let mut p = nan_vec(len);
    let loss = loss::bce_with_logits_forward(&z, &y, &mut p).unwrap();
    let mut p_ref = nan_vec(len);
    let loss_ref = loss_reference::bce_with_logits_forward(&z, &y, &mut p_ref);
    // f32 block sums vs an f64 running sum: ~1e-6 relative for these lengths.
    assert_close(&format!("bce loss (len {len}, mag {mag})"), &[loss], &[loss_ref], 1e-5, 1e-7);
    // σ from e^{-|z|}: within 3 ulp of libm's 1/(1 + e^{-z}).
    assert_close("bce probs", &p, &p_ref, 6e-7, 1e-30);
    let mut dz = nan_vec(len);
    loss::bce_with_logits_backward(&p, &y, &mut dz).unwrap();
    let mut dz_ref = nan_vec(len);
    loss_reference::bce_with_logits_backward(&p, &y, &mut dz_ref);
    // (p - y)·(1/n) vs (p - y)/n: one rounding; atol for p - y cancelling.
    assert_close("bce dlogits", &dz, &dz_ref, 4e-7, 1e-30);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn bce_matches_reference(len in edge_size(300), seed in any::<u64>(), mag in magnitude()) {
        for_each_isa(|| check_bce(len, seed, mag));
    }
}

/// Losses sum the batch in a fixed tree: the same thread count gives the same bits, and
/// other counts agree to rounding.
#[test]
fn losses_deterministic_per_thread_count() {
    for_each_isa(losses_deterministic_on_isa);
}

fn losses_deterministic_on_isa() {
    let (batch, classes) = (700, 130);
    let x = uniform(batch * classes, 11, -10.0, 10.0);
    let targets: Vec<u32> = (0..batch as u32).map(|r| r * 7 % classes as u32).collect();
    let y = uniform(batch * classes, 12, 0.0, 1.0);
    let isa = current_isa();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            with_isa(isa, || {
                let mut probs = nan_vec(batch * classes);
                let ce =
                    loss::softmax_cross_entropy_forward(batch, classes, &x, &targets, &mut probs).unwrap();
                let bce = loss::bce_with_logits_forward(&x, &y, &mut probs).unwrap();
                (ce, bce)
            })
            .unwrap()
        })
    };
    for threads in [1, 2, 3] {
        let (a, b) = (run(threads), run(threads));
        assert_eq!((a.0.to_bits(), a.1.to_bits()), (b.0.to_bits(), b.1.to_bits()), "T{threads}");
        let one = run(1);
        assert_close("ce across threads", &[a.0], &[one.0], 1e-6, 0.0);
        assert_close("bce across threads", &[a.1], &[one.1], 1e-6, 0.0);
    }
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

/// Cross-entropy (class indices and probabilities) and BCE: `dlogits` from the saved probs
/// vs the gradient of the f64 mean loss.
#[test]
fn loss_backward_matches_central_differences() {
    for_each_isa(loss_backward_matches_central_differences_on_isa);
}

fn loss_backward_matches_central_differences_on_isa() {
    let (batch, classes) = (6, 11);
    let x = uniform(batch * classes, 41, -8.0, 8.0);
    let targets: Vec<u32> = vec![0, 10, 3, 3, 7, 5];
    let mut soft = uniform(batch * classes, 42, 0.0, 1.0);
    for row in soft.chunks_exact_mut(classes) {
        let s: f32 = row.iter().sum();
        row.iter_mut().for_each(|t| *t /= s);
    }
    let mut probs = nan_vec(x.len());
    let mut dlogits = nan_vec(x.len());
    // dlogits are O(1/batch); f32 probs carry ~1e-7 absolute error.
    let (rtol, atol) = (1e-4, 1e-6);

    loss::softmax_cross_entropy_forward(batch, classes, &x, &targets, &mut probs).unwrap();
    loss::softmax_cross_entropy_backward(batch, classes, &probs, &targets, &mut dlogits).unwrap();
    let expected = numeric_grad(&x, 1e-6, |x| {
        x.chunks(classes).zip(&targets).map(|(x, &t)| lse64(x) - x[t as usize]).sum::<f64>() / batch as f64
    });
    assert_close("softmax_ce dlogits vs central differences", &dlogits, &expected, rtol, atol);

    loss::softmax_cross_entropy_soft_forward(batch, classes, &x, &soft, &mut probs).unwrap();
    loss::softmax_cross_entropy_soft_backward(batch, classes, &probs, &soft, &mut dlogits).unwrap();
    let expected = numeric_grad(&x, 1e-6, |x| {
        x.chunks(classes)
            .zip(soft.chunks(classes))
            .map(|(x, t)| {
                let lse = lse64(x);
                x.iter().zip(t).map(|(&v, &t)| f64::from(t) * (lse - v)).sum::<f64>()
            })
            .sum::<f64>()
            / batch as f64
    });
    assert_close("softmax_ce_soft dlogits vs central differences", &dlogits, &expected, rtol, atol);

    let y = uniform(x.len(), 43, 0.0, 1.0);
    loss::bce_with_logits_forward(&x, &y, &mut probs).unwrap();
    loss::bce_with_logits_backward(&probs, &y, &mut dlogits).unwrap();
    let n = x.len() as f64;
    let expected = numeric_grad(&x, 1e-6, |z| {
        z.iter()
            .zip(&y)
            .map(|(&z, &y)| {
                let p = sigmoid64(z);
                -(f64::from(y) * p.ln() + (1.0 - f64::from(y)) * (1.0 - p).ln())
            })
            .sum::<f64>()
            / n
    });
    assert_close("bce dlogits vs central differences", &dlogits, &expected, rtol, 1e-7);
}

/// The loss values themselves against the f64 formulas.
#[test]
fn loss_values_match_f64() {
    for_each_isa(loss_values_match_f64_on_isa);
}

fn loss_values_match_f64_on_isa() {
    let (batch, classes) = (4, 9);
    let x = uniform(batch * classes, 51, -12.0, 12.0);
    let targets = vec![8u32, 0, 4, 4];
    let mut probs = nan_vec(x.len());
    let loss = loss::softmax_cross_entropy_forward(batch, classes, &x, &targets, &mut probs).unwrap();
    let xd: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let expected: f64 =
        xd.chunks(classes).zip(&targets).map(|(x, &t)| lse64(x) - x[t as usize]).sum::<f64>() / batch as f64;
    assert_close("softmax_ce loss vs f64", &[loss], &[expected as f32], 1e-6, 1e-6);

    let y = uniform(x.len(), 52, 0.0, 1.0);
    let loss = loss::bce_with_logits_forward(&x, &y, &mut probs).unwrap();
    let expected: f64 = xd
        .iter()
        .zip(&y)
        .map(|(&z, &y)| z.max(0.0) - z * f64::from(y) + (-z.abs()).exp().ln_1p())
        .sum::<f64>()
        / x.len() as f64;
    assert_close("bce loss vs f64", &[loss], &[expected as f32], 1e-6, 1e-6);
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

    // Cross-entropy: confident and right = 0, confident and wrong = 2e4, finite gradients.
    let mut probs = nan_vec(4);
    let loss = loss::softmax_cross_entropy_forward(2, 2, &x2, &[0, 0], &mut probs).unwrap();
    assert_eq!(loss, 1e4); // (0 + 2e4)/2
    let mut dl = nan_vec(4);
    loss::softmax_cross_entropy_backward(2, 2, &probs, &[0, 0], &mut dl).unwrap();
    assert_eq!(dl, [0.0, 0.0, -0.5, 0.5]);

    // BCE with logits ±1e4: loss max(z,0) - z·y exactly, gradients finite.
    let z = [1e4f32, -1e4, 1e4, -1e4];
    let t = [1.0f32, 0.0, 0.0, 1.0];
    let mut p = nan_vec(4);
    let loss = loss::bce_with_logits_forward(&z, &t, &mut p).unwrap();
    assert_eq!(loss, 5e3); // (0 + 0 + 1e4 + 1e4)/4
    assert_eq!(p, [1.0, 0.0, 1.0, 0.0]);
    loss::bce_with_logits_backward(&p, &t, &mut dl).unwrap();
    assert_eq!(dl, [0.0, 0.0, 0.25, -0.25]);
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
    let mut probs = vec![0.0; rows * cols];
    let loss = loss::softmax_cross_entropy_forward(rows, cols, &x2, &[3, 3], &mut probs).unwrap();
    assert!(loss.is_nan());
    let loss = loss::bce_with_logits_forward(&x2, &vec![1.0; rows * cols], &mut probs).unwrap();
    assert!(loss.is_nan() && probs[40].is_nan() && probs[39].is_finite());
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

/// Asserts a length error naming `what`.
#[track_caller]
fn assert_length_error<T: std::fmt::Debug>(r: keel_kernels::Result<T>, what: &str) {
    match r {
        Err(e @ KernelError::Length { .. }) => {
            assert!(e.to_string().contains(what), "{e} does not name {what}")
        }
        other => panic!("expected a length error naming {what}, got {other:?}"),
    }
}

#[track_caller]
fn assert_error<T: std::fmt::Debug>(r: keel_kernels::Result<T>, shape: bool, what: &str) {
    match r {
        Err(e @ KernelError::Shape { .. }) if shape => assert!(e.to_string().contains(what), "{e}"),
        Err(e @ KernelError::Argument { .. }) if !shape => assert!(e.to_string().contains(what), "{e}"),
        other => panic!(
            "expected a {} error naming {what}, got {other:?}",
            if shape { "shape" } else { "argument" }
        ),
    }
}

#[test]
fn elementwise_bad_input() {
    let x = [1.0f32, -2.0, 3.0];
    let mut short = [0.0f32; 2];
    for k in &ELEMENTWISE {
        assert_length_error((k.forward)(&x, &mut short), "y");
        assert_length_error((k.backward)(&x, &[1.0; 2], &mut [0.0; 3]), "dy");
        assert_length_error((k.backward)(&x, &[1.0; 3], &mut short), "dx");
    }
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

#[test]
fn loss_bad_input() {
    let x = [0.5f32; 6];
    let mut p = [0.0f32; 6];
    let ce = loss::softmax_cross_entropy_forward;
    assert_error(ce(0, 3, &[], &[], &mut []), true, "batch");
    assert_error(ce(2, 0, &[], &[0, 0], &mut []), true, "classes");
    assert_length_error(ce(2, 3, &x, &[0], &mut p), "targets");
    assert_error(ce(2, 3, &x, &[0, 3], &mut p), false, "targets[1]");
    assert_length_error(ce(2, 3, &x[..5], &[0, 1], &mut p), "logits (batch, classes) = (2, 3)");
    assert_length_error(ce(2, 3, &x, &[0, 1], &mut p[..5]), "probs");
    let ceb = loss::softmax_cross_entropy_backward;
    assert_error(ceb(0, 3, &[], &[], &mut []), true, "batch");
    assert_error(ceb(2, 0, &[], &[0, 0], &mut []), true, "classes");
    assert_length_error(ceb(2, 3, &x, &[0, 1, 2], &mut p), "targets");
    assert_error(ceb(2, 3, &x, &[7, 0], &mut p), false, "targets[0]");
    assert_length_error(ceb(2, 3, &x[..5], &[0, 1], &mut p), "probs");
    assert_length_error(ceb(2, 3, &x, &[0, 1], &mut p[..5]), "dlogits");

    let soft = loss::softmax_cross_entropy_soft_forward;
    assert_error(soft(0, 3, &[], &[], &mut []), true, "batch");
    assert_error(soft(2, 0, &[], &[], &mut []), true, "classes");
    assert_length_error(soft(2, 3, &x[..5], &x, &mut p), "logits");
    assert_length_error(soft(2, 3, &x, &x[..5], &mut p), "targets");
    assert_length_error(soft(2, 3, &x, &x, &mut p[..5]), "probs");
    let softb = loss::softmax_cross_entropy_soft_backward;
    assert_error(softb(0, 3, &[], &[], &mut []), true, "batch");
    assert_error(softb(2, 0, &[], &[], &mut []), true, "classes");
    assert_length_error(softb(2, 3, &x[..5], &x, &mut p), "probs");
    assert_length_error(softb(2, 3, &x, &x[..5], &mut p), "targets");
    assert_length_error(softb(2, 3, &x, &x, &mut p[..5]), "dlogits");

    assert_error(loss::bce_with_logits_forward(&[], &[], &mut []), true, "logits");
    assert_length_error(loss::bce_with_logits_forward(&x, &x[..5], &mut p), "targets");
    assert_length_error(loss::bce_with_logits_forward(&x, &x, &mut p[..5]), "probs");
    assert_error(loss::bce_with_logits_backward(&[], &[], &mut []), true, "probs");
    assert_length_error(loss::bce_with_logits_backward(&x, &x[..5], &mut p), "targets");
    assert_length_error(loss::bce_with_logits_backward(&x, &x, &mut p[..5]), "dlogits");
}
