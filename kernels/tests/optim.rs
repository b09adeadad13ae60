//! Optimizer updates and gradient clipping: fast paths against the scalar references on every
//! instruction set the CPU has (bit for bit: both use the same correctly rounded IEEE
//! operations in the same order, without fused multiply-add, so this holds on every ISA),
//! several steps against straightforward f64 re-implementations of PyTorch's algorithms,
//! clipping values, NaN pre-fills and every argument check.

mod common;

use common::{assert_close, edge_size, for_each_isa, uniform};
use keel_kernels::isa::{current_isa, with_isa};
use keel_kernels::optim::{
    adam_update, clip_grad_norm, clip_grad_value, grad_scale, reference, rmsprop_update, scale, sgd_update,
    AdamConfig, RmspropConfig, SgdConfig,
};
use keel_kernels::KernelError;
use proptest::prelude::*;

/// Longer than `MIN_PARALLEL_ELEMENTS` (65536) and not a multiple of 8: the parallel split
/// and a scalar tail.
const BIG: usize = (1 << 17) + 5;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
}

/// Runs `f` on a pool of `threads` threads on this thread's instruction set (`install`
/// runs `f` on a pool thread, where the choice of `with_isa` must be made again).
fn on_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    let isa = current_isa();
    pool(threads).install(|| with_isa(isa, f).unwrap())
}

/// Exact equality (up to the sign of zero; NaN only where expected).
#[track_caller]
fn assert_same(what: &str, actual: &[f32], expected: &[f32]) {
    assert_close(what, actual, expected, 0.0, 0.0);
}

/// The `what` of an argument or length error.
fn error_names(err: KernelError) -> String {
    match err {
        KernelError::Argument { what, .. }
        | KernelError::Length { what, .. }
        | KernelError::Shape { what, .. } => what,
    }
}

#[track_caller]
fn assert_argument_error(result: keel_kernels::Result<impl std::fmt::Debug>, name: &str) {
    match result {
        Err(KernelError::Argument { what, .. }) => assert_eq!(what, name),
        other => panic!("expected an argument error naming {name}, got {other:?}"),
    }
}

#[track_caller]
fn assert_length_error(result: keel_kernels::Result<impl std::fmt::Debug>, name: &str) {
    match result {
        Err(err @ KernelError::Length { .. }) => {
            let what = error_names(err);
            assert!(what.starts_with(name), "length error names {what:?}, expected {name}");
        }
        other => panic!("expected a length error naming {name}, got {other:?}"),
    }
}

fn sgd_config(choice: u8) -> SgdConfig {
    // Plain, heavy-ball with dampening (the seed's form), Nesterov, all with weight decay.
    match choice % 4 {
        0 => SgdConfig { lr: 0.1, ..SgdConfig::default() },
        1 => SgdConfig { lr: 0.05, momentum: 0.9, dampening: 0.9, weight_decay: 0.01, nesterov: false },
        2 => SgdConfig { lr: 0.05, momentum: 0.9, dampening: 0.0, weight_decay: 0.01, nesterov: true },
        _ => SgdConfig { lr: 0.02, momentum: 0.5, dampening: 0.1, weight_decay: 0.0, nesterov: false },
    }
}

fn rmsprop_config(choice: u8) -> RmspropConfig {
    RmspropConfig {
        lr: 0.01,
        alpha: 0.9,
        eps: 1e-6,
        weight_decay: if choice & 1 != 0 { 0.01 } else { 0.0 },
        momentum: if choice & 2 != 0 { 0.8 } else { 0.0 },
        centered: choice & 4 != 0,
    }
}

fn adam_config(choice: u8) -> AdamConfig {
    let base = if choice & 1 != 0 {
        AdamConfig::adamw()
    } else {
        AdamConfig { weight_decay: 0.01, ..Default::default() }
    };
    AdamConfig { lr: 0.01, amsgrad: choice & 2 != 0, ..base }
}

