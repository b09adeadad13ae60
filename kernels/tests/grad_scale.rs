//! `grad_scale`: parity with the scalar reference (serial and two threads) and bad factors.

mod common;

use common::{assert_close, edge_size, uniform};
use keel_kernels::optim::{grad_scale, scale};
use keel_kernels::KernelError;
use proptest::prelude::*;

/// One f32 product per element in both: exact parity.
fn check(len: usize, seed: u64, factor: f32) {
    let grad = uniform(len, seed, -5.0, 5.0);
    let (mut fast, mut slow) = (grad.clone(), grad);
    grad_scale(&mut fast, factor).unwrap();
    scale::reference::grad_scale(&mut slow, factor);
    assert_close("grad", &fast, &slow, 0.0, 0.0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn grad_scale_matches_reference(len in edge_size(300), seed in any::<u64>(), factor in -2.0f32..2.0) {
        check(len, seed, factor);
    }
}

#[test]
fn grad_scale_matches_reference_parallel() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    pool.install(|| check(150_001, 7, 0.37));
}

#[test]
fn grad_scale_rejects_non_finite_factors() {
    for factor in [f32::NAN, f32::INFINITY] {
        let err = grad_scale(&mut [1.0], factor).unwrap_err();
        assert!(matches!(err, KernelError::Argument { ref what, .. } if what == "factor"), "{err}");
    }
    grad_scale(&mut [], 2.0).unwrap();
}
