//! Pooling: fast paths against the scalar references over random shapes, PyTorch's
//! conventions on hand-built cases (ties, NaN, padding, `ceil_mode`, divisors), adjoint
//! identities, f64 central-difference gradient checks, NaN pre-filled outputs, bad input.

mod common;

use common::{assert_close, edge_size, for_each_isa, on_isa, uniform};
use keel_kernels::isa::{with_isa, Isa};
use keel_kernels::pool::{self, reference, Pool2dShape};
use keel_kernels::KernelError;
use proptest::prelude::*;

/// Random valid shapes: sizes from `edge_size` (1, primes, around 8/16/32), kernel 1..=4,
/// stride 1..=3, pad 0..=kernel/2, both `ceil_mode`s; shapes whose window does not fit the
/// padded input are dropped.
fn shapes() -> impl Strategy<Value = Pool2dShape> {
    (
        1..=2usize,
        1..=3usize,
        edge_size(33),
        edge_size(33),
        1..=4usize,
        1..=4usize,
        1..=3usize,
        1..=3usize,
        any::<bool>(),
    )
        .prop_flat_map(|(n, c, h, w, kh, kw, sh, sw, ceil)| {
            (0..=kh / 2, 0..=kw / 2).prop_map(move |(ph, pw)| Pool2dShape {
                n,
                c,
                h,
                w,
                kh,
                kw,
                stride_h: sh,
                stride_w: sw,
                pad_h: ph,
                pad_w: pw,
                ceil_mode: ceil,
            })
        })
        .prop_filter("window fits the padded input", |s| s.check().is_ok())
}

/// A max pool's outputs: values and argmax indices.
type MaxOut = (Vec<f32>, Vec<u32>);

/// Outputs of the fast max pool and of the reference, the fast ones NaN pre-filled.
fn maxpool_both(shape: &Pool2dShape, x: &[f32]) -> (MaxOut, MaxOut) {
    let mut y = vec![f32::NAN; shape.out_len()];
    let mut argmax = vec![u32::MAX; shape.out_len()];
    pool::maxpool2d_forward(shape, x, &mut y, &mut argmax).unwrap();
    let mut y_ref = vec![0.0; shape.out_len()];
    let mut argmax_ref = vec![0; shape.out_len()];
    reference::maxpool2d_forward(shape, x, &mut y_ref, &mut argmax_ref);
    ((y, argmax), (y_ref, argmax_ref))
}

/// The input window of output `(oh, ow)` clipped to the input, computed independently in
/// signed arithmetic: `(rows, cols)` as half-open ranges.
fn window(shape: &Pool2dShape, oh: usize, ow: usize) -> ((usize, usize), (usize, usize)) {
    let clip = |o: usize, k: usize, s: usize, p: usize, size: usize| {
        let start = (o * s) as i64 - p as i64;
        (start.max(0) as usize, ((start + k as i64).min(size as i64)) as usize)
    };
    (
        clip(oh, shape.kh, shape.stride_h, shape.pad_h, shape.h),
        clip(ow, shape.kw, shape.stride_w, shape.pad_w, shape.w),
    )
}

/// Bitwise equality, NaN == NaN (the fast forward paths use the reference's exact operations
/// in the same order, so anything else is a bug).
#[track_caller]
fn assert_same_bits(what: &str, actual: &[f32], expected: &[f32]) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            a.to_bits() == e.to_bits() || (a.is_nan() && e.is_nan()),
            "{what}[{i}]: got {a}, expected {e}"
        );
    }
}

