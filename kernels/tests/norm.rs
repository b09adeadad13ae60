//! Batch norm and dropout: fast paths against the scalar references, batch-norm backward
//! against central differences in f64, running statistics against hand-computed values,
//! thread-count independence, NaN pre-fills, accumulation, and every argument check.

mod common;

use common::{assert_close, edge_size, for_each_isa, uniform};
use keel_kernels::isa::{current_isa, with_isa};
use keel_kernels::norm::{
    batchnorm_backward, batchnorm_backward_apply, batchnorm_backward_workspace_len,
    batchnorm_channel_squares, batchnorm_channel_sums, batchnorm_forward_eval, batchnorm_forward_train,
    batchnorm_grad_sums, dropout_backward, dropout_forward, dropout_scale, reference,
};
use keel_kernels::KernelError;
use proptest::prelude::*;

/// Runs `f` on a pool of `threads` threads on this thread's instruction set (`install`
/// runs `f` on a pool thread, where the choice of `with_isa` must be made again).
fn on_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    let isa = current_isa();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| with_isa(isa, f).unwrap())
}

/// A batch-norm problem: `x` `(n, c, spatial)` with values `shift + [-1, 1)` (far from zero
/// when `shift` is large, which a one-pass variance would get wrong), `gamma` of both signs.
struct Bn {
    n: usize,
    c: usize,
    spatial: usize,
    x: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

fn problem(n: usize, c: usize, spatial: usize, seed: u64, shift: f32) -> Bn {
    Bn {
        n,
        c,
        spatial,
        x: uniform(n * c * spatial, seed, shift - 1.0, shift + 1.0),
        gamma: uniform(c, seed ^ 1, -2.0, 2.0),
        beta: uniform(c, seed ^ 2, -1.0, 1.0),
    }
}

/// Everything the training forward writes.
#[derive(Debug, Clone, PartialEq)]
struct Train {
    y: Vec<f32>,
    save_mean: Vec<f32>,
    save_invstd: Vec<f32>,
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
}

impl Train {
    /// Outputs NaN-filled (overwrite semantics), running statistics non-trivial.
    fn new(p: &Bn) -> Train {
        Train {
            y: vec![f32::NAN; p.x.len()],
            save_mean: vec![f32::NAN; p.c],
            save_invstd: vec![f32::NAN; p.c],
            running_mean: uniform(p.c, 5, -1.0, 1.0),
            running_var: uniform(p.c, 6, 0.5, 2.0),
        }
    }
}

fn train_fast(p: &Bn) -> Train {
    let mut t = Train::new(p);
    batchnorm_forward_train(
        p.n,
        p.c,
        p.spatial,
        &p.x,
        &p.gamma,
        &p.beta,
        1e-5,
        0.1,
        &mut t.running_mean,
        &mut t.running_var,
        &mut t.y,
        &mut t.save_mean,
        &mut t.save_invstd,
    )
    .unwrap();
    t
}

fn train_ref(p: &Bn) -> Train {
    let mut t = Train::new(p);
    reference::batchnorm_forward_train(
        p.n,
        p.c,
        p.spatial,
        &p.x,
        &p.gamma,
        &p.beta,
        1e-5,
        0.1,
        &mut t.running_mean,
        &mut t.running_var,
        &mut t.y,
        &mut t.save_mean,
        &mut t.save_invstd,
    );
    t
}

/// Everything the backward writes: `dx` (from NaN) and `dgamma`, `dbeta` accumulated onto
/// non-zero starting values.
#[derive(Debug, Clone, PartialEq)]
struct Grads {
    dx: Vec<f32>,
    dgamma: Vec<f32>,
    dbeta: Vec<f32>,
}

impl Grads {
    fn new(p: &Bn) -> Grads {
        Grads { dx: vec![f32::NAN; p.x.len()], dgamma: vec![0.5; p.c], dbeta: vec![-0.25; p.c] }
    }
}

fn backward_fast(p: &Bn, t: &Train, dy: &[f32]) -> Grads {
    let mut g = Grads::new(p);
    let mut workspace = vec![f32::NAN; batchnorm_backward_workspace_len(p.c)];
    batchnorm_backward(
        p.n,
        p.c,
        p.spatial,
        &p.x,
        dy,
        &p.gamma,
        &t.save_mean,
        &t.save_invstd,
        &mut workspace,
        &mut g.dx,
        &mut g.dgamma,
        &mut g.dbeta,
    )
    .unwrap();
    g
}

fn backward_ref(p: &Bn, t: &Train, dy: &[f32]) -> Grads {
    let mut g = Grads::new(p);
    reference::batchnorm_backward(
        p.n,
        p.c,
        p.spatial,
        &p.x,
        dy,
        &p.gamma,
        &t.save_mean,
        &t.save_invstd,
        &mut g.dx,
        &mut g.dgamma,
        &mut g.dbeta,
    );
    g
}

// Tolerances fast vs reference, on every instruction set of the CPU (the fast path's f64
// sums run one lane per vector lane, so their order follows the vector width: 8 or 16
// lanes). Both reduce in f64 (in different orders: a difference of about m·2⁻⁵³ relative
// for m values per channel, far below an f32 ulp), so the saved statistics agree to the
// last f32 bit or so; y differs by a few ulp from the order of the
// products (`(x-μ)·(γ·invstd)` vs `(x-μ)·invstd·γ`); dx is computed in f32 from f32
// coefficients by the kernel and in f64 by the reference: a few ulp of γ·invstd·|dy| ≈ 4.
fn assert_train_close(fast: &Train, reference: &Train) {
    assert_close("save_mean", &fast.save_mean, &reference.save_mean, 1e-6, 1e-7);
    assert_close("save_invstd", &fast.save_invstd, &reference.save_invstd, 1e-6, 0.0);
    assert_close("running_mean", &fast.running_mean, &reference.running_mean, 1e-6, 1e-7);
    assert_close("running_var", &fast.running_var, &reference.running_var, 1e-6, 0.0);
    assert_close("y", &fast.y, &reference.y, 1e-5, 1e-5);
}

fn assert_grads_close(fast: &Grads, reference: &Grads) {
    assert_close("dx", &fast.dx, &reference.dx, 1e-4, 1e-5);
    assert_close("dgamma", &fast.dgamma, &reference.dgamma, 1e-5, 1e-5);
    assert_close("dbeta", &fast.dbeta, &reference.dbeta, 1e-5, 1e-5);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn batchnorm_matches_reference(
        n in edge_size(9), c in edge_size(17), spatial in edge_size(65), seed in any::<u64>(), shift in -50.0f32..50.0,
    ) {
        // Training needs two values per channel.
        let spatial = if n * spatial < 2 { 2 } else { spatial };
        let p = problem(n, c, spatial, seed, shift);
        let slow = train_ref(&p);
        let dy = uniform(p.x.len(), seed ^ 3, -1.0, 1.0);
        for_each_isa(|| {
            let fast = train_fast(&p);
            assert_train_close(&fast, &slow);
            // Every output was written (NaN pre-fill) and is finite.
            assert!(fast.y.iter().chain(&fast.save_invstd).all(|v| v.is_finite()));

            assert_grads_close(&backward_fast(&p, &fast, &dy), &backward_ref(&p, &fast, &dy));

            let mut y = vec![f32::NAN; p.x.len()];
            let mut y_ref = vec![f32::NAN; p.x.len()];
            batchnorm_forward_eval(n, c, spatial, &p.x, &p.gamma, &p.beta, &fast.running_mean, &fast.running_var, 1e-5, &mut y).unwrap();
            reference::batchnorm_forward_eval(n, c, spatial, &p.x, &p.gamma, &p.beta, &fast.running_mean, &fast.running_var, 1e-5, &mut y_ref);
            // Eval: `(x-r)·(γ/√(v+ε))` vs `(x-r)/√(v+ε)·γ`, a few ulp of values up to ~100.
            assert_close("eval y", &y, &y_ref, 1e-5, 1e-4);
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The passes in parts (for statistics summed across processes) compose to the fused
    /// ones bit for bit: the same sums in the same order, the same f32 coefficients.
    #[test]
    fn batchnorm_parts_compose_to_the_fused_passes(
        n in edge_size(9), c in edge_size(17), spatial in edge_size(65), seed in any::<u64>(), shift in -50.0f32..50.0,
    ) {
        let spatial = if n * spatial < 2 { 2 } else { spatial };
        let p = problem(n, c, spatial, seed, shift);
        let dy = uniform(p.x.len(), seed ^ 3, -1.0, 1.0);
        let m = (n * spatial) as f64;
        for_each_isa(|| {
            let fused = train_fast(&p);
            let mut sums = vec![f64::NAN; c];
            batchnorm_channel_sums(n, c, spatial, &p.x, &mut sums).unwrap();
            let mean: Vec<f64> = sums.iter().map(|s| s / m).collect();
            let mut squares = vec![f64::NAN; c];
            batchnorm_channel_squares(n, c, spatial, &p.x, &mean, &mut squares).unwrap();
            let invstd: Vec<f32> = squares.iter().map(|q| (1.0 / (q / m + f64::from(1e-5f32)).sqrt()) as f32).collect();
            let mean32: Vec<f32> = mean.iter().map(|&v| v as f32).collect();
            assert_eq!(mean32, fused.save_mean);
            assert_eq!(invstd, fused.save_invstd);

            let grads = backward_fast(&p, &fused, &dy);
            let (mut sum_dy, mut sum_dy_xc) = (vec![f64::NAN; c], vec![f64::NAN; c]);
            batchnorm_grad_sums(n, c, spatial, &p.x, &dy, &mean32, &mut sum_dy, &mut sum_dy_xc).unwrap();
            let mean_dy: Vec<f32> = sum_dy.iter().map(|s| (s / m) as f32).collect();
            let slope: Vec<f32> = (0..c).map(|k| {
                let invstd = f64::from(invstd[k]);
                (invstd * (sum_dy_xc[k] * invstd) / m) as f32
            }).collect();
            let mut dx = vec![f32::NAN; p.x.len()];
            batchnorm_backward_apply(n, c, spatial, &p.x, &dy, &p.gamma, &mean32, &invstd, &mean_dy, &slope, &mut dx).unwrap();
            assert_eq!(dx, grads.dx);
        });
    }
}

#[test]
fn batchnorm_parallel_path_is_thread_count_independent() {
    // 2d-style (planes of 2741, not a multiple of 8) and 1d-style (spatial = 1: rows of 3
    // and of 97 channels): all above MIN_PARALLEL_ELEMENTS.
    for (n, c, spatial) in [(4, 6, 2741), (40_001, 3, 1), (701, 97, 1)] {
        let p = problem(n, c, spatial, 42, 3.0);
        let dy = uniform(p.x.len(), 43, -1.0, 1.0);
        let run = |threads| {
            on_pool(threads, || {
                let t = train_fast(&p);
                let g = backward_fast(&p, &t, &dy);
                (t, g)
            })
        };
        for_each_isa(|| {
            let (t1, g1) = run(1);
            let (t2, g2) = run(2);
            assert_eq!(t1, t2, "training forward differs between 1 and 2 threads");
            assert_eq!(g1, g2, "backward differs between 1 and 2 threads");
            assert_train_close(&t1, &train_ref(&p));
            assert_grads_close(&g1, &backward_ref(&p, &t1, &dy));
        });
    }
}

#[test]
fn batchnorm_train_values_and_running_stats() {
    // BatchNorm1d(2) on x (3, 2):
    //   bn = torch.nn.BatchNorm1d(2); bn.weight.data = torch.tensor([2., 1.])
    //   bn.bias.data = torch.tensor([0., .5])
    //   y = bn(torch.tensor([[1., -2.], [2., 0.], [6., 4.]]))
    //   bn.running_mean -> [0.3, 0.0667]   (0.9·0 + 0.1·mean, means 3 and 2/3)
    //   bn.running_var  -> [1.6, 1.8333]   (0.9·1 + 0.1·unbiased var, vars 7 and 28/3)
    //   y -> [[-1.8516, -0.5690], [-0.9258, 0.2327], [2.7775, 1.8363]]
    //   (normalised with the biased variances 14/3 and 56/9)
    let (x, gamma, beta) = ([1.0f32, -2.0, 2.0, 0.0, 6.0, 4.0], [2.0f32, 1.0], [0.0f32, 0.5]);
    let (mut rm, mut rv) = ([0.0f32; 2], [1.0f32; 2]);
    let (mut y, mut save_mean, mut save_invstd) = ([f32::NAN; 6], [f32::NAN; 2], [f32::NAN; 2]);
    batchnorm_forward_train(
        3,
        2,
        1,
        &x,
        &gamma,
        &beta,
        1e-5,
        0.1,
        &mut rm,
        &mut rv,
        &mut y,
        &mut save_mean,
        &mut save_invstd,
    )
    .unwrap();
    assert_close("running_mean", &rm, &[0.3, 0.066_666_67], 1e-6, 0.0);
    assert_close("running_var", &rv, &[1.6, 1.833_333_3], 1e-6, 0.0);
    assert_close("save_mean", &save_mean, &[3.0, 0.666_666_7], 1e-6, 0.0);
    let invstd = [1.0 / (14.0f64 / 3.0 + 1e-5).sqrt(), 1.0 / (56.0f64 / 9.0 + 1e-5).sqrt()];
    assert_close("save_invstd", &save_invstd, &[invstd[0] as f32, invstd[1] as f32], 1e-6, 0.0);
    let expected = [-1.851_638_2, -0.569_044_1, -0.925_819_1, 0.232_739, 2.777_457_3, 1.836_305_1];
    assert_close("y", &y, &expected, 1e-6, 1e-6);

    // Eval with the updated running statistics: y = γ(x - r_μ)/√(r_σ² + ε) + β.
    let mut y_eval = [f32::NAN; 6];
    batchnorm_forward_eval(3, 2, 1, &x, &gamma, &beta, &rm, &rv, 1e-5, &mut y_eval).unwrap();
    let expected: Vec<f32> = (0..6)
        .map(|j| {
            let k = j % 2;
            let r = (x[j] as f64 - rm[k] as f64) / (rv[k] as f64 + 1e-5).sqrt();
            (gamma[k] as f64 * r + beta[k] as f64) as f32
        })
        .collect();
    assert_close("eval y", &y_eval, &expected, 1e-6, 1e-6);
    assert_close("eval y[0]", &y_eval[..1], &[2.0 * 0.7 / 1.600_01f32.sqrt()], 1e-6, 0.0);
}

/// `Σ y·u` of the training forward, all in f64.
fn loss_f64(p: &Bn, x: &[f64], gamma: &[f64], beta: &[f64], u: &[f32], eps: f64) -> f64 {
    let (c, s) = (p.c, p.spatial);
    let m = (p.n * s) as f64;
    let mut loss = 0.0;
    for k in 0..c {
        let idx = |i: usize, j: usize| (i * c + k) * s + j;
        let values = || (0..p.n).flat_map(move |i| (0..s).map(move |j| idx(i, j)));
        let mean = values().map(|q| x[q]).sum::<f64>() / m;
        let var = values().map(|q| (x[q] - mean).powi(2)).sum::<f64>() / m;
        for q in values() {
            let y = gamma[k] * (x[q] - mean) / (var + eps).sqrt() + beta[k];
            loss += y * u[q] as f64;
        }
    }
    loss
}

#[test]
fn batchnorm_backward_matches_central_differences() {
    let eps = 1e-3f32; // a visible ε: it must enter the derivative correctly too
    for (n, c, spatial) in [(3, 2, 5), (7, 3, 1), (2, 1, 9)] {
        let p = problem(n, c, spatial, 77, 0.5);
        let u = uniform(p.x.len(), 78, -1.0, 1.0);
        let mut t = Train::new(&p);
        batchnorm_forward_train(
            n,
            c,
            spatial,
            &p.x,
            &p.gamma,
            &p.beta,
            eps,
            0.1,
            &mut t.running_mean,
            &mut t.running_var,
            &mut t.y,
            &mut t.save_mean,
            &mut t.save_invstd,
        )
        .unwrap();
        let g = backward_fast(&p, &t, &u);

        let x64: Vec<f64> = p.x.iter().map(|&v| v as f64).collect();
        let gamma64: Vec<f64> = p.gamma.iter().map(|&v| v as f64).collect();
        let beta64: Vec<f64> = p.beta.iter().map(|&v| v as f64).collect();
        let h = 1e-5;
        let central = |which: usize, q: usize| {
            let (mut xs, mut gs, mut bs) = (x64.clone(), gamma64.clone(), beta64.clone());
            let (mut xs2, mut gs2, mut bs2) = (x64.clone(), gamma64.clone(), beta64.clone());
            match which {
                0 => (xs[q] += h, xs2[q] -= h),
                1 => (gs[q] += h, gs2[q] -= h),
                _ => (bs[q] += h, bs2[q] -= h),
            };
            (loss_f64(&p, &xs, &gs, &bs, &u, eps as f64) - loss_f64(&p, &xs2, &gs2, &bs2, &u, eps as f64))
                / (2.0 * h)
        };
        let num_dx: Vec<f32> = (0..p.x.len()).map(|q| central(0, q) as f32).collect();
        let num_dgamma: Vec<f32> = (0..c).map(|k| 0.5 + central(1, k) as f32).collect();
        let num_dbeta: Vec<f32> = (0..c).map(|k| -0.25 + central(2, k) as f32).collect();
        // Central differences in f64 are exact to ~1e-9 here; the kernel works in f32 with
        // statistics saved in f32: 1e-4 relative to derivatives of size ~1-10.
        assert_close("dx vs central differences", &g.dx, &num_dx, 1e-3, 1e-4);
        assert_close("dgamma vs central differences (+0.5)", &g.dgamma, &num_dgamma, 1e-4, 1e-4);
        assert_close("dbeta vs central differences (-0.25)", &g.dbeta, &num_dbeta, 1e-4, 1e-4);
        assert!(num_dx.iter().any(|v| v.abs() > 0.1), "the derivative is not trivially zero");
    }
}

#[test]
fn batchnorm_backward_accumulates_parameter_grads() {
    let p = problem(4, 3, 7, 9, -2.0);
    let t = train_fast(&p);
    let dy = uniform(p.x.len(), 10, -1.0, 1.0);
    let mut g = backward_fast(&p, &t, &dy); // from 0.5 / -0.25
    let once = g.clone();
    let mut workspace = vec![0.0; batchnorm_backward_workspace_len(p.c)];
    batchnorm_backward(
        p.n,
        p.c,
        p.spatial,
        &p.x,
        &dy,
        &p.gamma,
        &t.save_mean,
        &t.save_invstd,
        &mut workspace,
        &mut g.dx,
        &mut g.dgamma,
        &mut g.dbeta,
    )
    .unwrap();
    assert_eq!(g.dx, once.dx, "dx is overwritten, not accumulated");
    let twice = |v: &[f32], start: f32| v.iter().map(|&d| start + 2.0 * (d - start)).collect::<Vec<_>>();
    assert_close("dgamma twice", &g.dgamma, &twice(&once.dgamma, 0.5), 1e-6, 1e-6);
    assert_close("dbeta twice", &g.dbeta, &twice(&once.dbeta, -0.25), 1e-6, 1e-6);
    assert!(once.dgamma.iter().all(|&d| d != 0.5), "dgamma moved");
}

#[test]
fn batchnorm_zero_sizes() {
    // c = 0: nothing to do in training; any zero size is a no-op in eval.
    let mut empty: [f32; 0] = [];
    batchnorm_forward_train(
        5,
        0,
        3,
        &[],
        &[],
        &[],
        1e-5,
        0.1,
        &mut [],
        &mut [],
        &mut [],
        &mut [],
        &mut empty,
    )
    .unwrap();
    batchnorm_forward_eval(0, 3, 4, &[], &[1.0; 3], &[0.0; 3], &[0.0; 3], &[1.0; 3], 1e-5, &mut []).unwrap();
    batchnorm_backward(5, 0, 3, &[], &[], &[], &[], &[], &mut [], &mut [], &mut [], &mut []).unwrap();
}

// ---- batch norm bad input ---------------------------------------------------------------

fn what(err: KernelError) -> String {
    match err {
        KernelError::Argument { what, .. }
        | KernelError::Length { what, .. }
        | KernelError::Shape { what, .. } => what,
    }
}

#[track_caller]
fn assert_error(result: keel_kernels::Result<()>, variant: &str, name: &str) {
    let err = result.expect_err("expected an error");
    let got = format!("{err:?}");
    assert!(got.starts_with(variant), "expected a {variant} error naming {name}, got {got}");
    let w = what(err);
    assert!(w.starts_with(name), "error names {w:?}, expected {name}");
}

/// Training forward on `(2, 3, 4)` with one argument spoiled by `spoil`.
fn train_with(
    spoil: impl FnOnce(&mut [Vec<f32>; 9], &mut (usize, usize, f32, f32)),
) -> keel_kernels::Result<()> {
    // x, gamma, beta, running_mean, running_var, y, save_mean, save_invstd, (unused)
    let mut s = [24, 3, 3, 3, 3, 24, 3, 3, 0].map(|len| vec![1.0f32; len]);
    let mut args = (2usize, 4usize, 1e-5f32, 0.1f32); // n, spatial, eps, momentum
    spoil(&mut s, &mut args);
    let [x, gamma, beta, rm, rv, y, sm, si, _] = &mut s;
    batchnorm_forward_train(args.0, 3, args.1, x, gamma, beta, args.2, args.3, rm, rv, y, sm, si)
}

#[test]
fn batchnorm_train_checks() {
    train_with(|_, _| {}).unwrap();
    let names = ["x", "gamma", "beta", "running_mean", "running_var", "y", "save_mean", "save_invstd"];
    for (i, name) in names.iter().enumerate() {
        assert_error(train_with(|s, _| s[i].push(0.0)), "Length", name);
    }
    assert_error(train_with(|_, a| (a.0, a.1) = (1, 1)), "Shape", "n·spatial");
    assert_error(train_with(|_, a| (a.0, a.1) = (0, 4)), "Shape", "n·spatial");
    assert_error(train_with(|_, a| (a.0, a.1) = (usize::MAX, 2)), "Shape", "n·spatial");
    assert_error(train_with(|_, a| a.0 = usize::MAX / 4), "Shape", "(n, c, spatial)");
    assert_error(train_with(|_, a| a.2 = -1e-5), "Argument", "eps");
    assert_error(train_with(|_, a| a.2 = f32::NAN), "Argument", "eps");
    assert_error(train_with(|_, a| a.3 = 1.5), "Argument", "momentum");
    assert_error(train_with(|_, a| a.3 = f32::NAN), "Argument", "momentum");
}

#[test]
fn batchnorm_eval_checks() {
    let eval = |spoil: usize, eps: f32| {
        let mut s = [24, 3, 3, 3, 3, 24].map(|len| vec![1.0f32; len]);
        if spoil < 6 {
            s[spoil].pop();
        }
        let [x, gamma, beta, rm, rv, y] = &mut s;
        batchnorm_forward_eval(2, 3, 4, x, gamma, beta, rm, rv, eps, y)
    };
    eval(6, 1e-5).unwrap();
    for (i, name) in ["x", "gamma", "beta", "running_mean", "running_var", "y"].iter().enumerate() {
        assert_error(eval(i, 1e-5), "Length", name);
    }
    assert_error(eval(6, -1.0), "Argument", "eps");
}

#[test]
fn batchnorm_backward_checks() {
    let backward = |spoil: usize, n: usize| {
        // x, dy, gamma, save_mean, save_invstd, workspace, dx, dgamma, dbeta
        let mut s = [24, 24, 3, 3, 3, 6, 24, 3, 3].map(|len| vec![1.0f32; len]);
        if spoil < 9 {
            s[spoil].pop();
        }
        let [x, dy, gamma, sm, si, ws, dx, dgamma, dbeta] = &mut s;
        batchnorm_backward(n, 3, 4, x, dy, gamma, sm, si, ws, dx, dgamma, dbeta)
    };
    backward(9, 2).unwrap();
    let names = ["x", "dy", "gamma", "save_mean", "save_invstd", "workspace", "dx", "dgamma", "dbeta"];
    for (i, name) in names.iter().enumerate() {
        assert_error(backward(i, 2), "Length", name);
    }
    let one = [1.0f32; 3];
    let (mut ws, mut dx, mut dgamma, mut dbeta) = ([0.0; 6], [0.0; 3], [0.0; 3], [0.0; 3]);
    let err =
        batchnorm_backward(1, 3, 1, &one, &one, &one, &one, &one, &mut ws, &mut dx, &mut dgamma, &mut dbeta);
    assert_error(err, "Shape", "n·spatial");
}

// ---- dropout ----------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn dropout_matches_reference(len in edge_size(300), p in 0.0f32..1.0, seed in any::<u64>(), offset in any::<u64>()) {
        let x = uniform(len, seed, -2.0, 2.0);
        let (mut y_ref, mut mask_ref) = (vec![0.0; len], vec![0u8; len]);
        reference::dropout_forward(p, seed, offset, &x, &mut y_ref, &mut mask_ref);
        let dy = uniform(len, seed ^ 5, -1.0, 1.0);
        let mut dx_ref = vec![0.0; len];
        reference::dropout_backward(p, &mask_ref, &dy, &mut dx_ref);
        // On every instruction set: the same product x·scale (or x·0) on both paths, bit
        // for bit.
        for_each_isa(|| {
            let (mut y, mut mask) = (vec![f32::NAN; len], vec![7u8; len]);
            dropout_forward(p, seed, offset, &x, &mut y, &mut mask).unwrap();
            assert_eq!(&mask, &mask_ref);
            assert_close("y", &y, &y_ref, 0.0, 0.0);
            assert!(mask.iter().all(|&m| m <= 1));

            let mut dx = vec![f32::NAN; len];
            dropout_backward(p, &mask, &dy, &mut dx).unwrap();
            assert_close("dx", &dx, &dx_ref, 0.0, 0.0);
        });
    }
}

#[test]
fn dropout_mask_is_independent_of_threads_and_chunking() {
    let len = (1 << 18) + 3;
    let x = uniform(len, 1, -1.0, 1.0);
    let run = |threads| {
        on_pool(threads, || {
            let (mut y, mut mask) = (vec![0.0; len], vec![0u8; len]);
            dropout_forward(0.4, 2024, 1000, &x, &mut y, &mut mask).unwrap();
            (y, mask)
        })
    };
    let (y1, m1) = run(1);
    // The same bits on 1 and 2 threads, on every instruction set.
    for_each_isa(|| {
        let (y2, m2) = run(2);
        assert_eq!(m1, m2, "mask differs between 1 and 2 threads");
        assert_close("y 1 vs 2 threads", &y2, &y1, 0.0, 0.0);
    });
    // Two calls on the halves with the offset advanced give the same mask as one call.
    let half = len / 2 + 1;
    let (mut y_parts, mut m_parts) = (vec![0.0; len], vec![0u8; len]);
    dropout_forward(0.4, 2024, 1000, &x[..half], &mut y_parts[..half], &mut m_parts[..half]).unwrap();
    dropout_forward(0.4, 2024, 1000 + half as u64, &x[half..], &mut y_parts[half..], &mut m_parts[half..])
        .unwrap();
    assert_eq!(m_parts, m1, "mask depends on the split");
    // Another seed or offset gives another mask.
    let (mut y3, mut m3) = (vec![0.0; len], vec![0u8; len]);
    dropout_forward(0.4, 2025, 1000, &x, &mut y3, &mut m3).unwrap();
    assert_ne!(m3, m1);
    dropout_forward(0.4, 2024, 1000 + len as u64, &x, &mut y3, &mut m3).unwrap();
    assert_ne!(m3, m1);
}

#[test]
fn dropout_keeps_about_one_minus_p_and_scales_exactly() {
    let len = 1 << 20;
    let x = uniform(len, 3, -1.0, 1.0);
    for (p, seed) in [(0.1f32, 1u64), (0.5, 2), (0.9, 3)] {
        let (mut y, mut mask) = (vec![f32::NAN; len], vec![0u8; len]);
        dropout_forward(p, seed, 0, &x, &mut y, &mut mask).unwrap();
        let kept = mask.iter().filter(|&&m| m == 1).count() as f64;
        // kept ~ Binomial(len, 1-p): within 6 standard deviations (false alarm < 1e-8).
        let (mean, sd) = (len as f64 * (1.0 - p as f64), (len as f64 * p as f64 * (1.0 - p as f64)).sqrt());
        assert!((kept - mean).abs() < 6.0 * sd, "p = {p}: kept {kept}, expected {mean} ± {}", 6.0 * sd);
        let scale = 1.0 / (1.0 - p);
        assert_eq!(dropout_scale(p), scale);
        for j in 0..len {
            let expected = if mask[j] == 1 { x[j] * scale } else { 0.0 };
            assert_eq!(y[j], expected, "p = {p}, element {j}");
        }
    }
}

#[test]
fn dropout_extremes() {
    let x = uniform(37, 4, -1.0, 1.0);
    let (mut y, mut mask) = (vec![f32::NAN; 37], vec![9u8; 37]);
    // p = 0: identity, everything kept.
    dropout_forward(0.0, 1, 0, &x, &mut y, &mut mask).unwrap();
    assert_eq!(y, x);
    assert!(mask.iter().all(|&m| m == 1));
    // p = 1: everything dropped, y = x·0 (PyTorch), and the gradient is zero.
    dropout_forward(1.0, 1, 0, &x, &mut y, &mut mask).unwrap();
    assert!(y.iter().all(|&v| v == 0.0));
    assert!(mask.iter().all(|&m| m == 0));
    let mut dx = vec![f32::NAN; 37];
    dropout_backward(1.0, &mask, &x, &mut dx).unwrap();
    assert!(dx.iter().all(|&v| v == 0.0));
    // A NaN input stays NaN even where dropped (a product, as PyTorch's x * noise).
    let nan_x = [f32::NAN; 3];
    let mut y3 = [0.0; 3];
    dropout_forward(1.0, 1, 0, &nan_x, &mut y3, &mut [0; 3]).unwrap();
    assert!(y3.iter().all(|v| v.is_nan()));
}

#[test]
fn dropout_checks() {
    let x = [1.0f32; 4];
    for p in [-0.1f32, 1.5, f32::NAN] {
        assert_error(dropout_forward(p, 0, 0, &x, &mut [0.0; 4], &mut [0; 4]), "Argument", "p");
        assert_error(dropout_backward(p, &[1; 4], &x, &mut [0.0; 4]), "Argument", "p");
    }
    assert_error(dropout_forward(0.5, 0, 0, &x, &mut [0.0; 3], &mut [0; 4]), "Length", "y");
    assert_error(dropout_forward(0.5, 0, 0, &x, &mut [0.0; 4], &mut [0; 5]), "Length", "mask");
    assert_error(dropout_backward(0.5, &[1; 4], &x[..3], &mut [0.0; 4]), "Length", "dy");
    assert_error(dropout_backward(0.5, &[1; 4], &x, &mut [0.0; 2]), "Length", "dx");
}
