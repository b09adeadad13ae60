//! Frozen (evaluation-mode) batch-norm backward: parity with the scalar reference (serial
//! and two threads), derivatives against f64 central differences of the eval forward,
//! overwrite / accumulate semantics and bad inputs.

mod common;

use common::{assert_close, assert_split, edge_size, for_each_isa, two_threads, uniform};
use keel_kernels::norm::{batchnorm_backward_eval, frozen};
use keel_kernels::KernelError;
use proptest::prelude::*;

struct Case {
    x: Vec<f32>,
    dy: Vec<f32>,
    gamma: Vec<f32>,
    mean: Vec<f32>,
    var: Vec<f32>,
}

fn case(n: usize, c: usize, spatial: usize, seed: u64) -> Case {
    let total = n * c * spatial;
    Case {
        x: uniform(total, seed, -2.0, 2.0),
        dy: uniform(total, seed ^ 1, -1.0, 1.0),
        gamma: uniform(c, seed ^ 2, -1.5, 1.5),
        mean: uniform(c, seed ^ 3, -0.5, 0.5),
        var: uniform(c, seed ^ 4, 0.2, 2.0),
    }
}

/// Tolerances, on every instruction set of the CPU: `dx` is the same f32 expression as the
/// reference (exact). The parameter gradients are f64 sums in another order (one lane per
/// vector lane, 8 or 16 lanes): they differ by about m·2⁻⁵³·Σ|terms| for m values per
/// channel, far below an f32 ulp, but the rounding to f32 (and the add onto the starting
/// value) can still land on the neighbouring float: 2 ulp relative, and 1e-6 absolute for
/// sums that nearly cancel.
fn check(n: usize, c: usize, spatial: usize, seed: u64) {
    let Case { x, dy, gamma, mean, var } = case(n, c, spatial, seed);
    let total = n * c * spatial;
    let start = uniform(c, seed ^ 5, -1.0, 1.0);
    let mut dx_ref = vec![0.0; total];
    let (mut dgamma_ref, mut dbeta_ref) = (start.clone(), start.clone());
    frozen::reference::batchnorm_backward_eval(
        n,
        c,
        spatial,
        &x,
        &dy,
        &gamma,
        &mean,
        &var,
        1e-5,
        &mut dx_ref,
        &mut dgamma_ref,
        &mut dbeta_ref,
    );
    for_each_isa(|| {
        let mut dx = vec![f32::NAN; total];
        let (mut dgamma, mut dbeta) = (start.clone(), start.clone());
        batchnorm_backward_eval(
            n,
            c,
            spatial,
            &x,
            &dy,
            &gamma,
            &mean,
            &var,
            1e-5,
            &mut dx,
            &mut dgamma,
            &mut dbeta,
        )
        .unwrap();
        assert_close("dx", &dx, &dx_ref, 0.0, 0.0);
        assert_close("dgamma", &dgamma, &dgamma_ref, 2.4e-7, 1e-6);
        assert_close("dbeta", &dbeta, &dbeta_ref, 2.4e-7, 1e-6);
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn frozen_backward_matches_reference(
        n in edge_size(9), c in edge_size(17), spatial in edge_size(65), seed in any::<u64>(),
    ) {
        check(n, c, spatial, seed);
    }
}

// On two threads, sizes that split (asserted), in enough cases that a race shows.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn frozen_backward_matches_reference_parallel(
        n in 24usize..30, c in 3usize..9, spatial in prop_oneof![Just(1usize), 1000usize..1400], seed in any::<u64>(),
    ) {
        // At least 24·3·1000 = 72 000 elements, above MIN_PARALLEL_ELEMENTS (65 536).
        let n = if spatial == 1 { n * 1000 } else { n };
        two_threads().install(|| {
            assert_split(n * c * spatial);
            check(n, c, spatial, seed)
        });
    }
}