fn dot64(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Max pool forward: same values and indices as the reference (a selection: exact);
    /// every index is inside its plane and its window, and `y` is the input at the index.
    #[test]
    fn maxpool_forward_matches_reference(shape in shapes(), seed in any::<u64>()) {
        let x = uniform(shape.in_len(), seed, -2.0, 2.0);
        let ((y, argmax), (y_ref, argmax_ref)) = maxpool_both(&shape, &x);
        assert_same_bits("y", &y, &y_ref);
        prop_assert_eq!(&argmax, &argmax_ref);
        let (oh_n, ow_n) = (shape.out_h(), shape.out_w());
        for (o, &i) in argmax.iter().enumerate() {
            let plane = o / (oh_n * ow_n);
            let ((r0, r1), (c0, c1)) = window(&shape, o / ow_n % oh_n, o % ow_n);
            let (ih, iw) = (i as usize / shape.w, i as usize % shape.w);
            prop_assert!((i as usize) < shape.h * shape.w, "argmax[{}] = {} outside the plane", o, i);
            prop_assert!((r0..r1).contains(&ih) && (c0..c1).contains(&iw), "argmax[{}] outside its window", o);
            prop_assert_eq!(y[o], x[plane * shape.h * shape.w + i as usize]);
        }
    }

    /// NaN sprinkled into the input (about 1 in 6): NaN outputs exactly where the window holds
    /// a NaN, with the reference's (PyTorch's: last NaN in window order) index.
    #[test]
    fn maxpool_nan_propagates(shape in shapes(), seed in any::<u64>()) {
        let mask = uniform(shape.in_len(), seed ^ 0xA5A5, 0.0, 1.0);
        let x: Vec<f32> = uniform(shape.in_len(), seed, -2.0, 2.0)
            .into_iter()
            .zip(mask)
            .map(|(v, m)| if m < 1.0 / 6.0 { f32::NAN } else { v })
            .collect();
        let ((y, argmax), (y_ref, argmax_ref)) = maxpool_both(&shape, &x);
        assert_same_bits("y", &y, &y_ref);
        prop_assert_eq!(&argmax, &argmax_ref);
        let (oh_n, ow_n, plane) = (shape.out_h(), shape.out_w(), shape.h * shape.w);
        for o in 0..y.len() {
            let ((r0, r1), (c0, c1)) = window(&shape, o / ow_n % oh_n, o % ow_n);
            let xp = &x[o / (oh_n * ow_n) * plane..][..plane];
            let has_nan = (r0..r1).any(|ih| (c0..c1).any(|iw| xp[ih * shape.w + iw].is_nan()));
            prop_assert_eq!(y[o].is_nan(), has_nan, "output {}", o);
            prop_assert_eq!(xp[argmax[o] as usize].is_nan(), has_nan);
        }
    }

    /// Average pool forward: same bits as the reference (same sums in the same order, same
    /// divisor), for both `count_include_pad`.
    #[test]
    fn avgpool_forward_matches_reference(shape in shapes(), cip in any::<bool>(), seed in any::<u64>()) {
        let x = uniform(shape.in_len(), seed, -2.0, 2.0);
        let mut y = vec![f32::NAN; shape.out_len()];
        pool::avgpool2d_forward(&shape, cip, &x, &mut y).unwrap();
        let mut y_ref = vec![0.0; shape.out_len()];
        reference::avgpool2d_forward(&shape, cip, &x, &mut y_ref);
        assert_same_bits("y", &y, &y_ref);
    }

    /// Backwards into NaN pre-filled `dx`: the same adds in the same order as the reference,
    /// so the same bits; and the adjoint identity `<pool(x), dy> = <x, pool_backward(dy)>` in
    /// f64 (max pool with its mask fixed), relative 1e-5: dx sums at most 16 f32 terms.
    #[test]
    fn backward_matches_reference_and_is_the_adjoint(shape in shapes(), cip in any::<bool>(), seed in any::<u64>()) {
        let x = uniform(shape.in_len(), seed, -2.0, 2.0);
        let dy = uniform(shape.out_len(), seed ^ 1, -1.0, 1.0);
        let scale = dot64(&dy, &dy).sqrt() * dot64(&x, &x).sqrt() + 1e-30;

        let ((y, argmax), _) = maxpool_both(&shape, &x);
        let mut dx = vec![f32::NAN; shape.in_len()];
        pool::maxpool2d_backward(&shape, &dy, &argmax, &mut dx).unwrap();
        let mut dx_ref = vec![f32::NAN; shape.in_len()];
        reference::maxpool2d_backward(&shape, &dy, &argmax, &mut dx_ref);
        assert_same_bits("max dx", &dx, &dx_ref);
        let (lhs, rhs) = (dot64(&y, &dy), dot64(&x, &dx));
        prop_assert!((lhs - rhs).abs() <= 1e-5 * scale, "max: <y, dy> = {} but <x, dx> = {}", lhs, rhs);

        let mut y = vec![f32::NAN; shape.out_len()];
        pool::avgpool2d_forward(&shape, cip, &x, &mut y).unwrap();
        pool::avgpool2d_backward(&shape, cip, &dy, &mut dx).unwrap();
        reference::avgpool2d_backward(&shape, cip, &dy, &mut dx_ref);
        assert_same_bits("avg dx", &dx, &dx_ref);
        let (lhs, rhs) = (dot64(&y, &dy), dot64(&x, &dx));
        prop_assert!((lhs - rhs).abs() <= 1e-5 * scale, "avg: <y, dy> = {} but <x, dx> = {}", lhs, rhs);
    }

    /// Global average pool against the f64 reference, on every instruction set of the CPU. The
    /// fast sum runs in 8 or 16 f32 lanes (plus a tail of up to 15 and the lane reduction), so
    /// its error is at most about (h·w/8 + 16) ulp of the mean magnitude (values in [-2, 2)).
    /// Backward: the same `dy / (h·w)` as the reference, exactly; and the adjoint identity.
    #[test]
    fn global_avgpool_matches_reference(n in 0..=3usize, c in edge_size(17), h in edge_size(33), w in edge_size(65), seed in any::<u64>()) {
        let x = uniform(n * c * h * w, seed, -2.0, 2.0);
        let mut y_ref = vec![0.0; n * c];
        reference::global_avgpool_forward(n, c, h, w, &x, &mut y_ref);
        for_each_isa(|| {
            let mut y = vec![f32::NAN; n * c];
            pool::global_avgpool_forward(n, c, h, w, &x, &mut y).unwrap();
            assert_close("y", &y, &y_ref, 0.0, 2.0 * (h * w / 8 + 16) as f32 * f32::EPSILON);
        });
        let mut y = vec![f32::NAN; n * c];
        pool::global_avgpool_forward(n, c, h, w, &x, &mut y).unwrap();

        let dy = uniform(n * c, seed ^ 1, -1.0, 1.0);
        let mut dx = vec![f32::NAN; x.len()];
        pool::global_avgpool_backward(n, c, h, w, &dy, &mut dx).unwrap();
        let mut dx_ref = vec![0.0; x.len()];
        reference::global_avgpool_backward(n, c, h, w, &dy, &mut dx_ref);
        assert_same_bits("dx", &dx, &dx_ref);
        let (lhs, rhs) = (dot64(&y, &dy), dot64(&x, &dx));
        prop_assert!((lhs - rhs).abs() <= 1e-5 * (1.0 + lhs.abs()), "<y, dy> = {} but <x, dx> = {}", lhs, rhs);
    }
}

