//! Embedding kernels (lookup and its gradient, the word2vec and GloVe steps, cosine
//! similarity) against their scalar references on every instruction set the CPU has, at
//! dimensions around the vector widths, plus f64 checks of the step formulas and every
//! argument check.

mod common;

use common::{assert_close, edge_size, for_each_isa, two_threads, uniform};
use keel_kernels::embed::{
    cosine_similarity, embedding_backward, embedding_forward, glove_step, reference, sgns_step, GloveConfig,
};
use keel_kernels::isa::{current_isa, with_isa};
use keel_kernels::KernelError;
use proptest::prelude::*;

/// Row indices in `0..rows` from a seed, with repeats.
fn indices(len: usize, rows: usize, seed: u64) -> Vec<u32> {
    uniform(len, seed, 0.0, rows as f32).into_iter().map(|v| (v as u32).min(rows as u32 - 1)).collect()
}

#[track_caller]
fn assert_argument_error(result: keel_kernels::Result<impl std::fmt::Debug>, name: &str) {
    match result {
        Err(KernelError::Argument { what, .. }) => assert_eq!(what, name),
        other => panic!("expected an argument error naming {name}, got {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn lookup_matches_reference(dim in edge_size(40), rows in 1usize..20, n in 0usize..30, seed in any::<u64>()) {
        let weight = uniform(rows * dim, seed, -2.0, 2.0);
        let idx = indices(n, rows, seed ^ 1);
        let padding = (seed % 3 == 0).then_some(idx.first().copied().unwrap_or(0));
        let dout = uniform(n * dim, seed ^ 2, -1.0, 1.0);
        let mut out = vec![f32::NAN; n * dim];
        let mut expected = vec![0.0; n * dim];
        embedding_forward(&weight, dim, &idx, &mut out).unwrap();
        reference::embedding_forward(&weight, dim, &idx, &mut expected);
        prop_assert_eq!(&out, &expected);
        let start = uniform(rows * dim, seed ^ 3, -1.0, 1.0);
        let (mut grad, mut expected) = (start.clone(), start.clone());
        embedding_backward(&idx, &dout, dim, padding, &mut grad).unwrap();
        reference::embedding_backward(&idx, &dout, dim, padding, &mut expected);
        prop_assert_eq!(&grad, &expected);
        if let Some(p) = padding {
            let row = p as usize * dim..(p as usize + 1) * dim;
            prop_assert_eq!(&grad[row.clone()], &start[row]);
        }
    }

    #[test]
    fn sgns_step_matches_reference(dim in edge_size(70), rows in 2usize..12, k in 0usize..6, seed in any::<u64>()) {
        let center0 = uniform(dim, seed, -1.0, 1.0);
        let out0 = uniform(rows * dim, seed ^ 5, -1.0, 1.0);
        // Repeats allowed: a negative drawn twice moves twice.
        let targets = indices(1 + k, rows, seed ^ 7);
        let (mut rc, mut ro, mut rw) = (center0.clone(), out0.clone(), vec![0.0; dim]);
        let loss_ref = reference::sgns_step(&mut rc, &mut ro, &targets, 0.1, &mut rw);
        for_each_isa(|| {
            let (mut c, mut o, mut w) = (center0.clone(), out0.clone(), vec![f32::NAN; dim]);
            let loss = sgns_step(&mut c, &mut o, &targets, 0.1, &mut w).unwrap();
            let what = format!("{:?} dim {dim}", current_isa());
            assert_close(&format!("{what} loss"), &[loss], &[loss_ref], 1e-4, 1e-5);
            assert_close(&format!("{what} center"), &c, &rc, 1e-4, 1e-5);
            assert_close(&format!("{what} out"), &o, &ro, 1e-4, 1e-5);
        });
    }

    #[test]
    fn glove_step_matches_reference(dim in edge_size(70), x in 0.5f32..300.0, seed in any::<u64>()) {
        let cfg = GloveConfig { grad_clip: 0.3, ..GloveConfig::default() };
        let word0 = uniform(dim + 1, seed, -1.0, 1.0);
        let context0 = uniform(dim + 1, seed ^ 3, -1.0, 1.0);
        let gw0 = uniform(dim + 1, seed ^ 4, 1.0, 3.0);
        let gc0 = uniform(dim + 1, seed ^ 6, 1.0, 3.0);
        let (mut rw, mut rc, mut rgw, mut rgc) = (word0.clone(), context0.clone(), gw0.clone(), gc0.clone());
        let cost_ref = reference::glove_step(&cfg, x, &mut rw, &mut rc, &mut rgw, &mut rgc);
        for_each_isa(|| {
            let (mut w, mut c, mut gw, mut gc) = (word0.clone(), context0.clone(), gw0.clone(), gc0.clone());
            let cost = glove_step(&cfg, x, &mut w, &mut c, &mut gw, &mut gc).unwrap();
            let what = format!("{:?} dim {dim}", current_isa());
            assert_close(&format!("{what} cost"), &[cost], &[cost_ref], 1e-4, 1e-5);
            assert_close(&format!("{what} word"), &w, &rw, 1e-4, 1e-5);
            assert_close(&format!("{what} context"), &c, &rc, 1e-4, 1e-5);
            assert_close(&format!("{what} gradsq_word"), &gw, &rgw, 1e-4, 1e-5);
            assert_close(&format!("{what} gradsq_context"), &gc, &rgc, 1e-4, 1e-5);
        });
    }

    #[test]
    fn cosine_matches_reference(dim in edge_size(70), rows in 0usize..40, seed in any::<u64>()) {
        let query = uniform(dim, seed, -1.0, 1.0);
        let mut matrix = uniform(rows * dim, seed ^ 9, -1.0, 1.0);
        if rows > 1 {
            matrix[dim..2 * dim].fill(0.0); // a zero row scores 0
        }
        let mut expected = vec![0.0; rows];
        reference::cosine_similarity(&query, &matrix, &mut expected);
        for_each_isa(|| {
            let mut out = vec![f32::NAN; rows];
            cosine_similarity(&query, &matrix, &mut out).unwrap();
            assert_close(&format!("{:?} dim {dim}", current_isa()), &out, &expected, 1e-5, 1e-6);
        });
    }
}

/// The SGNS step against the formulas in f64: loss, and every vector after the step, with a
/// negative drawn twice (the second draw sees the first's update).
#[test]
fn sgns_step_follows_the_formulas() {
    let dim = 13;
    let center0 = uniform(dim, 11, -0.8, 0.8);
    let out0 = uniform(4 * dim, 12, -0.8, 0.8);
    let targets = [2u32, 0, 3, 0];
    let lr = 0.05f64;
    let mut v: Vec<f64> = center0.iter().map(|&x| f64::from(x)).collect();
    let mut u: Vec<f64> = out0.iter().map(|&x| f64::from(x)).collect();
    let mut work = vec![0.0f64; dim];
    let mut loss = 0.0;
    for (k, &t) in targets.iter().enumerate() {
        let row = t as usize * dim;
        let s: f64 = (0..dim).map(|e| v[e] * u[row + e]).sum();
        let label = if k == 0 { 1.0 } else { 0.0 };
        let sig = 1.0 / (1.0 + (-s).exp());
        loss -= if k == 0 { sig.ln() } else { (1.0 - sig).ln() };
        let g = lr * (label - sig);
        for e in 0..dim {
            work[e] += g * u[row + e];
            u[row + e] += g * v[e];
        }
    }
    v.iter_mut().zip(&work).for_each(|(v, w)| *v += w);
    let to32 = |x: &[f64]| x.iter().map(|&v| v as f32).collect::<Vec<_>>();
    for_each_isa(|| {
        let (mut c, mut o, mut w) = (center0.clone(), out0.clone(), vec![0.0; dim]);
        let got = sgns_step(&mut c, &mut o, &targets, lr as f32, &mut w).unwrap();
        assert_close("loss", &[got], &[loss as f32], 1e-5, 1e-6);
        assert_close("center", &c, &to32(&v), 1e-5, 1e-6);
        assert_close("out", &o, &to32(&u), 1e-5, 1e-6);
    });
}

/// GloVe's cost and weighting: f(x) = (x/x_max)^α below x_max, 1 above; a zero learning rate
/// leaves everything but reports the cost.
#[test]
fn glove_cost_and_weight() {
    let cfg = GloveConfig { lr: 0.0, ..GloveConfig::default() };
    assert_eq!(cfg.weight(100.0), 1.0);
    assert_eq!(cfg.weight(250.0), 1.0);
    assert!((cfg.weight(10.0) - 0.1f32.powf(0.75)).abs() < 1e-7);
    let (mut w, mut c) = (vec![0.5, -1.0, 0.25], vec![2.0, 0.5, -0.5]);
    let (mut gw, mut gc) = (vec![1.0; 3], vec![1.0; 3]);
    let cost = glove_step(&cfg, 10.0, &mut w, &mut c, &mut gw, &mut gc).unwrap();
    let diff = (0.5 * 2.0 - 0.5 + 0.25 - 0.5 - 10f64.ln()) as f32;
    let expected = 0.5 * cfg.weight(10.0) * diff * diff;
    assert!((cost - expected).abs() <= 1e-5 * expected, "{cost} vs {expected}");
    assert_eq!((w, gw), (vec![0.5, -1.0, 0.25], vec![1.0; 3]));
}

/// Repeated GloVe steps on one entry drive its cost to 0.
#[test]
fn glove_steps_fit_one_entry() {
    let cfg = GloveConfig::default();
    let (mut w, mut c) = (uniform(9, 1, -0.5, 0.5), uniform(9, 2, -0.5, 0.5));
    let (mut gw, mut gc) = (vec![1.0; 9], vec![1.0; 9]);
    let first = glove_step(&cfg, 40.0, &mut w, &mut c, &mut gw, &mut gc).unwrap();
    let mut last = first;
    for _ in 0..300 {
        last = glove_step(&cfg, 40.0, &mut w, &mut c, &mut gw, &mut gc).unwrap();
    }
    assert!(last < 1e-3 * first, "cost {first} -> {last}");
}

/// Above the parallel threshold the rows are split over threads: same values as one block.
#[test]
fn cosine_parallel_split_matches() {
    let (dim, rows) = (50, 3001);
    let query = uniform(dim, 3, -1.0, 1.0);
    let matrix = uniform(rows * dim, 4, -1.0, 1.0);
    let mut expected = vec![0.0; rows];
    reference::cosine_similarity(&query, &matrix, &mut expected);
    for_each_isa(|| {
        let isa = current_isa();
        let mut out = vec![f32::NAN; rows];
        two_threads()
            .install(|| with_isa(isa, || cosine_similarity(&query, &matrix, &mut out)).unwrap())
            .unwrap();
        assert_close("cosine on two threads", &out, &expected, 1e-5, 1e-6);
    });
}

#[test]
fn argument_checks() {
    let mut out = vec![0.0; 6];
    // An index out of range names its position and value.
    match embedding_forward(&[0.0; 6], 2, &[1, 0, 3], &mut out) {
        Err(KernelError::Argument { what, actual, .. }) => {
            assert_eq!((what.as_str(), actual.as_str()), ("indices[2]", "3"))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(embedding_forward(&[0.0; 5], 2, &[0], &mut out[..2]), Err(KernelError::Shape { .. })));
    assert!(matches!(embedding_forward(&[0.0; 6], 0, &[0], &mut out), Err(KernelError::Shape { .. })));
    assert!(matches!(embedding_forward(&[0.0; 6], 2, &[0], &mut out), Err(KernelError::Length { .. })));
    assert_argument_error(embedding_backward(&[0], &[0.0; 2], 2, Some(3), &mut [0.0; 6]), "padding_idx");
    assert_argument_error(embedding_backward(&[4], &[0.0; 2], 2, None, &mut [0.0; 6]), "indices[0]");

    let (mut c, mut o, mut w) = (vec![0.0; 3], vec![0.0; 9], vec![0.0; 3]);
    assert_argument_error(sgns_step(&mut c, &mut o, &[0, 1, 3], 0.1, &mut w), "targets[2]");
    assert_argument_error(sgns_step(&mut c, &mut o, &[0], f32::NAN, &mut w), "lr");
    assert_argument_error(sgns_step(&mut c, &mut o, &[0], -0.1, &mut w), "lr");
    assert!(matches!(sgns_step(&mut c, &mut o, &[], 0.1, &mut w), Err(KernelError::Shape { .. })));
    assert!(matches!(sgns_step(&mut c, &mut o[..8], &[0], 0.1, &mut w), Err(KernelError::Shape { .. })));
    assert!(matches!(sgns_step(&mut c, &mut o, &[0], 0.1, &mut w[..2]), Err(KernelError::Length { .. })));

    let cfg = GloveConfig::default();
    let (mut a, mut b, mut ga, mut gb) = (vec![0.0; 3], vec![0.0; 3], vec![1.0; 3], vec![1.0; 3]);
    assert_argument_error(glove_step(&cfg, 0.0, &mut a, &mut b, &mut ga, &mut gb), "x");
    assert_argument_error(glove_step(&cfg, f32::NAN, &mut a, &mut b, &mut ga, &mut gb), "x");
    let bad = GloveConfig { x_max: 0.0, ..cfg };
    assert_argument_error(glove_step(&bad, 1.0, &mut a, &mut b, &mut ga, &mut gb), "x_max");
    let bad = GloveConfig { alpha: -1.0, ..cfg };
    assert_argument_error(glove_step(&bad, 1.0, &mut a, &mut b, &mut ga, &mut gb), "alpha");
    assert!(matches!(
        glove_step(&cfg, 1.0, &mut a, &mut b[..2], &mut ga, &mut gb),
        Err(KernelError::Length { .. })
    ));
    assert!(matches!(
        glove_step(&cfg, 1.0, &mut a[..1], &mut b[..1], &mut ga[..1], &mut gb[..1]),
        Err(KernelError::Shape { .. })
    ));

    assert!(matches!(cosine_similarity(&[], &[], &mut []), Err(KernelError::Shape { .. })));
    assert!(matches!(
        cosine_similarity(&[1.0, 2.0], &[0.0; 4], &mut [0.0; 3]),
        Err(KernelError::Length { .. })
    ));
}

/// NaN in a row gives NaN for that row only.
#[test]
fn cosine_nan_stays_in_its_row() {
    let matrix = [1.0, 0.0, f32::NAN, 1.0, 0.0, 2.0];
    for_each_isa(|| {
        let mut out = [0.0; 3];
        cosine_similarity(&[1.0, 1.0], &matrix, &mut out).unwrap();
        assert!((out[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6 && out[1].is_nan());
        assert!((out[2] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    });
}