/// Runs `steps` SGD steps with both the kernel and the reference; gradients change each step.
fn sgd_parity(cfg: &SgdConfig, len: usize, seed: u64, steps: u64) {
    let mut p = uniform(len, seed, -1.0, 1.0);
    let mut p_ref = p.clone();
    // NaN before step 1: the buffer is initialised, not read.
    let mut buf = vec![f32::NAN; len];
    let mut buf_ref = buf.clone();
    for step in 1..=steps {
        let g = uniform(len, seed ^ step, -1.0, 1.0);
        sgd_update(cfg, step, &mut p, &g, &mut buf).unwrap();
        reference::sgd_update(cfg, step, &mut p_ref, &g, &mut buf_ref);
    }
    assert_same("param", &p, &p_ref);
    if cfg.momentum != 0.0 {
        assert_same("momentum_buf", &buf, &buf_ref);
    }
    assert!(p.iter().all(|v| v.is_finite()));
}

fn rmsprop_parity(cfg: &RmspropConfig, len: usize, seed: u64, steps: u64) {
    let mut p = uniform(len, seed, -1.0, 1.0);
    let mut p_ref = p.clone();
    let (mut sq, mut buf, mut avg) = (vec![0.0; len], vec![0.0; len], vec![0.0; len]);
    let (mut sq_ref, mut buf_ref, mut avg_ref) = (sq.clone(), buf.clone(), avg.clone());
    for step in 1..=steps {
        let g = uniform(len, seed ^ step, -1.0, 1.0);
        rmsprop_update(cfg, &mut p, &g, &mut sq, &mut buf, &mut avg).unwrap();
        reference::rmsprop_update(cfg, &mut p_ref, &g, &mut sq_ref, &mut buf_ref, &mut avg_ref);
    }
    assert_same("param", &p, &p_ref);
    assert_same("square_avg", &sq, &sq_ref);
    assert_same("momentum_buf", &buf, &buf_ref);
    assert_same("grad_avg", &avg, &avg_ref);
}

fn adam_parity(cfg: &AdamConfig, len: usize, seed: u64, steps: u64) {
    let mut p = uniform(len, seed, -1.0, 1.0);
    let mut p_ref = p.clone();
    let (mut m, mut v, mut vmax) = (vec![0.0; len], vec![0.0; len], vec![0.0; len]);
    let (mut m_ref, mut v_ref, mut vmax_ref) = (m.clone(), v.clone(), vmax.clone());
    for step in 1..=steps {
        let g = uniform(len, seed ^ step, -1.0, 1.0);
        adam_update(cfg, step, &mut p, &g, &mut m, &mut v, &mut vmax).unwrap();
        reference::adam_update(cfg, step, &mut p_ref, &g, &mut m_ref, &mut v_ref, &mut vmax_ref);
    }
    assert_same("param", &p, &p_ref);
    assert_same("exp_avg", &m, &m_ref);
    assert_same("exp_avg_sq", &v, &v_ref);
    assert_same("max_exp_avg_sq", &vmax, &vmax_ref);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn sgd_matches_reference(len in edge_size(300), seed in any::<u64>(), choice in any::<u8>()) {
        for_each_isa(|| sgd_parity(&sgd_config(choice), len, seed, 3));
    }

    #[test]
    fn rmsprop_matches_reference(len in edge_size(300), seed in any::<u64>(), choice in any::<u8>()) {
        for_each_isa(|| rmsprop_parity(&rmsprop_config(choice), len, seed, 3));
    }

    #[test]
    fn adam_matches_reference(len in edge_size(300), seed in any::<u64>(), choice in any::<u8>()) {
        for_each_isa(|| adam_parity(&adam_config(choice), len, seed, 3));
    }
}

/// Parallel lengths (and lengths around the threshold) on every instruction set, 1 and 2
/// threads: still bit for bit, since the update is element-wise.
#[test]
fn updates_match_reference_on_the_parallel_path() {
    for_each_isa(|| {
        for threads in [1, 2] {
            on_pool(threads, || {
                for choice in 0..8 {
                    sgd_parity(&sgd_config(choice), BIG, 11 + u64::from(choice), 2);
                    rmsprop_parity(&rmsprop_config(choice), BIG, 21 + u64::from(choice), 2);
                    adam_parity(&adam_config(choice), BIG, 31 + u64::from(choice), 2);
                }
                // Around the threshold: one chunk, and the first split.
                for len in [65535, 65536, 65537, 65536 + 16 * 1001 + 9] {
                    sgd_parity(&sgd_config(2), len, 41, 2);
                    rmsprop_parity(&rmsprop_config(7), len, 42, 2);
                    adam_parity(&adam_config(3), len, 43, 2);
                }
            });
        }
    });
}