/// Shapes large enough to split planes across threads (> 2^16 elements), odd sizes included:
/// the fast paths on 1 and 2 threads give the reference's bits (global forward: the same
/// bits on both thread counts, close to the reference).
#[test]
fn parallel_paths_match_reference_on_1_and_2_threads() {
    let shapes = [
        Pool2dShape::square(4, 64, 32, 32, 2, 2, 0),
        Pool2dShape::square(3, 37, 29, 31, 3, 2, 1),
        Pool2dShape { stride_w: 3, kw: 4, pad_w: 2, ..Pool2dShape::square(2, 40, 33, 47, 3, 1, 1) },
    ];
    for shape in shapes {
        let x = uniform(shape.in_len(), 7, -3.0, 3.0);
        let dy = uniform(shape.out_len(), 8, -1.0, 1.0);
        let mut y_ref = vec![0.0; shape.out_len()];
        let mut dx_ref = vec![0.0; shape.in_len()];
        let mut g_ref = vec![0.0; shape.n * shape.c];
        let mut globals = Vec::new();
        for threads in [1, 2] {
            let threads_pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            threads_pool.install(|| {
                let ((y, a), (yr, ar)) = maxpool_both(&shape, &x);
                assert_same_bits("max y", &y, &yr);
                assert_eq!(a, ar, "{shape:?} T{threads}");
                let mut dx = vec![f32::NAN; shape.in_len()];
                pool::maxpool2d_backward(&shape, &dy, &a, &mut dx).unwrap();
                reference::maxpool2d_backward(&shape, &dy, &a, &mut dx_ref);
                assert_same_bits("max dx", &dx, &dx_ref);
                for cip in [false, true] {
                    let mut y = vec![f32::NAN; shape.out_len()];
                    pool::avgpool2d_forward(&shape, cip, &x, &mut y).unwrap();
                    reference::avgpool2d_forward(&shape, cip, &x, &mut y_ref);
                    assert_same_bits("avg y", &y, &y_ref);
                    pool::avgpool2d_backward(&shape, cip, &dy, &mut dx).unwrap();
                    reference::avgpool2d_backward(&shape, cip, &dy, &mut dx_ref);
                    assert_same_bits("avg dx", &dx, &dx_ref);
                }
                let (n, c, h, w) = (shape.n, shape.c, shape.h, shape.w);
                let mut g = vec![f32::NAN; n * c];
                pool::global_avgpool_forward(n, c, h, w, &x, &mut g).unwrap();
                reference::global_avgpool_forward(n, c, h, w, &x, &mut g_ref);
                assert_close("global y", &g, &g_ref, 0.0, 3.0 * (h * w / 8 + 16) as f32 * f32::EPSILON);
                globals.push(g);
                let mut gx = vec![f32::NAN; shape.in_len()];
                pool::global_avgpool_backward(n, c, h, w, &g_ref, &mut gx).unwrap();
                reference::global_avgpool_backward(n, c, h, w, &g_ref, &mut dx_ref);
                assert_same_bits("global dx", &gx, &dx_ref);
            });
        }
        assert_same_bits("global y, T1 vs T2", &globals[0], &globals[1]);
    }
}

/// Ties: the first element of the window in row-major order wins. A constant plane gives
/// each window's first (clipped) element; a hand-built 2x2 window with two equal maxima
/// gives the first of them. Both on a row wide enough for the SIMD body.
#[test]
fn ties_first_max_wins() {
    for shape in [
        Pool2dShape::square(1, 2, 9, 40, 3, 2, 1),
        Pool2dShape::square(1, 1, 8, 64, 2, 2, 0),
        Pool2dShape::square(1, 1, 5, 30, 4, 1, 2),
    ] {
        let x = vec![-0.5f32; shape.in_len()];
        let ((y, argmax), _) = maxpool_both(&shape, &x);
        let (oh_n, ow_n) = (shape.out_h(), shape.out_w());
        for o in 0..y.len() {
            let ((r0, _), (c0, _)) = window(&shape, o / ow_n % oh_n, o % ow_n);
            assert_eq!(y[o], -0.5);
            assert_eq!(argmax[o] as usize, r0 * shape.w + c0, "{shape:?} output {o}");
        }
    }
    // 2x2 windows, stride 2 over a 2x18 plane: window ow holds columns 2ow, 2ow+1 of both
    // rows; put the maximum 1.0 at (0, 2ow+1) and (1, 2ow): the first in row-major order is
    // (0, 2ow+1).
    let shape = Pool2dShape::square(1, 1, 2, 18, 2, 2, 0);
    let mut x = vec![-1.0f32; 36];
    for ow in 0..9 {
        x[2 * ow + 1] = 1.0;
        x[18 + 2 * ow] = 1.0;
    }
    let ((y, argmax), _) = maxpool_both(&shape, &x);
    assert_eq!(y, vec![1.0; 9]);
    assert_eq!(argmax, (0..9).map(|ow| 2 * ow + 1).collect::<Vec<u32>>());
}