#[test]
fn frozen_backward_matches_central_differences_in_f64() {
    // L = Σ dy·y with y the eval forward written in f64; L is linear in x and β and in γ, so
    // the central difference has no truncation error: the f32 kernel (one or two roundings
    // per term) agrees to ~1e-5 relative.
    let (n, c, spatial, eps) = (3, 4, 5, 1e-5f64);
    let Case { x, dy, gamma, mean, var } = case(n, c, spatial, 11);
    let beta = uniform(c, 12, -1.0, 1.0);
    let to64 = |v: &[f32]| v.iter().map(|&a| f64::from(a)).collect::<Vec<f64>>();
    let (x64, g64, b64) = (to64(&x), to64(&gamma), to64(&beta));
    let loss = |x: &[f64], g: &[f64], b: &[f64]| -> f64 {
        (0..x.len())
            .map(|j| {
                let k = (j / spatial) % c;
                let y = g[k] * (x[j] - f64::from(mean[k])) / (f64::from(var[k]) + eps).sqrt() + b[k];
                f64::from(dy[j]) * y
            })
            .sum()
    };
    let numeric = |v: &[f64], which: usize| -> Vec<f32> {
        let h = 1e-3;
        (0..v.len())
            .map(|i| {
                let mut args = [x64.clone(), g64.clone(), b64.clone()];
                args[which][i] = v[i] + h;
                let plus = loss(&args[0], &args[1], &args[2]);
                args[which][i] = v[i] - h;
                let minus = loss(&args[0], &args[1], &args[2]);
                ((plus - minus) / (2.0 * h)) as f32
            })
            .collect()
    };
    let mut dx = vec![f32::NAN; x.len()];
    let (mut dgamma, mut dbeta) = (vec![0.0; c], vec![0.0; c]);
    batchnorm_backward_eval(
        n,
        c,
        spatial,
        &x,
        &dy,
        &gamma,
        &mean,
        &var,
        1e-5,
        &mut dx,
        &mut dgamma,
        &mut dbeta,
    )
    .unwrap();
    assert_close("dx", &dx, &numeric(&x64, 0), 1e-5, 1e-6);
    assert_close("dgamma", &dgamma, &numeric(&g64, 1), 1e-5, 1e-6);
    assert_close("dbeta", &dbeta, &numeric(&b64, 2), 1e-5, 1e-6);
}

#[test]
fn frozen_backward_accepts_empty_shapes() {
    let (mut dgamma, mut dbeta) = (vec![1.0; 2], vec![2.0; 2]);
    batchnorm_backward_eval(
        0,
        2,
        3,
        &[],
        &[],
        &[1.0; 2],
        &[0.0; 2],
        &[1.0; 2],
        1e-5,
        &mut [],
        &mut dgamma,
        &mut dbeta,
    )
    .unwrap();
    assert_eq!((dgamma, dbeta), (vec![1.0; 2], vec![2.0; 2]));
}

#[test]
fn frozen_backward_rejects_bad_arguments() {
    let Case { x, dy, gamma, mean, var } = case(2, 3, 4, 1);
    let (mut dx, mut dgamma, mut dbeta) = (vec![0.0; 24], vec![0.0; 3], vec![0.0; 3]);
    let err = batchnorm_backward_eval(
        2,
        3,
        4,
        &x[..23],
        &dy,
        &gamma,
        &mean,
        &var,
        1e-5,
        &mut dx,
        &mut dgamma,
        &mut dbeta,
    )
    .unwrap_err();
    assert!(matches!(err, KernelError::Length { ref what, .. } if what.starts_with("x ")), "{err}");
    let err = batchnorm_backward_eval(
        2,
        3,
        4,
        &x,
        &dy,
        &gamma,
        &mean,
        &var[..2],
        1e-5,
        &mut dx,
        &mut dgamma,
        &mut dbeta,
    )
    .unwrap_err();
    assert!(matches!(err, KernelError::Length { ref what, .. } if what.starts_with("running_var")), "{err}");
    let err = batchnorm_backward_eval(
        2,
        3,
        4,
        &x,
        &dy,
        &gamma,
        &mean,
        &var,
        1e-5,
        &mut dx,
        &mut dgamma[..2],
        &mut dbeta,
    )
    .unwrap_err();
    assert!(matches!(err, KernelError::Length { ref what, .. } if what.starts_with("dgamma")), "{err}");
    let err = batchnorm_backward_eval(
        2,
        3,
        4,
        &x,
        &dy,
        &gamma,
        &mean,
        &var,
        -1.0,
        &mut dx,
        &mut dgamma,
        &mut dbeta,
    )
    .unwrap_err();
    assert!(matches!(err, KernelError::Argument { ref what, .. } if what == "eps"), "{err}");
    let err = batchnorm_backward_eval(
        usize::MAX,
        3,
        4,
        &x,
        &dy,
        &gamma,
        &mean,
        &var,
        1e-5,
        &mut dx,
        &mut dgamma,
        &mut dbeta,
    )
    .unwrap_err();
    assert!(matches!(err, KernelError::Shape { .. }), "{err}");
}