// ---- PyTorch's algorithms written out in f64 -------------------------------------------

/// `torch.optim.SGD._single_tensor_sgd` in f64.
fn sgd_f64(cfg: &SgdConfig, first: bool, p: &mut [f64], g: &[f32], buf: &mut [f64]) {
    let (lr, mu, tau, wd) = (cfg.lr, cfg.momentum, cfg.dampening, cfg.weight_decay);
    for i in 0..p.len() {
        let mut d = g[i] as f64 + wd * p[i];
        if mu != 0.0 {
            buf[i] = if first { d } else { mu * buf[i] + (1.0 - tau) * d };
            d = if cfg.nesterov { d + mu * buf[i] } else { buf[i] };
        }
        p[i] -= lr * d;
    }
}

/// `torch.optim.RMSprop._single_tensor_rmsprop` in f64.
fn rmsprop_f64(
    cfg: &RmspropConfig,
    p: &mut [f64],
    g: &[f32],
    sq: &mut [f64],
    buf: &mut [f64],
    avg: &mut [f64],
) {
    let (lr, alpha, eps, wd, mu) = (cfg.lr, cfg.alpha, cfg.eps, cfg.weight_decay, cfg.momentum);
    for i in 0..p.len() {
        let d = g[i] as f64 + wd * p[i];
        sq[i] = alpha * sq[i] + (1.0 - alpha) * d * d;
        let denom = if cfg.centered {
            avg[i] = alpha * avg[i] + (1.0 - alpha) * d;
            (sq[i] - avg[i] * avg[i]).sqrt() + eps
        } else {
            sq[i].sqrt() + eps
        };
        if mu > 0.0 {
            buf[i] = mu * buf[i] + d / denom;
            p[i] -= lr * buf[i];
        } else {
            p[i] -= lr * d / denom;
        }
    }
}