/// Hand-built cases of PyTorch's CPU rule (expected values worked out by hand from that rule,
/// the snippets show the equivalent PyTorch call): NaN wins over larger values and the last
/// NaN is recorded;
/// a window of -inf keeps its first index; padding (-inf) is never chosen even when every
/// input is negative.
#[test]
fn maxpool_nan_inf_and_padding() {
    // torch.nn.functional.max_pool2d(torch.tensor([[[[nan, 5., nan, 1.]]]]).view(1,1,2,2),
    // 2, return_indices=True) -> (nan, 2)
    let shape = Pool2dShape::square(1, 1, 2, 2, 2, 2, 0);
    let ((y, argmax), _) = maxpool_both(&shape, &[f32::NAN, 5.0, f32::NAN, 1.0]);
    assert!(y[0].is_nan());
    assert_eq!(argmax, [2]);
    let ((y, argmax), _) = maxpool_both(&shape, &[f32::NEG_INFINITY; 4]);
    assert_eq!((y[0], argmax[0]), (f32::NEG_INFINITY, 0));
    // The same on a 2x20 plane (10 outputs: one 8-lane SIMD block and 2 scalar): even windows
    // hold NaN at (0, 2ow) and (1, 2ow + 1) -> the last, 20 + 2ow + 1; odd windows hold -inf
    // only -> their first element, 2ow.
    let shape = Pool2dShape::square(1, 1, 2, 20, 2, 2, 0);
    let mut x = vec![f32::NEG_INFINITY; 40];
    for ow in (0..10).step_by(2) {
        x[2 * ow] = f32::NAN;
        x[2 * ow + 1] = 7.0;
        x[20 + 2 * ow + 1] = f32::NAN;
    }
    let ((y, argmax), _) = maxpool_both(&shape, &x);
    for ow in 0..10 {
        let expected = if ow % 2 == 0 { 20 + 2 * ow + 1 } else { 2 * ow };
        assert_eq!(argmax[ow] as usize, expected, "output {ow}");
        assert_eq!(y[ow].is_nan(), ow % 2 == 0, "output {ow}");
        assert!(ow % 2 == 0 || y[ow] == f32::NEG_INFINITY);
    }
    // 3x3 stride 1 pad 1 over an all-negative 4x20 plane: outputs are inputs, never 0.
    let shape = Pool2dShape::square(1, 1, 4, 20, 3, 1, 1);
    let x = uniform(shape.in_len(), 3, -2.0, -1.0);
    let ((y, argmax), _) = maxpool_both(&shape, &x);
    for (o, (&v, &i)) in y.iter().zip(&argmax).enumerate() {
        assert!(v < 0.0, "output {o} = {v}: padding was chosen");
        assert_eq!(v, x[i as usize]);
    }
}

/// Average pool divisors on PyTorch calls (expected values worked out by hand from PyTorch's
/// divisor rule; the snippets show the equivalent call).
#[test]
fn avgpool_divisors_match_pytorch() {
    // F.avg_pool2d(torch.tensor([[[[1., 2.], [3., 4.]]]]), 2, 1, 1, count_include_pad=True)
    //   -> [[0.25, 0.75, 0.5], [1.0, 2.5, 1.5], [0.75, 1.75, 1.0]]
    // count_include_pad=False -> [[1, 1.5, 2], [2, 2.5, 3], [3, 3.5, 4]]
    let shape = Pool2dShape::square(1, 1, 2, 2, 2, 1, 1);
    let x = [1.0, 2.0, 3.0, 4.0];
    let mut y = [f32::NAN; 9];
    pool::avgpool2d_forward(&shape, true, &x, &mut y).unwrap();
    assert_eq!(y, [0.25, 0.75, 0.5, 1.0, 2.5, 1.5, 0.75, 1.75, 1.0]);
    pool::avgpool2d_forward(&shape, false, &x, &mut y).unwrap();
    assert_eq!(y, [1.0, 1.5, 2.0, 2.0, 2.5, 3.0, 3.0, 3.5, 4.0]);
    // ceil_mode: F.avg_pool2d(torch.arange(36.).view(1,1,6,6), 3, 2, 0, ceil_mode=True) is
    // 3x3; the last window is clipped to rows/cols 4..6 and divided by 4 (its part inside
    // the padded input), with either count_include_pad: y[2][2] = (28+29+34+35)/4 = 31.5.
    let shape = Pool2dShape::square(1, 1, 6, 6, 3, 2, 0).with_ceil_mode(true);
    assert_eq!((shape.out_h(), shape.out_w()), (3, 3));
    let x: Vec<f32> = (0..36).map(|v| v as f32).collect();
    let mut y = [f32::NAN; 9];
    for cip in [false, true] {
        pool::avgpool2d_forward(&shape, cip, &x, &mut y).unwrap();
        assert_eq!(y[8], 31.5);
        assert_eq!(y[0], 7.0); // mean of rows 0..3, cols 0..3
    }
}

/// Output sizes: floor by default; ceil_mode rounds up but drops a window starting in the
/// right padding (PyTorch's formula: MaxPool2d(2, 3, 1, ceil_mode=True) on 5x5 is 2x2).
#[test]
fn output_sizes_follow_pytorch() {
    let s = Pool2dShape::square(1, 1, 32, 32, 2, 2, 0);
    assert_eq!((s.out_h(), s.out_w(), s.out_len()), (16, 16, 256));
    let s = Pool2dShape::square(1, 1, 5, 5, 2, 2, 0);
    assert_eq!((s.out_h(), s.with_ceil_mode(true).out_h()), (2, 3));
    let s = Pool2dShape::square(1, 1, 5, 5, 2, 3, 1).with_ceil_mode(true);
    assert_eq!(s.out_h(), 2);
    let s = Pool2dShape { kw: 3, stride_w: 1, pad_w: 1, ..Pool2dShape::square(2, 3, 7, 9, 3, 2, 0) };
    assert_eq!((s.out_h(), s.out_w(), s.in_len(), s.out_len()), (3, 9, 2 * 3 * 7 * 9, 2 * 3 * 3 * 9));
}

/// Pooling written in f64 from the definition, for the gradient checks: max (`max = true`)
/// or average with `count_include_pad`.
fn pool_f64(shape: &Pool2dShape, max: bool, cip: bool, x: &[f64]) -> Vec<f64> {
    let (oh_n, ow_n, plane) = (shape.out_h(), shape.out_w(), shape.h * shape.w);
    let mut y = Vec::new();
    for p in 0..shape.n * shape.c {
        for oh in 0..oh_n {
            for ow in 0..ow_n {
                let ((r0, r1), (c0, c1)) = window(shape, oh, ow);
                let vals = (r0..r1).flat_map(|ih| (c0..c1).map(move |iw| x[p * plane + ih * shape.w + iw]));
                if max {
                    y.push(vals.fold(f64::NEG_INFINITY, f64::max));
                } else {
                    // With padding counted, the divisor is the window clipped to the padded
                    // input: rows oh·s - p .. min(oh·s - p + k, h + p).
                    let padded = |o: usize, k: usize, s: usize, pad: usize, size: usize| {
                        ((o * s + k).min(size + 2 * pad) - o * s) as f64
                    };
                    let div = if cip {
                        padded(oh, shape.kh, shape.stride_h, shape.pad_h, shape.h)
                            * padded(ow, shape.kw, shape.stride_w, shape.pad_w, shape.w)
                    } else {
                        ((r1 - r0) * (c1 - c0)) as f64
                    };
                    y.push(vals.sum::<f64>() / div);
                }
            }
        }
    }
    y
}

