//! Mean squared error: parity with the scalar reference (serial and on two threads), the
//! gradient against f64 central differences, overwrite semantics and bad inputs.

mod common;

use common::{assert_close, assert_split, edge_size, for_each_isa, nan_vec, two_threads, uniform};
use keel_kernels::isa::{current_isa, with_isa};
use keel_kernels::loss::reference as loss_reference;
use keel_kernels::loss::{mse_backward, mse_forward};
use keel_kernels::KernelError;
use proptest::prelude::*;

/// Fast path against the reference. Tolerances: the residuals and gradients are one f32
/// subtraction / product each, identical to the reference (exact); the loss sums in f32
/// lanes over blocks of 1024 before f64, so it differs from the all-f64 reference by at most
/// ~1024·2⁻²⁴ relative (1e-4 is ample).
fn check(len: usize, seed: u64) {
    let pred = uniform(len, seed, -3.0, 3.0);
    let target = uniform(len, seed ^ 1, -3.0, 3.0);
    let (mut diff, mut diff_ref) = (vec![f32::NAN; len], vec![0.0; len]);
    let loss = mse_forward(&pred, &target, &mut diff).unwrap();
    let loss_ref = loss_reference::mse_forward(&pred, &target, &mut diff_ref);
    assert_close("diff", &diff, &diff_ref, 0.0, 0.0);
    assert_close("loss", &[loss], &[loss_ref], 1e-4, 0.0);
    let (mut dpred, mut dpred_ref) = (vec![f32::NAN; len], vec![0.0; len]);
    mse_backward(&diff, &mut dpred).unwrap();
    loss_reference::mse_backward(&diff_ref, &mut dpred_ref);
    assert_close("dpred", &dpred, &dpred_ref, 0.0, 0.0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn mse_matches_reference(len in edge_size(300), seed in any::<u64>()) {
        check(len, seed);
    }
}

// On two threads, sizes that split (asserted), in enough cases that a race shows.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn mse_matches_reference_parallel(len in 70_000usize..200_000, seed in any::<u64>()) {
        two_threads().install(|| {
            assert_split(len);
            check(len, seed)
        });
    }
}

#[test]
fn mse_gradient_matches_central_differences_in_f64() {
    // loss(p) = Σ(p - t)²/n in f64; its central difference is exact up to rounding of f64
    // (a quadratic has no truncation error), so the f32 kernel's gradient (one rounding of
    // 2·d/n) agrees to ~1e-6 relative.
    let (pred, target) = (uniform(37, 3, -2.0, 2.0), uniform(37, 4, -2.0, 2.0));
    let loss =
        |p: &[f64]| p.iter().zip(&target).map(|(&p, &t)| (p - f64::from(t)).powi(2)).sum::<f64>() / 37.0;
    let mut diff = vec![0.0; 37];
    let value = mse_forward(&pred, &target, &mut diff).unwrap();
    let mut p64: Vec<f64> = pred.iter().map(|&p| f64::from(p)).collect();
    assert!((f64::from(value) - loss(&p64)).abs() <= 1e-6 * loss(&p64));
    let mut dpred = vec![f32::NAN; 37];
    mse_backward(&diff, &mut dpred).unwrap();
    let h = 1e-4;
    for i in 0..37 {
        let original = p64[i];
        p64[i] = original + h;
        let plus = loss(&p64);
        p64[i] = original - h;
        let minus = loss(&p64);
        p64[i] = original;
        let numeric = ((plus - minus) / (2.0 * h)) as f32;
        assert_close(&format!("dpred[{i}]"), &dpred[i..=i], &[numeric], 1e-5, 1e-7);
    }
}

#[test]
fn mse_propagates_nan() {
    let mut diff = vec![0.0; 3];
    assert!(mse_forward(&[1.0, f32::NAN, 2.0], &[0.0; 3], &mut diff).unwrap().is_nan());
}

#[test]
fn mse_rejects_bad_lengths() {
    let mut diff = vec![0.0; 3];
    let err = mse_forward(&[], &[], &mut []).unwrap_err();
    assert!(matches!(err, KernelError::Shape { ref what, .. } if what.contains("pred")), "{err}");
    let err = mse_forward(&[1.0; 3], &[1.0; 2], &mut diff).unwrap_err();
    assert!(matches!(err, KernelError::Length { ref what, .. } if what.starts_with("target")), "{err}");
    let err = mse_forward(&[1.0; 3], &[1.0; 3], &mut diff[..2]).unwrap_err();
    assert!(matches!(err, KernelError::Length { ref what, .. } if what.starts_with("diff")), "{err}");
    let err = mse_backward(&[], &mut []).unwrap_err();
    assert!(matches!(err, KernelError::Shape { ref what, .. } if what.contains("diff")), "{err}");
    let err = mse_backward(&[1.0; 3], &mut diff[..1]).unwrap_err();
    assert!(matches!(err, KernelError::Length { ref what, .. } if what.starts_with("dpred")), "{err}");
}

/// MSE on every instruction set (the tests above run the selected one): the residual and
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
                .install(|| with_isa(isa, || mse_forward(&pred, &target, &mut diff)))
                .unwrap()
                .unwrap();
            let loss_ref = loss_reference::mse_forward(&pred, &target, &mut diff_ref);
            assert_close(&format!("mse diff len {len} on {isa:?}"), &diff, &diff_ref, 0.0, 0.0);
            assert_close(&format!("mse loss len {len} on {isa:?}"), &[loss], &[loss_ref], 1e-4, 0.0);
            let (mut dpred, mut dpred_ref) = (nan_vec(len), nan_vec(len));
            mse_backward(&diff, &mut dpred).unwrap();
            loss_reference::mse_backward(&diff_ref, &mut dpred_ref);
            assert_close(&format!("mse dpred len {len} on {isa:?}"), &dpred, &dpred_ref, 0.0, 0.0);
        }
    });
}