/// `torch.optim.Adam._single_tensor_adam` (and AdamW's decoupled decay) in f64.
#[allow(clippy::too_many_arguments)]
fn adam_f64(
    cfg: &AdamConfig,
    t: i32,
    p: &mut [f64],
    g: &[f32],
    m: &mut [f64],
    v: &mut [f64],
    vmax: &mut [f64],
) {
    let (lr, b1, b2, eps, wd) = (cfg.lr, cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay);
    for i in 0..p.len() {
        let mut d = g[i] as f64;
        if cfg.decoupled_weight_decay {
            p[i] *= 1.0 - lr * wd;
        } else {
            d += wd * p[i];
        }
        m[i] = b1 * m[i] + (1.0 - b1) * d;
        v[i] = b2 * v[i] + (1.0 - b2) * d * d;
        vmax[i] = vmax[i].max(v[i]);
        let v_used = if cfg.amsgrad { vmax[i] } else { v[i] };
        let m_hat = m[i] / (1.0 - b1.powi(t));
        let v_hat = v_used / (1.0 - b2.powi(t));
        p[i] -= lr * m_hat / (v_hat.sqrt() + eps);
    }
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

// Tolerance of the f64 comparisons: f32 rounding of O(1) values over a few steps, each step
// moving the parameter by at most ~lr·10: |error| <= 2e-5·|θ| + 2e-6.
const STEP_RTOL: f32 = 2e-5;
const STEP_ATOL: f32 = 2e-6;
const STEPS: u64 = 6;

#[test]
fn sgd_follows_pytorch_for_several_steps() {
    let len = 37;
    for choice in 0..4 {
        let cfg = sgd_config(choice);
        let mut p = uniform(len, 5, -1.0, 1.0);
        let mut p64: Vec<f64> = p.iter().map(|&x| x as f64).collect();
        let (mut buf, mut buf64) = (vec![0.0f32; len], vec![0.0f64; len]);
        for step in 1..=STEPS {
            let g = uniform(len, 100 + step, -1.0, 1.0);
            sgd_update(&cfg, step, &mut p, &g, &mut buf).unwrap();
            sgd_f64(&cfg, step == 1, &mut p64, &g, &mut buf64);
        }
        assert_close(&format!("sgd {cfg:?} param"), &p, &to_f32(&p64), STEP_RTOL, STEP_ATOL);
        assert_close("sgd momentum_buf", &buf, &to_f32(&buf64), STEP_RTOL, STEP_ATOL);
        assert!(p.iter().zip(uniform(len, 5, -1.0, 1.0)).any(|(a, b)| a != &b), "parameters moved");
    }
}

#[test]
fn rmsprop_follows_pytorch_for_several_steps() {
    let len = 37;
    for choice in 0..8 {
        let cfg = rmsprop_config(choice);
        let mut p = uniform(len, 6, -1.0, 1.0);
        let mut p64: Vec<f64> = p.iter().map(|&x| x as f64).collect();
        let (mut sq, mut buf, mut avg) = (vec![0.0f32; len], vec![0.0f32; len], vec![0.0f32; len]);
        let (mut sq64, mut buf64, mut avg64) = (vec![0.0; len], vec![0.0; len], vec![0.0; len]);
        for step in 1..=STEPS {
            let g = uniform(len, 200 + step, -1.0, 1.0);
            rmsprop_update(&cfg, &mut p, &g, &mut sq, &mut buf, &mut avg).unwrap();
            rmsprop_f64(&cfg, &mut p64, &g, &mut sq64, &mut buf64, &mut avg64);
        }
        assert_close(&format!("rmsprop {cfg:?} param"), &p, &to_f32(&p64), STEP_RTOL, STEP_ATOL);
        assert_close("rmsprop square_avg", &sq, &to_f32(&sq64), STEP_RTOL, STEP_ATOL);
        if cfg.momentum > 0.0 {
            // The buffer sums g/denom terms of size up to ~1/√(1-α) ≈ 3.
            assert_close("rmsprop momentum_buf", &buf, &to_f32(&buf64), STEP_RTOL, 1e-5);
        }
        if cfg.centered {
            assert_close("rmsprop grad_avg", &avg, &to_f32(&avg64), STEP_RTOL, STEP_ATOL);
        }
    }
}

#[test]
fn adam_follows_pytorch_for_several_steps() {
    let len = 37;
    for choice in 0..4 {
        let cfg = adam_config(choice);
        let mut p = uniform(len, 7, -1.0, 1.0);
        let mut p64: Vec<f64> = p.iter().map(|&x| x as f64).collect();
        let (mut m, mut v, mut vmax) = (vec![0.0f32; len], vec![0.0f32; len], vec![0.0f32; len]);
        let (mut m64, mut v64, mut vmax64) = (vec![0.0; len], vec![0.0; len], vec![0.0; len]);
        for step in 1..=STEPS {
            // Shrinking gradients make v decrease, so AMSGrad's maximum differs from v.
            let g: Vec<f32> = uniform(len, 300 + step, -1.0, 1.0).iter().map(|x| x / step as f32).collect();
            adam_update(&cfg, step, &mut p, &g, &mut m, &mut v, &mut vmax).unwrap();
            adam_f64(&cfg, step as i32, &mut p64, &g, &mut m64, &mut v64, &mut vmax64);
        }
        assert_close(&format!("adam {cfg:?} param"), &p, &to_f32(&p64), STEP_RTOL, STEP_ATOL);
        assert_close("adam exp_avg", &m, &to_f32(&m64), STEP_RTOL, STEP_ATOL);
        assert_close("adam exp_avg_sq", &v, &to_f32(&v64), STEP_RTOL, STEP_ATOL);
        if cfg.amsgrad {
            assert_close("adam max_exp_avg_sq", &vmax, &to_f32(&vmax64), STEP_RTOL, STEP_ATOL);
            assert!(vmax.iter().zip(&v).any(|(a, b)| a > b), "AMSGrad's maximum was exercised");
        }
    }
}

#[test]
fn adam_first_step_moves_by_lr() {
    // After step 1, m̂ = g and v̂ = g², so θ moves by lr·g/(|g| + ε) ≈ lr·sign(g): the
    // classic property of Adam. (torch: p = torch.tensor([0.5, -0.5]); p.grad =
    // torch.tensor([2.0, -0.25]); torch.optim.Adam([p], lr=0.1).step() gives
    // [0.4, -0.4] up to ε.)
    let cfg = AdamConfig { lr: 0.1, ..Default::default() };
    let mut p = [0.5f32, -0.5];
    let (mut m, mut v) = ([0.0f32; 2], [0.0f32; 2]);
    adam_update(&cfg, 1, &mut p, &[2.0, -0.25], &mut m, &mut v, &mut []).unwrap();
    assert_close("param", &p, &[0.4, -0.4], 1e-6, 1e-6);
    assert_close("exp_avg", &m, &[0.2, -0.025], 1e-6, 0.0);
    assert_close("exp_avg_sq", &v, &[0.004, 0.0000625], 1e-5, 0.0);
}

#[test]
fn unused_state_is_not_touched() {
    // Plain SGD, non-centred RMSprop without momentum and Adam without AMSGrad ignore the
    // state they do not use: NaN there must not leak, and it stays as it was.
    let g = uniform(19, 1, -1.0, 1.0);
    let mut p = uniform(19, 2, -1.0, 1.0);
    let mut nan = vec![f32::NAN; 19];
    sgd_update(&SgdConfig::default(), 2, &mut p, &g, &mut nan).unwrap();
    let mut sq = vec![0.0; 19];
    rmsprop_update(&RmspropConfig::default(), &mut p, &g, &mut sq, &mut nan, &mut []).unwrap();
    let (mut m, mut v) = (vec![0.0; 19], vec![0.0; 19]);
    adam_update(&AdamConfig::default(), 1, &mut p, &g, &mut m, &mut v, &mut nan).unwrap();
    assert!(p.iter().all(|x| x.is_finite()));
    assert!(nan.iter().all(|x| x.is_nan()));
    // Empty states are accepted when unused.
    sgd_update(&SgdConfig::default(), 1, &mut p, &g, &mut []).unwrap();
}

#[test]
fn defaults_are_pytorchs() {
    let sgd = SgdConfig::default();
    assert_eq!(
        (sgd.lr, sgd.momentum, sgd.dampening, sgd.weight_decay, sgd.nesterov),
        (1e-3, 0.0, 0.0, 0.0, false)
    );
    let rms = RmspropConfig::default();
    assert_eq!(
        (rms.lr, rms.alpha, rms.eps, rms.weight_decay, rms.momentum, rms.centered),
        (1e-2, 0.99, 1e-8, 0.0, 0.0, false)
    );
    let adam = AdamConfig::default();
    assert_eq!((adam.lr, adam.beta1, adam.beta2, adam.eps, adam.weight_decay), (1e-3, 0.9, 0.999, 1e-8, 0.0));
    assert!(!adam.decoupled_weight_decay && !adam.amsgrad);
    let adamw = AdamConfig::adamw();
    assert_eq!((adamw.weight_decay, adamw.decoupled_weight_decay), (1e-2, true));
    for cfg in [sgd.check(), rms.check(), adam.check(), adamw.check()] {
        cfg.unwrap();
    }
}

#[test]
fn rmsprop_centred_variance_rounding_below_zero_is_zero() {
    // A constant gradient makes v - ḡ² = (1-αᵗ)αᵗ·g² shrink towards 0, where rounding
    // leaves a tiny difference of either sign; PyTorch's sqrt would give NaN for a negative
    // one. The parameters stay finite for as long as we run.
    let cfg = RmspropConfig { alpha: 0.5, centered: true, ..Default::default() };
    let g = uniform(64, 3, -1.0, 1.0);
    let mut p = vec![0.0f32; 64];
    let (mut sq, mut avg) = (vec![0.0f32; 64], vec![0.0f32; 64]);
    for _ in 0..200 {
        rmsprop_update(&cfg, &mut p, &g, &mut sq, &mut [], &mut avg).unwrap();
    }
    assert!(p.iter().all(|x| x.is_finite()));
}

// ---- clipping ---------------------------------------------------------------------------

#[test]
fn clip_grad_norm_values() {
    // torch: a = torch.tensor([3., 0.]); b = torch.tensor([-4.]); a.grad, b.grad = a, b
    // clip_grad_norm_([a, b], 1.0) returns 5 and scales by 1/(5 + 1e-6).
    let (mut a, mut b) = (vec![3.0f32, 0.0], vec![-4.0f32]);
    let total = clip_grad_norm(&mut [&mut a, &mut b], 1.0, 2.0).unwrap();
    assert_eq!(total, 5.0);
    let coef = 1.0f32 / (5.0 + 1e-6);
    assert_eq!((a.as_slice(), b.as_slice()), (&[3.0 * coef, 0.0][..], &[-4.0 * coef][..]));

    // Below max_norm: untouched (coefficient >= 1).
    let (mut a, mut b) = (vec![3.0f32, 0.0], vec![-4.0f32]);
    assert_eq!(clip_grad_norm(&mut [&mut a, &mut b], 10.0, 2.0).unwrap(), 5.0);
    assert_eq!((a.as_slice(), b.as_slice()), (&[3.0, 0.0][..], &[-4.0][..]));

    // Infinity norm: the largest magnitude; 1-norm: the sum of magnitudes.
    let (mut a, mut b) = (vec![3.0f32, 0.5], vec![-4.0f32]);
    assert_eq!(clip_grad_norm(&mut [&mut a, &mut b], 2.0, f32::INFINITY).unwrap(), 4.0);
    assert_close("inf-clipped", &a, &[1.5, 0.25], 1e-6, 0.0);
    let (mut a, mut b) = (vec![3.0f32, 0.5], vec![-4.0f32]);
    assert_eq!(clip_grad_norm(&mut [&mut a, &mut b], 100.0, 1.0).unwrap(), 7.5);

    // No gradients at all: norm 0, nothing to do.
    assert_eq!(clip_grad_norm(&mut [], 1.0, 2.0).unwrap(), 0.0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn clip_grad_norm_matches_reference(
        len_a in edge_size(300), len_b in edge_size(300), seed in any::<u64>(), kind in 0u8..3,
    ) {
        for_each_isa(|| clip_norm_parity(len_a, len_b, seed, kind));
    }
}

/// `clip_grad_norm` on two gradients against the reference.
fn clip_norm_parity(len_a: usize, len_b: usize, seed: u64, kind: u8) {
    let norm_type = [2.0, 1.0, f32::INFINITY][kind as usize];
    let mut a = uniform(len_a, seed, -1.0, 1.0);
    let mut b = uniform(len_b, seed ^ 1, -2.0, 2.0);
    let (mut a_ref, mut b_ref) = (a.clone(), b.clone());
    let total = clip_grad_norm(&mut [&mut a, &mut b], 0.5, norm_type).unwrap();
    let total_ref = reference::clip_grad_norm(&mut [&mut a_ref, &mut b_ref], 0.5, norm_type);
    // Both sum in f64 (in a different order): the f32 totals differ by <= 1 ulp.
    assert_close("total", &[total], &[total_ref], 2e-7, 0.0);
    assert_close("a", &a, &a_ref, 1e-6, 1e-7);
    assert_close("b", &b, &b_ref, 1e-6, 1e-7);
}

#[test]
fn clip_grad_norm_parallel_is_thread_count_independent() {
    for_each_isa(clip_grad_norm_parallel_on_isa);
}

fn clip_grad_norm_parallel_on_isa() {
    let a0 = uniform(BIG, 9, -1.0, 1.0);
    let b0 = uniform(1000, 10, -1.0, 1.0);
    let run = |threads| {
        on_pool(threads, || {
            let (mut a, mut b) = (a0.clone(), b0.clone());
            let total = clip_grad_norm(&mut [&mut a, &mut b], 1.0, 2.0).unwrap();
            (total, a, b)
        })
    };
    let (t1, a1, b1) = run(1);
    let (t2, a2, b2) = run(2);
    assert_eq!(t1.to_bits(), t2.to_bits());
    assert_same("a", &a2, &a1);
    assert_same("b", &b2, &b1);
    let (mut a_ref, mut b_ref) = (a0.clone(), b0.clone());
    let t_ref = reference::clip_grad_norm(&mut [&mut a_ref, &mut b_ref], 1.0, 2.0);
    assert_close("total", &[t1], &[t_ref], 2e-7, 0.0);
    assert_close("a", &a1, &a_ref, 1e-6, 1e-9);
    assert!(t1 > 100.0, "the norm of {BIG} values in [-1, 1) is large: {t1}");
}

#[test]
fn clip_grad_norm_rejects_non_finite_and_leaves_grads() {
    for bad in [f32::NAN, f32::INFINITY] {
        let mut a = vec![1.0f32, bad, 2.0];
        let mut b = vec![3.0f32];
        for norm_type in [2.0, f32::INFINITY] {
            assert_argument_error(clip_grad_norm(&mut [&mut a, &mut b], 1.0, norm_type), "grads");
        }
        assert_eq!(a[0], 1.0);
        assert_eq!(b[0], 3.0);
    }
}

#[test]
fn clip_grad_value_clamps_and_keeps_nan() {
    for_each_isa(clip_grad_value_on_isa);
}

fn clip_grad_value_on_isa() {
    // torch.nn.utils.clip_grad_value_ clamps to [-clip, clip].
    let mut a: Vec<f32> = (0..19).map(|i| i as f32 - 9.0).collect();
    a[4] = f32::NAN;
    let mut b = vec![0.25f32, -7.5];
    clip_grad_value(&mut [&mut a, &mut b], 2.5).unwrap();
    let mut expected: Vec<f32> = (0..19).map(|i| (i as f32 - 9.0).clamp(-2.5, 2.5)).collect();
    expected[4] = f32::NAN;
    assert_close("a", &a, &expected, 0.0, 0.0);
    assert_eq!(b, [0.25, -2.5]);

    let a0 = uniform(BIG, 4, -3.0, 3.0);
    let mut a = a0.clone();
    let mut a_ref = a0.clone();
    on_pool(2, || clip_grad_value(&mut [&mut a], 1.0).unwrap());
    reference::clip_grad_value(&mut [&mut a_ref], 1.0);
    assert_same("parallel clip", &a, &a_ref);
    assert!(a.iter().filter(|x| x.abs() == 1.0).count() > BIG / 3);
}

/// `grad_scale` (one f32 product per element, as the reference): exact on every instruction
/// set, serial lengths with every kind of tail and the parallel path.
#[test]
fn grad_scale_matches_reference_on_every_isa() {
    for_each_isa(|| {
        for (i, len) in
            [1usize, 7, 15, 16, 17, 31, 33, 63, 64, 65, 97, 65535, 65537, BIG].into_iter().enumerate()
        {
            let grad = uniform(len, 40 + i as u64, -5.0, 5.0);
            let (mut fast, mut slow) = (grad.clone(), grad);
            on_pool(2, || grad_scale(&mut fast, -0.37).unwrap());
            scale::reference::grad_scale(&mut slow, -0.37);
            assert_same(&format!("grad_scale len {len} on {:?}", current_isa()), &fast, &slow);
        }
    });
}

// ---- bad input --------------------------------------------------------------------------

#[test]
fn config_checks_name_the_field() {
    let sgd = SgdConfig::default();
    let bad_sgd = [
        (SgdConfig { lr: -0.1, ..sgd }, "lr"),
        (SgdConfig { lr: f64::NAN, ..sgd }, "lr"),
        (SgdConfig { momentum: -0.5, ..sgd }, "momentum"),
        (SgdConfig { dampening: 1.5, ..sgd }, "dampening"),
        (SgdConfig { weight_decay: -1.0, ..sgd }, "weight_decay"),
        (SgdConfig { nesterov: true, ..sgd }, "nesterov"),
        (SgdConfig { nesterov: true, momentum: 0.9, dampening: 0.1, ..sgd }, "nesterov"),
    ];
    for (cfg, name) in bad_sgd {
        assert_argument_error(cfg.check(), name);
        assert_argument_error(sgd_update(&cfg, 1, &mut [1.0], &[1.0], &mut [0.0]), name);
    }
    let rms = RmspropConfig::default();
    let bad_rms = [
        (RmspropConfig { lr: -1.0, ..rms }, "lr"),
        (RmspropConfig { alpha: 1.5, ..rms }, "alpha"),
        (RmspropConfig { alpha: -0.1, ..rms }, "alpha"),
        (RmspropConfig { eps: -1e-8, ..rms }, "eps"),
        (RmspropConfig { weight_decay: f64::INFINITY, ..rms }, "weight_decay"),
        (RmspropConfig { momentum: -0.9, ..rms }, "momentum"),
    ];
    for (cfg, name) in bad_rms {
        assert_argument_error(cfg.check(), name);
        assert_argument_error(
            rmsprop_update(&cfg, &mut [1.0], &[1.0], &mut [0.0], &mut [0.0], &mut [0.0]),
            name,
        );
    }
    let adam = AdamConfig::default();
    let bad_adam = [
        (AdamConfig { lr: -1e-3, ..adam }, "lr"),
        (AdamConfig { beta1: 1.0, ..adam }, "beta1"),
        (AdamConfig { beta1: -0.1, ..adam }, "beta1"),
        (AdamConfig { beta2: 1.0, ..adam }, "beta2"),
        (AdamConfig { beta2: f64::NAN, ..adam }, "beta2"),
        (AdamConfig { eps: -1.0, ..adam }, "eps"),
        (AdamConfig { weight_decay: -0.01, ..adam }, "weight_decay"),
    ];
    for (cfg, name) in bad_adam {
        assert_argument_error(cfg.check(), name);
        assert_argument_error(
            adam_update(&cfg, 1, &mut [1.0], &[1.0], &mut [0.0], &mut [0.0], &mut [0.0]),
            name,
        );
    }
}

#[test]
fn step_zero_is_rejected() {
    let momentum = SgdConfig { momentum: 0.9, ..Default::default() };
    assert_argument_error(sgd_update(&momentum, 0, &mut [1.0], &[1.0], &mut [0.0]), "step");
    assert_argument_error(
        adam_update(&AdamConfig::default(), 0, &mut [1.0], &[1.0], &mut [0.0], &mut [0.0], &mut []),
        "step",
    );
}

#[test]
fn slice_lengths_are_checked() {
    let (mut p, g3, g2) = (vec![0.0f32; 3], vec![0.0f32; 3], vec![0.0f32; 2]);
    let (mut s3, mut s2) = (vec![0.0f32; 3], vec![0.0f32; 2]);
    let momentum = SgdConfig { momentum: 0.9, ..Default::default() };
    assert_length_error(sgd_update(&momentum, 1, &mut p, &g2, &mut s3), "grad");
    assert_length_error(sgd_update(&momentum, 1, &mut p, &g3, &mut s2), "momentum_buf");

    let full = RmspropConfig { momentum: 0.9, centered: true, ..Default::default() };
    let (mut a3, mut b3) = (vec![0.0f32; 3], vec![0.0f32; 3]);
    assert_length_error(rmsprop_update(&full, &mut p, &g2, &mut s3, &mut a3, &mut b3), "grad");
    assert_length_error(rmsprop_update(&full, &mut p, &g3, &mut s2, &mut a3, &mut b3), "square_avg");
    assert_length_error(rmsprop_update(&full, &mut p, &g3, &mut s3, &mut [], &mut b3), "momentum_buf");
    assert_length_error(rmsprop_update(&full, &mut p, &g3, &mut s3, &mut a3, &mut [0.0]), "grad_avg");

    let ams = AdamConfig { amsgrad: true, ..Default::default() };
    assert_length_error(adam_update(&ams, 1, &mut p, &g2, &mut s3, &mut a3, &mut b3), "grad");
    assert_length_error(adam_update(&ams, 1, &mut p, &g3, &mut s2, &mut a3, &mut b3), "exp_avg");
    assert_length_error(adam_update(&ams, 1, &mut p, &g3, &mut s3, &mut [], &mut b3), "exp_avg_sq");
    assert_length_error(adam_update(&ams, 1, &mut p, &g3, &mut s3, &mut a3, &mut []), "max_exp_avg_sq");
    // Nothing was updated by a rejected call.
    assert!(p.iter().all(|&x| x == 0.0));
}

#[test]
fn clip_arguments_are_checked() {
    let mut a = vec![1.0f32];
    assert_argument_error(clip_grad_norm(&mut [&mut a], -1.0, 2.0), "max_norm");
    assert_argument_error(clip_grad_norm(&mut [&mut a], f32::NAN, 2.0), "max_norm");
    assert_argument_error(clip_grad_norm(&mut [&mut a], 1.0, 0.0), "norm_type");
    assert_argument_error(clip_grad_norm(&mut [&mut a], 1.0, f32::NAN), "norm_type");
    assert_argument_error(clip_grad_value(&mut [&mut a], -0.5), "clip_value");
    assert_argument_error(clip_grad_value(&mut [&mut a], f32::NAN), "clip_value");
    assert_eq!(a, [1.0]);
}