/// `dL/dx` for `L = Σ dy·pool(x)` by central differences in f64.
fn numeric_grad(shape: &Pool2dShape, max: bool, cip: bool, x: &[f32], dy: &[f32], eps: f64) -> Vec<f32> {
    let mut x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let loss = |x: &[f64]| -> f64 {
        pool_f64(shape, max, cip, x).iter().zip(dy).map(|(y, &d)| y * f64::from(d)).sum()
    };
    (0..x.len())
        .map(|i| {
            let orig = x64[i];
            x64[i] = orig + eps;
            let up = loss(&x64);
            x64[i] = orig - eps;
            let down = loss(&x64);
            x64[i] = orig;
            ((up - down) / (2.0 * eps)) as f32
        })
        .collect()
}

/// Gradient checks: max pool on inputs without ties (a shuffled grid with spacing 0.1, both
/// signs, so a 1e-3 step never changes a window's max) and avg pool with both divisors,
/// including overlap, padding and ceil_mode. Tolerance 1e-5: the kernels' dx sums at most 16
/// f32 terms of size <= 1; the f64 central difference of a piecewise-linear loss is exact to
/// ~1e-12.
#[test]
fn gradients_match_central_differences() {
    let shapes = [
        Pool2dShape::square(2, 2, 7, 19, 3, 2, 1),
        Pool2dShape::square(1, 3, 6, 17, 2, 2, 0).with_ceil_mode(true),
        Pool2dShape { kw: 4, stride_w: 1, pad_w: 2, ..Pool2dShape::square(1, 2, 5, 23, 2, 1, 1) },
    ];
    for shape in shapes {
        let keys = uniform(shape.in_len(), 11, 0.0, 1.0);
        let mut order: Vec<usize> = (0..shape.in_len()).collect();
        order.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
        let mut x = vec![0.0f32; shape.in_len()];
        for (rank, &i) in order.iter().enumerate() {
            x[i] = 0.1 * rank as f32 - 0.05 * shape.in_len() as f32;
        }
        let dy = uniform(shape.out_len(), 12, -1.0, 1.0);

        let mut y = vec![f32::NAN; shape.out_len()];
        let mut argmax = vec![u32::MAX; shape.out_len()];
        pool::maxpool2d_forward(&shape, &x, &mut y, &mut argmax).unwrap();
        let mut dx = vec![f32::NAN; shape.in_len()];
        pool::maxpool2d_backward(&shape, &dy, &argmax, &mut dx).unwrap();
        assert_close("max dx", &dx, &numeric_grad(&shape, true, false, &x, &dy, 1e-3), 1e-5, 1e-5);
        // Each input is in at most kh·kw windows, so at least out_len / (kh·kw) get a gradient.
        let nonzero = dx.iter().filter(|&&v| v != 0.0).count();
        assert!(nonzero >= shape.out_len() / (shape.kh * shape.kw), "mostly zero dx: {nonzero}");

        let x = uniform(shape.in_len(), 13, -2.0, 2.0);
        for cip in [false, true] {
            pool::avgpool2d_backward(&shape, cip, &dy, &mut dx).unwrap();
            assert_close("avg dx", &dx, &numeric_grad(&shape, false, cip, &x, &dy, 1e-3), 1e-5, 1e-5);
        }
    }
}

/// `n = 0` or `c = 0` is a no-op on empty slices.
#[test]
fn empty_batch_is_a_no_op() {
    for shape in [Pool2dShape::square(0, 3, 8, 8, 2, 2, 0), Pool2dShape::square(2, 0, 8, 8, 2, 2, 0)] {
        assert_eq!((shape.in_len(), shape.out_len()), (0, 0));
        pool::maxpool2d_forward(&shape, &[], &mut [], &mut []).unwrap();
        pool::maxpool2d_backward(&shape, &[], &[], &mut []).unwrap();
        pool::avgpool2d_forward(&shape, true, &[], &mut []).unwrap();
        pool::avgpool2d_backward(&shape, false, &[], &mut []).unwrap();
        pool::global_avgpool_forward(shape.n, shape.c, 8, 8, &[], &mut []).unwrap();
        pool::global_avgpool_backward(shape.n, shape.c, 8, 8, &[], &mut []).unwrap();
    }
}

/// The `what` of a shape or length error.
fn what(err: KernelError) -> String {
    match err {
        KernelError::Shape { what, .. }
        | KernelError::Length { what, .. }
        | KernelError::Argument { what, .. } => what,
    }
}

/// Runs every 2-D kernel on `shape` with slices of the lengths it implies and returns the
/// errors' names (all must fail).
fn all_errors(shape: &Pool2dShape) -> Vec<String> {
    let (xl, yl) = (shape.in_len().min(1 << 20), shape.out_len().min(1 << 20));
    let (x, mut y, mut a) = (vec![0.0; xl], vec![0.0; yl], vec![0u32; yl]);
    let mut dx = vec![0.0; xl];
    vec![
        what(pool::maxpool2d_forward(shape, &x, &mut y, &mut a).unwrap_err()),
        what(pool::maxpool2d_backward(shape, &y, &a, &mut dx).unwrap_err()),
        what(pool::avgpool2d_forward(shape, true, &x, &mut y).unwrap_err()),
        what(pool::avgpool2d_backward(shape, false, &y, &mut dx).unwrap_err()),
    ]
}

