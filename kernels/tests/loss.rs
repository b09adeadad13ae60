//! The fused losses (softmax + cross-entropy with class-index and probability targets,
//! sigmoid + binary cross-entropy) on every instruction set the CPU has: parity with the
//! scalar references (serial and parallel lengths, magnitudes up to 1e4), every backward
//! against central differences in f64, the loss values against the f64 formulas, the same
//! bits per thread count, stability at ±1e4, NaN propagation and every input check.

mod common;

use common::{
    assert_close, assert_error, assert_length_error, assert_split, edge_size, for_each_isa, lse64, magnitude,
    nan_vec, numeric_grad, parallel_len, parallel_matrix, sigmoid64, two_threads, uniform,
};
use keel_kernels::isa::{current_isa, with_isa};
use keel_kernels::loss;
use keel_kernels::loss::reference as loss_reference;
use proptest::prelude::*;

/// Both cross-entropies of `(rows, cols)` logits against the references.
fn check_cross_entropy(rows: usize, cols: usize, seed: u64, mag: f32) {
    let len = rows * cols;
    let x = uniform(len, seed, -mag, mag);
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn cross_entropy_matches_reference(
        rows in edge_size(40), cols in edge_size(130), seed in any::<u64>(), mag in magnitude(),
    ) {
        for_each_isa(|| check_cross_entropy(rows, cols, seed, mag));
    }
}

// On two threads, sizes that split (asserted), in enough cases that a race shows.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn cross_entropy_matches_reference_parallel((rows, cols) in parallel_matrix(), seed in any::<u64>()) {
        two_threads().install(|| {
            assert_split(rows * cols);
            for_each_isa(|| check_cross_entropy(rows, cols, seed, 30.0))
        });
    }

    #[test]
    fn bce_matches_reference_parallel(len in parallel_len(), seed in any::<u64>(), mag in magnitude()) {
        two_threads().install(|| {
            assert_split(len);
            for_each_isa(|| check_bce(len, seed, mag))
        });
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

/// Cross-entropy and BCE at ±1e4: exact losses, finite gradients.
#[test]
fn stable_at_large_magnitudes() {
    for_each_isa(|| {
        let x2 = [1e4f32, -1e4, -1e4, 1e4];
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
    });
}

/// A NaN logit makes the loss NaN (and only its own probability).
#[test]
fn nan_propagates() {
    for_each_isa(|| {
        let (rows, cols) = (2, 37);
        let mut x2 = uniform(rows * cols, 62, -3.0, 3.0);
        x2[40] = f32::NAN;
        let mut probs = vec![0.0; rows * cols];
        let loss = loss::softmax_cross_entropy_forward(rows, cols, &x2, &[3, 3], &mut probs).unwrap();
        assert!(loss.is_nan());
        let loss = loss::bce_with_logits_forward(&x2, &vec![1.0; rows * cols], &mut probs).unwrap();
        assert!(loss.is_nan() && probs[40].is_nan() && probs[39].is_finite());
    });
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