#[test]
fn bad_shapes_are_rejected_naming_the_argument() {
    let good = Pool2dShape::square(2, 3, 8, 8, 2, 2, 1);
    good.check().unwrap();
    let cases = [
        (Pool2dShape { h: 0, ..good }, "h"),
        (Pool2dShape { w: 0, ..good }, "w"),
        (Pool2dShape { kh: 0, pad_h: 0, ..good }, "kh"),
        (Pool2dShape { kw: 0, pad_w: 0, ..good }, "kw"),
        (Pool2dShape { stride_h: 0, ..good }, "stride_h"),
        (Pool2dShape { stride_w: 0, ..good }, "stride_w"),
        (Pool2dShape { pad_h: 2, ..good }, "pad_h"),
        (Pool2dShape { pad_w: 2, ..good }, "pad_w"),
        (Pool2dShape { h: 1, kh: 4, pad_h: 1, ..good }, "kh"),
        (Pool2dShape { w: 2, kw: 5, pad_w: 1, ..good }, "kw"),
        (Pool2dShape { h: 1, kh: 1 << 34, pad_h: 1 << 33, ..good }, "h + 2·pad_h"),
        (Pool2dShape { w: usize::MAX, kw: 4, pad_w: 2, ..good }, "w + 2·pad_w"),
        (Pool2dShape { h: 1 << 17, w: 1 << 16, ..good }, "plane h·w"),
        (Pool2dShape { n: usize::MAX / 4, c: 4, ..good }, "x (n, c, h, w)"),
        // 1x1 planes pooled 2x2 with pad 1 give 2x2 outputs: n·c·h·w fits, n·c·4 does not.
        (Pool2dShape::square(usize::MAX / 2, 1, 1, 1, 2, 1, 1), "y (n, c, out_h, out_w)"),
    ];
    for (shape, name) in cases {
        assert_eq!(what(shape.check().unwrap_err()), name, "{shape:?}");
        for err in all_errors(&shape) {
            assert_eq!(err, name, "{shape:?}");
        }
    }
}

#[test]
fn wrong_lengths_are_rejected_naming_the_slice() {
    let shape = Pool2dShape::square(2, 3, 8, 8, 2, 2, 0);
    let (xl, yl) = (shape.in_len(), shape.out_len());
    let (x, y, a) = (vec![0.0; xl], vec![0.0; yl], vec![0u32; yl]);
    let starts = |err: KernelError, prefix: &str| {
        assert!(matches!(err, KernelError::Length { .. }), "{err:?}");
        let name = what(err);
        assert!(name.starts_with(prefix), "{name} should name {prefix}");
    };
    starts(
        pool::maxpool2d_forward(&shape, &x[1..], &mut y.clone(), &mut a.clone()).unwrap_err(),
        "x (n, c, h, w)",
    );
    starts(
        pool::maxpool2d_forward(&shape, &x, &mut vec![0.0; yl + 1], &mut a.clone()).unwrap_err(),
        "y (n, c",
    );
    starts(pool::maxpool2d_forward(&shape, &x, &mut y.clone(), &mut vec![0; yl - 1]).unwrap_err(), "argmax");
    starts(pool::maxpool2d_backward(&shape, &y[1..], &a, &mut x.clone()).unwrap_err(), "dy");
    starts(pool::maxpool2d_backward(&shape, &y, &a[1..], &mut x.clone()).unwrap_err(), "argmax");
    starts(pool::maxpool2d_backward(&shape, &y, &a, &mut x[1..].to_vec()).unwrap_err(), "dx");
    starts(pool::avgpool2d_forward(&shape, true, &x[1..], &mut y.clone()).unwrap_err(), "x");
    starts(pool::avgpool2d_forward(&shape, true, &x, &mut y[1..].to_vec()).unwrap_err(), "y");
    starts(pool::avgpool2d_backward(&shape, true, &y[1..], &mut x.clone()).unwrap_err(), "dy");
    starts(pool::avgpool2d_backward(&shape, true, &y, &mut x[1..].to_vec()).unwrap_err(), "dx");
    starts(pool::global_avgpool_forward(2, 3, 8, 8, &x[1..], &mut [0.0; 6]).unwrap_err(), "x");
    starts(pool::global_avgpool_forward(2, 3, 8, 8, &x, &mut [0.0; 5]).unwrap_err(), "y");
    starts(pool::global_avgpool_backward(2, 3, 8, 8, &[0.0; 7], &mut x.clone()).unwrap_err(), "dy");
    starts(pool::global_avgpool_backward(2, 3, 8, 8, &[0.0; 6], &mut x[1..].to_vec()).unwrap_err(), "dx");
}

#[test]
fn global_avgpool_bad_shapes_are_rejected() {
    let mut y = [0.0; 6];
    assert_eq!(what(pool::global_avgpool_forward(2, 3, 0, 8, &[], &mut y).unwrap_err()), "h");
    assert_eq!(what(pool::global_avgpool_backward(2, 3, 8, 0, &y, &mut []).unwrap_err()), "w");
    let err = pool::global_avgpool_forward(usize::MAX, 2, 2, 2, &[], &mut y).unwrap_err();
    assert!(matches!(err, KernelError::Shape { .. }) && what(err) == "x", "overflow must be a shape error");
}

/// An argmax index outside its plane is an `Argument` error naming the first bad position,
/// on the sequential and the parallel path.
#[test]
fn maxpool_backward_rejects_indices_outside_the_plane() {
    for shape in [Pool2dShape::square(1, 2, 4, 4, 2, 2, 0), Pool2dShape::square(4, 64, 32, 32, 2, 2, 0)] {
        let x = uniform(shape.in_len(), 5, -1.0, 1.0);
        let ((_, mut argmax), _) = maxpool_both(&shape, &x);
        let dy = vec![1.0; shape.out_len()];
        let bad = shape.out_len() - 3;
        argmax[bad] = (shape.h * shape.w) as u32;
        argmax[shape.out_len() - 1] = u32::MAX;
        let mut dx = vec![0.0; shape.in_len()];
        let err = pool::maxpool2d_backward(&shape, &dy, &argmax, &mut dx).unwrap_err();
        assert!(matches!(err, KernelError::Argument { .. }), "{err:?}");
        assert_eq!(what(err), format!("argmax[{bad}]"));
    }
}

/// Every instruction set the tiled fast path can run here (each is forced in turn).
fn isas() -> Vec<Isa> {
    Isa::available()
}

/// Tiled shapes (`k x k` windows, stride `k`, no padding; `k` = 2 mostly, 3 too): sizes from
/// `edge_size(70)`, which straddles the lane boundaries of the SIMD bodies (rows of 8 or 16
/// outputs, i.e. widths 16/17 and 32/33, and 64/65), odd sizes leaving an uncovered last
/// row or column; `ceil_mode` sometimes, which clips the last window of odd sizes (then the
/// general path runs).
fn tiled_shapes() -> impl Strategy<Value = Pool2dShape> {
    (
        1..=2usize,
        1..=3usize,
        edge_size(70),
        edge_size(70),
        prop_oneof![3 => Just(2usize), 1 => Just(3usize)],
        any::<bool>(),
    )
        .prop_map(|(n, c, h, w, k, ceil)| Pool2dShape::square(n, c, h, w, k, k, 0).with_ceil_mode(ceil))
        .prop_filter("window fits the input", |s| s.check().is_ok())
}

/// Inputs of one of four kinds: uniform in [-2, 2); ties (values from {-1, -0, +0, 1}, so
/// most windows hold equal maxima and signed zeros); NaN sprinkled into uniform values (1 in
/// 6); ties with NaN and ±inf.
fn data(len: usize, kind: u8, seed: u64) -> Vec<f32> {
    let values = uniform(len, seed, -2.0, 2.0);
    let picks = uniform(len, seed ^ 0x5A5A, 0.0, 1.0);
    let tie = |p: f32| [-1.0, -0.0, 0.0, 1.0][((p * 4.0) as usize).min(3)];
    values
        .into_iter()
        .zip(picks)
        .map(|(v, p)| match kind {
            0 => v,
            1 => tie(p),
            2 if p < 1.0 / 6.0 => f32::NAN,
            2 => v,
            _ if p < 0.1 => f32::NAN,
            _ if p < 0.2 => f32::INFINITY,
            _ if p < 0.3 => f32::NEG_INFINITY,
            _ => tie(v.abs() / 2.0),
        })
        .collect()
}

/// Every pooling pass on `isa` against the reference, outputs NaN pre-filled: the same bits
/// and indices (max pool only compares and copies; average pool adds in the reference's
/// order and divides by the same k², backward writes the reference's `0 + g`: tolerance 0).
fn check_all_passes(isa: Isa, shape: &Pool2dShape, x: &[f32], dy: &[f32]) {
    let mut y = vec![f32::NAN; shape.out_len()];
    let mut argmax = vec![u32::MAX; shape.out_len()];
    on_isa(isa, || pool::maxpool2d_forward(shape, x, &mut y, &mut argmax)).unwrap();
    let mut y_ref = vec![0.0; shape.out_len()];
    let mut argmax_ref = vec![0; shape.out_len()];
    reference::maxpool2d_forward(shape, x, &mut y_ref, &mut argmax_ref);
    assert_same_bits(&format!("{isa:?} max y"), &y, &y_ref);
    assert_eq!(argmax, argmax_ref, "{isa:?} argmax {shape:?}");

    let mut dx = vec![f32::NAN; shape.in_len()];
    on_isa(isa, || pool::maxpool2d_backward(shape, dy, &argmax, &mut dx)).unwrap();
    let mut dx_ref = vec![f32::NAN; shape.in_len()];
    reference::maxpool2d_backward(shape, dy, &argmax, &mut dx_ref);
    assert_same_bits(&format!("{isa:?} max dx"), &dx, &dx_ref);

    for cip in [false, true] {
        y.fill(f32::NAN);
        on_isa(isa, || pool::avgpool2d_forward(shape, cip, x, &mut y)).unwrap();
        reference::avgpool2d_forward(shape, cip, x, &mut y_ref);
        assert_same_bits(&format!("{isa:?} avg y"), &y, &y_ref);
        dx.fill(f32::NAN);
        on_isa(isa, || pool::avgpool2d_backward(shape, cip, dy, &mut dx)).unwrap();
        reference::avgpool2d_backward(shape, cip, dy, &mut dx_ref);
        assert_same_bits(&format!("{isa:?} avg dx"), &dx, &dx_ref);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The tiled fast path on every instruction set gives the reference's bits (ties, signed
    /// zeros, NaN and infinities included: first max wins, the last NaN is recorded).
    #[test]
    fn tiled_paths_match_reference_on_every_isa(shape in tiled_shapes(), kind in 0..4u8, seed in any::<u64>()) {
        let x = data(shape.in_len(), kind, seed);
        let dy = data(shape.out_len(), kind.min(1), seed ^ 1);
        for isa in isas() {
            check_all_passes(isa, &shape, &x, &dy);
        }
    }
}

/// LeNet-5's pools (batch 64) and a 3x3 stride-3 pool, on every instruction set and on 1 and
/// 2 threads (the larger ones split planes across threads): the reference's bits.
#[test]
fn lenet_shapes_match_reference_on_every_isa_and_thread_count() {
    let shapes = [
        Pool2dShape::square(64, 6, 28, 28, 2, 2, 0),
        Pool2dShape::square(64, 16, 10, 10, 2, 2, 0),
        Pool2dShape::square(8, 16, 31, 29, 3, 3, 0),
        Pool2dShape::square(3, 5, 33, 65, 2, 2, 0),
    ];
    for shape in shapes {
        for kind in [0, 3] {
            let x = data(shape.in_len(), kind, 21);
            let dy = data(shape.out_len(), 0, 22);
            for threads in [1, 2] {
                let threads_pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                threads_pool
                    .install(|| isas().into_iter().for_each(|isa| check_all_passes(isa, &shape, &x, &dy)));
            }
        }
    }
}

/// Hand-built 2x2 windows on each instruction set, in rows of 5 outputs (two rows per
/// AVX-512 vector) and 14 (one row piece per vector): in window `ow` the maximum 1.0 sits at
/// position `ow % 4` and at every later position from `ow % 3` on, so the first of the tied
/// maxima wins; NaN at positions 1 and 3 of every 5th window, where the last (3) wins.
#[test]
fn tiled_ties_and_nan_on_every_isa() {
    for w in [10, 28] {
        let shape = Pool2dShape::square(2, 1, 4, w, 2, 2, 0);
        let (out_h, out_w) = (shape.out_h(), shape.out_w());
        let mut x = vec![-1.0f32; shape.in_len()];
        let position = |plane: usize, oh: usize, ow: usize, p: usize| {
            plane * 4 * w + (2 * oh + p / 2) * w + 2 * ow + p % 2
        };
        let mut expected = Vec::new();
        for plane in 0..2 {
            for oh in 0..out_h {
                for ow in 0..out_w {
                    let o = (plane * out_h + oh) * out_w + ow;
                    let first = (ow % 4).min(ow % 3);
                    for p in [ow % 4, ow % 3, 3] {
                        x[position(plane, oh, ow, p)] = 1.0;
                    }
                    let best = if o % 5 == 0 {
                        x[position(plane, oh, ow, 1)] = f32::NAN;
                        x[position(plane, oh, ow, 3)] = f32::NAN;
                        3
                    } else {
                        first
                    };
                    expected.push((position(0, oh, ow, best) as u32, o % 5 == 0));
                }
            }
        }
        for isa in isas() {
            let mut y = vec![0.0; shape.out_len()];
            let mut argmax = vec![0; shape.out_len()];
            on_isa(isa, || pool::maxpool2d_forward(&shape, &x, &mut y, &mut argmax)).unwrap();
            for (o, &(index, nan)) in expected.iter().enumerate() {
                assert_eq!(argmax[o], index, "{isa:?} w {w} output {o}");
                assert_eq!(y[o].is_nan(), nan, "{isa:?} w {w} output {o}");
                assert!(nan || y[o] == 1.0);
            }
        }
    }
}

/// Backward through a mask whose indices are inside their plane but outside their window
/// (not what forward writes, but accepted): the tiled path falls back to the scatter, so
/// `dx` still matches the reference (those gradients land where the indices point).
#[test]
fn tiled_backward_with_foreign_indices_matches_reference() {
    for shape in [Pool2dShape::square(2, 3, 10, 10, 2, 2, 0), Pool2dShape::square(1, 2, 6, 40, 2, 2, 0)] {
        let x = uniform(shape.in_len(), 31, -1.0, 1.0);
        let dy = uniform(shape.out_len(), 32, -1.0, 1.0);
        let ((_, mut argmax), _) = maxpool_both(&shape, &x);
        // Output 7 of the second plane points at window 0's first element.
        argmax[shape.out_h() * shape.out_w() + 7] = 0;
        let mut dx_ref = vec![f32::NAN; shape.in_len()];
        reference::maxpool2d_backward(&shape, &dy, &argmax, &mut dx_ref);
        for isa in isas() {
            let mut dx = vec![f32::NAN; shape.in_len()];
            on_isa(isa, || pool::maxpool2d_backward(&shape, &dy, &argmax, &mut dx)).unwrap();
            assert_same_bits(&format!("{isa:?} dx"), &dx, &dx_ref);
        }
    }
}

/// An instruction set the CPU cannot run is an `Argument` error naming `isa` (checked only
/// for those this CPU lacks); every one it has runs.
#[test]
fn unsupported_isa_is_rejected() {
    let shape = Pool2dShape::square(1, 1, 4, 4, 2, 2, 0);
    let (x, mut y, mut a, mut dx) = (vec![1.0; 16], vec![0.0; 4], vec![0u32; 4], vec![0.0; 16]);
    for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
        // Forcing `isa` is itself the error where the CPU lacks it.
        let results = [
            with_isa(isa, || pool::maxpool2d_forward(&shape, &x, &mut y, &mut a)).and_then(|r| r),
            with_isa(isa, || pool::maxpool2d_backward(&shape, &y.clone(), &a.clone(), &mut dx))
                .and_then(|r| r),
            with_isa(isa, || pool::avgpool2d_forward(&shape, true, &x, &mut y)).and_then(|r| r),
            with_isa(isa, || pool::avgpool2d_backward(&shape, true, &y.clone(), &mut dx)).and_then(|r| r),
        ];
        for result in results {
            if isa.is_supported() {
                result.unwrap();
            } else {
                let err = result.unwrap_err();
                assert!(matches!(err, KernelError::Argument { .. }), "{err:?}");
                assert_eq!(what(err), "isa");
            }
        }
    }
}
