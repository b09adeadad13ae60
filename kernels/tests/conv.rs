//! Convolution kernels against the direct references, adjoint identities, f64 central
//! differences, overwrite/accumulate rules and every argument check.
//!
//! Tolerances: the references accumulate in f64, the fast paths sum `terms` products of
//! values in [-1, 1] in f32 (in GEMM order). The rounding of such a sum is bounded by
//! `terms·u·Σ|products|` (u = 2⁻²⁴) and in practice stays near `√terms·u·√Σ products²`; we
//! allow `atol = 1e-6·terms` (about 16·u per term) plus `rtol = 1e-5`, far below the values'
//! own magnitude (`≈ √terms`), so a wrong tap or index still fails.

mod common;

use common::{assert_close, cpu_isas, edge_size, on_isa, two_threads, uniform};
use keel_kernels::conv::{
    col2im, conv2d_backward_data, conv2d_backward_weight, conv2d_forward, conv2d_forward_fused,
    conv2d_workspace_len, im2col, plan, reference, Conv2dShape, ConvPass, ConvPath,
};
use keel_kernels::gemm::Activation;
use keel_kernels::isa::Isa;
use keel_kernels::parallel::MIN_PARALLEL_MULADDS;
use keel_kernels::KernelError;
use proptest::prelude::*;

/// A random valid shape: batch 1..3, 1 or 2 groups, 1..4 channels per group, sizes from
/// `edge_size` (1, primes, ...), kernel 1..5, stride 1..3, pad 0..2, dilation 1..2. The input
/// is grown when needed so that the dilated window fits the padded input.
fn conv_shape() -> impl Strategy<Value = Conv2dShape> {
    conv_shape_within(3, 4, 17)
}

/// A random valid shape of at least `MIN_PARALLEL_MULADDS` multiply-adds and two images, the
/// size at which a pass runs its images in parallel on a pool of two threads: the ranges of
/// [`conv_shape`] with up to 8 channels per group and sides up to 33, then as many images as
/// reach the threshold (2 to 48; shapes that would need more are drawn again).
fn parallel_conv_shape() -> impl Strategy<Value = Conv2dShape> {
    conv_shape_within(1, 8, 33)
        .prop_map(|s| Conv2dShape { n: MIN_PARALLEL_MULADDS.div_ceil(s.muladds()).max(2), ..s })
        .prop_filter("at most 48 images", |s| s.n <= 48)
}

/// A random valid shape as [`conv_shape`] describes, with at most `max_n` images, `max_cg`
/// channels per group (in and out) and sides drawn from `edge_size(max_side)`.
fn conv_shape_within(max_n: usize, max_cg: usize, max_side: usize) -> impl Strategy<Value = Conv2dShape> {
    (
        (1usize..=max_n, 1usize..=2, 1usize..=max_cg, 1usize..=max_cg),
        (edge_size(max_side), edge_size(max_side)),
        (1usize..=5, 1usize..=5, 1usize..=3, 1usize..=3),
        (0usize..=2, 0usize..=2, 1usize..=2, 1usize..=2),
    )
        .prop_map(|((n, groups, cg, cog), (h, w), (kh, kw, sh, sw), (ph, pw, dh, dw))| {
            let fit = |size: usize, k: usize, pad: usize, dil: usize| {
                size.max((dil * (k - 1) + 1).saturating_sub(2 * pad)).max(1)
            };
            Conv2dShape {
                n,
                c_in: groups * cg,
                h: fit(h, kh, ph, dh),
                w: fit(w, kw, pw, dw),
                c_out: groups * cog,
                kh,
                kw,
                stride_h: sh,
                stride_w: sw,
                pad_h: ph,
                pad_w: pw,
                dilation_h: dh,
                dilation_w: dw,
                groups,
            }
        })
}

/// A random pointwise shape (1x1, stride 1, no padding): the path that skips im2col.
fn pointwise_shape() -> impl Strategy<Value = Conv2dShape> {
    (1usize..=3, 1usize..=2, 1usize..=6, 1usize..=6, edge_size(33), edge_size(33)).prop_map(
        |(n, groups, cg, cog, h, w)| {
            Conv2dShape::new(n, groups * cg, h, w, groups * cog, 1, 1).with_groups(groups)
        },
    )
}

/// Whether any window tap lands inside the input (a tiny input with a large padding and
/// stride can see only padding: PyTorch accepts that, and every output is then the bias).
fn reads_input(s: &Conv2dShape) -> bool {
    let ones = vec![1.0; s.c_in / s.groups * s.h * s.w];
    let mut col = vec![0.0; s.col_len()];
    reference::im2col(s, &ones, &mut col).unwrap();
    col.contains(&1.0)
}

/// Products summed into one output of the forward pass.
fn forward_terms(s: &Conv2dShape) -> usize {
    s.col_rows()
}

fn tol(terms: usize) -> f32 {
    1e-6 * terms as f32
}

fn check_forward(s: &Conv2dShape, seed: u64, with_bias: bool, workspace_len: usize) {
    let x = uniform(s.x_len(), seed, -1.0, 1.0);
    let weight = uniform(s.weight_len(), seed + 1, -1.0, 1.0);
    let bias = uniform(s.c_out, seed + 2, -1.0, 1.0);
    let bias = with_bias.then_some(bias.as_slice());
    let mut expected = vec![0.0; s.y_len()];
    reference::conv2d_forward(s, &x, &weight, bias, &mut expected).unwrap();
    let mut y = vec![f32::NAN; s.y_len()];
    let mut workspace = vec![f32::NAN; workspace_len];
    conv2d_forward(s, &x, &weight, bias, &mut y, &mut workspace).unwrap();
    assert_close(&format!("y {s:?}"), &y, &expected, 1e-5, tol(forward_terms(s)));
    assert!(
        with_bias || reads_input(s) == expected.iter().any(|&v| v != 0.0),
        "zero outputs only if all padding"
    );
}

fn check_backward_data(s: &Conv2dShape, seed: u64, workspace_len: usize) {
    let dy = uniform(s.y_len(), seed, -1.0, 1.0);
    let weight = uniform(s.weight_len(), seed + 1, -1.0, 1.0);
    let mut expected = vec![0.0; s.x_len()];
    reference::conv2d_backward_data(s, &dy, &weight, &mut expected).unwrap();
    let mut dx = vec![f32::NAN; s.x_len()];
    let mut workspace = vec![f32::NAN; workspace_len];
    conv2d_backward_data(s, &dy, &weight, &mut dx, &mut workspace).unwrap();
    // Each dx element sums at most c_out/groups·kh·kw products.
    assert_close(&format!("dx {s:?}"), &dx, &expected, 1e-5, tol(s.c_out / s.groups * s.kh * s.kw));
    assert_eq!(reads_input(s), expected.iter().any(|&v| v != 0.0), "zero gradients only if all padding");
}

fn check_backward_weight(s: &Conv2dShape, seed: u64, with_bias: bool, workspace_len: usize) {
    let x = uniform(s.x_len(), seed, -1.0, 1.0);
    let dy = uniform(s.y_len(), seed + 1, -1.0, 1.0);
    // Non-zero starting gradients: the kernel must add to them.
    let dweight0 = uniform(s.weight_len(), seed + 2, -1.0, 1.0);
    let dbias0 = uniform(s.c_out, seed + 3, -1.0, 1.0);
    let (mut expected_w, mut expected_b) = (dweight0.clone(), dbias0.clone());
    reference::conv2d_backward_weight(s, &x, &dy, &mut expected_w, with_bias.then_some(&mut expected_b[..]))
        .unwrap();
    let (mut dweight, mut dbias) = (dweight0, dbias0.clone());
    let mut workspace = vec![f32::NAN; workspace_len];
    conv2d_backward_weight(s, &x, &dy, &mut dweight, with_bias.then_some(&mut dbias[..]), &mut workspace)
        .unwrap();
    // Each weight gradient sums n·out_h·out_w products (plus its starting value).
    let terms = s.n * s.col_cols() + 1;
    assert_close(&format!("dweight {s:?}"), &dweight, &expected_w, 1e-5, tol(terms));
    if with_bias {
        assert_close(&format!("dbias {s:?}"), &dbias, &expected_b, 1e-5, tol(terms));
    } else {
        assert_eq!(dbias, dbias0, "dbias must be untouched when None is passed");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn forward_matches_reference(s in conv_shape(), seed in any::<u64>(), with_bias in any::<bool>()) {
        check_forward(&s, seed, with_bias, conv2d_workspace_len(&s));
    }

    #[test]
    fn backward_data_matches_reference(s in conv_shape(), seed in any::<u64>()) {
        check_backward_data(&s, seed, conv2d_workspace_len(&s));
    }

    #[test]
    fn backward_weight_accumulates_like_reference(
        s in conv_shape(), seed in any::<u64>(), with_bias in any::<bool>()
    ) {
        check_backward_weight(&s, seed, with_bias, conv2d_workspace_len(&s));
    }

    /// The 1x1 fast path, with an empty workspace: it must need none.
    #[test]
    fn pointwise_matches_reference_without_workspace(
        s in pointwise_shape(), seed in any::<u64>(), with_bias in any::<bool>()
    ) {
        prop_assert!(s.is_pointwise());
        prop_assert_eq!(conv2d_workspace_len(&Conv2dShape { n: 1, ..s }), 0);
        check_forward(&s, seed, with_bias, 0);
        check_backward_data(&s, seed, 0);
        check_backward_weight(&s, seed, with_bias, 0);
    }

    /// im2col copies (exactly), col2im sums the copies back (f32 sums of at most kh·kw values).
    #[test]
    fn im2col_col2im_match_reference(s in conv_shape(), seed in any::<u64>()) {
        let plane = s.c_in / s.groups * s.h * s.w;
        let x = uniform(plane, seed, -1.0, 1.0);
        let mut col = vec![f32::NAN; s.col_len()];
        let mut expected_col = vec![0.0; s.col_len()];
        im2col(&s, &x, &mut col).unwrap();
        reference::im2col(&s, &x, &mut expected_col).unwrap();
        prop_assert_eq!(&col, &expected_col);

        let dcol = uniform(s.col_len(), seed + 1, -1.0, 1.0);
        let mut dx = vec![f32::NAN; plane];
        let mut expected_dx = vec![0.0; plane];
        col2im(&s, &dcol, &mut dx).unwrap();
        reference::col2im(&s, &dcol, &mut expected_dx).unwrap();
        assert_close("col2im", &dx, &expected_dx, 1e-6, tol(s.kh * s.kw));
    }

    /// `<im2col(x), c> = <x, col2im(c)>`, both sides in f64.
    #[test]
    fn col2im_is_adjoint_of_im2col(s in conv_shape(), seed in any::<u64>()) {
        let plane = s.c_in / s.groups * s.h * s.w;
        let x = uniform(plane, seed, -1.0, 1.0);
        let c = uniform(s.col_len(), seed + 1, -1.0, 1.0);
        let mut col = vec![0.0; s.col_len()];
        let mut back = vec![0.0; plane];
        im2col(&s, &x, &mut col).unwrap();
        col2im(&s, &c, &mut back).unwrap();
        let (lhs, rhs) = (dot(&col, &c), dot(&x, &back));
        // col2im rounds each sum of ≤ kh·kw terms once in f32.
        prop_assert!((lhs - rhs).abs() <= 1e-6 * (s.col_len() as f64), "{lhs} vs {rhs}");
    }

    /// `<conv(x, W), dy> = <x, backward_data(dy, W)> = <W, backward_weight(x, dy)>`.
    #[test]
    fn backward_kernels_are_adjoints_of_forward(s in conv_shape(), seed in any::<u64>()) {
        let x = uniform(s.x_len(), seed, -1.0, 1.0);
        let weight = uniform(s.weight_len(), seed + 1, -1.0, 1.0);
        let dy = uniform(s.y_len(), seed + 2, -1.0, 1.0);
        let mut workspace = vec![0.0; conv2d_workspace_len(&s)];
        let mut y = vec![0.0; s.y_len()];
        let mut dx = vec![0.0; s.x_len()];
        let mut dweight = vec![0.0; s.weight_len()];
        conv2d_forward(&s, &x, &weight, None, &mut y, &mut workspace).unwrap();
        conv2d_backward_data(&s, &dy, &weight, &mut dx, &mut workspace).unwrap();
        conv2d_backward_weight(&s, &x, &dy, &mut dweight, None, &mut workspace).unwrap();
        let forward = dot(&y, &dy);
        // Each side is a sum of muladds products of magnitude ≤ 1, rounded in f32 in blocks.
        let bound = 1e-6 * s.muladds() as f64;
        prop_assert!((forward - dot(&x, &dx)).abs() <= bound, "data: {forward} vs {}", dot(&x, &dx));
        prop_assert!((forward - dot(&weight, &dweight)).abs() <= bound, "weight: {forward} vs {}", dot(&weight, &dweight));
    }
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum()
}

/// The forward pass written out in f64, for central differences.
fn forward_f64(s: &Conv2dShape, x: &[f64], weight: &[f64], bias: &[f64]) -> Vec<f64> {
    let (cg, cog, oh, ow) = (s.c_in / s.groups, s.c_out / s.groups, s.out_h(), s.out_w());
    let mut y = vec![0.0; s.y_len()];
    for i in 0..s.n {
        for o in 0..s.c_out {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias[o];
                    for ci in 0..cg {
                        for ki in 0..s.kh {
                            for kj in 0..s.kw {
                                let iy = (oy * s.stride_h + ki * s.dilation_h) as isize - s.pad_h as isize;
                                let ix = (ox * s.stride_w + kj * s.dilation_w) as isize - s.pad_w as isize;
                                if iy < 0 || ix < 0 || iy >= s.h as isize || ix >= s.w as isize {
                                    continue;
                                }
                                let c = (o / cog) * cg + ci;
                                let xv = x[((i * s.c_in + c) * s.h + iy as usize) * s.w + ix as usize];
                                acc += weight[((o * cg + ci) * s.kh + ki) * s.kw + kj] * xv;
                            }
                        }
                    }
                    y[((i * s.c_out + o) * oh + oy) * ow + ox] = acc;
                }
            }
        }
    }
    y
}

/// dweight and dbias against central differences of `L = <forward_f64(x, W, b), dy>`.
#[test]
fn weight_gradient_matches_central_differences() {
    let shapes = [
        Conv2dShape::new(2, 3, 7, 5, 4, 3, 3).with_pad(1),
        Conv2dShape::new(1, 4, 9, 8, 2, 2, 3).with_stride(2).with_dilation(2).with_groups(2),
        Conv2dShape { stride_w: 3, pad_h: 2, ..Conv2dShape::new(3, 2, 5, 11, 2, 5, 2) },
        Conv2dShape::new(2, 4, 6, 6, 6, 1, 1).with_groups(2),
    ];
    for (index, s) in shapes.iter().enumerate() {
        s.check().unwrap();
        let seed = 100 + index as u64;
        let x = uniform(s.x_len(), seed, -1.0, 1.0);
        let weight = uniform(s.weight_len(), seed + 1, -1.0, 1.0);
        let bias = uniform(s.c_out, seed + 2, -1.0, 1.0);
        let dy = uniform(s.y_len(), seed + 3, -1.0, 1.0);
        let mut dweight = vec![0.0; s.weight_len()];
        let mut dbias = vec![0.0; s.c_out];
        let mut workspace = vec![0.0; conv2d_workspace_len(s)];
        conv2d_backward_weight(s, &x, &dy, &mut dweight, Some(&mut dbias), &mut workspace).unwrap();

        let to64 = |v: &[f32]| v.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>();
        let (x64, dy64) = (to64(&x), to64(&dy));
        let loss = |w: &[f64], b: &[f64]| -> f64 {
            forward_f64(s, &x64, w, b).iter().zip(&dy64).map(|(y, g)| y * g).sum()
        };
        let (w64, b64) = (to64(&weight), to64(&bias));
        let eps = 1e-3;
        let numeric = |params: &[f64], perturb: &dyn Fn(&[f64]) -> f64| -> Vec<f64> {
            (0..params.len())
                .map(|j| {
                    let mut p = params.to_vec();
                    p[j] += eps;
                    let plus = perturb(&p);
                    p[j] -= 2.0 * eps;
                    (plus - perturb(&p)) / (2.0 * eps)
                })
                .collect()
        };
        let numeric_w = numeric(&w64, &|w| loss(w, &b64));
        let numeric_b = numeric(&b64, &|b| loss(&w64, b));
        // L is linear in the parameters, so the central difference is exact up to f64
        // rounding; the kernel's f32 sums of n·out_h·out_w products set the tolerance.
        let atol = tol(s.n * s.col_cols());
        let as32 = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect::<Vec<f32>>();
        assert_close(&format!("dweight {s:?}"), &dweight, &as32(numeric_w), 1e-5, atol);
        assert_close(&format!("dbias {s:?}"), &dbias, &as32(numeric_b), 1e-5, atol);
    }
}

/// PyTorch:
/// ```python
/// x = torch.arange(1., 10.).reshape(1, 1, 3, 3)
/// torch.nn.functional.conv2d(x, torch.ones(2, 1, 2, 2) * torch.tensor([1., -1.]).reshape(2, 1, 1, 1),
///                            torch.tensor([0.5, 0.]))
/// # tensor([[[[12.5, 16.5], [24.5, 28.5]], [[-12., -16.], [-24., -28.]]]])
/// ```
#[test]
fn forward_known_values() {
    let s = Conv2dShape::new(1, 1, 3, 3, 2, 2, 2);
    let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let weight = [1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0];
    let mut y = vec![f32::NAN; 8];
    let mut workspace = vec![0.0; conv2d_workspace_len(&s)];
    conv2d_forward(&s, &x, &weight, Some(&[0.5, 0.0]), &mut y, &mut workspace).unwrap();
    assert_eq!(y, [12.5, 16.5, 24.5, 28.5, -12.0, -16.0, -24.0, -28.0]);
}

#[test]
fn output_size_follows_pytorch_formula() {
    let cases = [
        (Conv2dShape::new(1, 1, 28, 28, 6, 5, 5).with_pad(2), 28, 28),
        (Conv2dShape::new(1, 1, 32, 31, 1, 3, 3).with_stride(2).with_pad(1), 16, 16),
        (Conv2dShape::new(1, 1, 7, 9, 1, 3, 3).with_dilation(2), 3, 5),
        (Conv2dShape { stride_w: 3, ..Conv2dShape::new(1, 1, 1, 10, 1, 1, 4) }, 1, 3),
    ];
    for (s, oh, ow) in cases {
        s.check().unwrap();
        assert_eq!((s.out_h(), s.out_w()), (oh, ow), "{s:?}");
        assert_eq!(s.y_len(), oh * ow * s.c_out);
    }
}

/// Input positions no window reads (stride 2 with a 1x1 kernel skips odd ones) get 0, not
/// the NaN that was in dx.
#[test]
fn backward_data_zeroes_untouched_inputs() {
    for s in [
        Conv2dShape::new(2, 3, 5, 5, 2, 1, 1).with_stride(2),
        Conv2dShape::new(1, 2, 6, 6, 2, 2, 2).with_stride(3),
    ] {
        let dy = uniform(s.y_len(), 7, -1.0, 1.0);
        let weight = uniform(s.weight_len(), 8, -1.0, 1.0);
        let mut dx = vec![f32::NAN; s.x_len()];
        let mut workspace = vec![0.0; conv2d_workspace_len(&s)];
        conv2d_backward_data(&s, &dy, &weight, &mut dx, &mut workspace).unwrap();
        assert!(dx.iter().all(|v| v.is_finite()), "{s:?}: {dx:?}");
        assert!(dx.contains(&0.0) && dx.iter().any(|&v| v != 0.0), "{s:?}");
    }
}

/// A random shape for the per-image direct loops (stride 1, dilation 1, not 1x1, one image):
/// 17 to 40 input channels per group, more than one sweep of input channels for the kernels
/// from 3x3 up (28 for 3x3, 10 for 5x5), so partial sums are kept between sweeps; output
/// widths around the strip widths (8, 16, 24, 32, 48 lanes), so both strip orders (per row
/// and across rows) run; 1 to 13 output channels (register blocks and their remainders).
fn direct_shape() -> impl Strategy<Value = Conv2dShape> {
    (
        (1usize..=2, 17usize..=40, 1usize..=13),
        prop_oneof![Just(1usize), Just(2), Just(7), 8usize..=18, 23usize..=26, 31usize..=34, 47usize..=50],
        1usize..=9,
        (1usize..=5, 1usize..=5).prop_filter("1x1 is pointwise", |&(kh, kw)| kh * kw > 1),
        (0usize..=2, 0usize..=2),
    )
        .prop_map(|((groups, cg, cog), out_w, out_h, (kh, kw), (ph, pw))| {
            let (pad_h, pad_w) = (ph.min(kh - 1), pw.min(kw - 1));
            let h = (out_h + kh - 1).saturating_sub(2 * pad_h).max(1);
            let w = (out_w + kw - 1).saturating_sub(2 * pad_w).max(1);
            Conv2dShape {
                pad_h,
                pad_w,
                groups,
                ..Conv2dShape::new(1, groups * cg, h, w, groups * cog, kh, kw)
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The direct loops on every instruction set of this CPU that has them, forward (with
    /// and without a bias and an activation) and backward-data (the forward of the
    /// transposed shape), against the references.
    #[test]
    fn direct_path_matches_reference(s in direct_shape(), seed in any::<u64>(), with_bias in any::<bool>()) {
        for isa in cpu_isas().into_iter().filter(|&isa| ConvPath::Direct.runs_on(isa)) {
            on_isa(isa, || {
                let len = conv2d_workspace_len(&s);
                if plan(&s, ConvPass::Forward, isa, len) == ConvPath::Direct {
                    check_forward(&s, seed, with_bias, len);
                    check_fused_forward(&s, seed, isa, ConvPath::Direct);
                }
                if plan(&s, ConvPass::BackwardData, isa, len) == ConvPath::Direct {
                    check_backward_data(&s, seed, len);
                }
            });
        }
    }
}

/// A random shape for the images-in-lanes path (stride 1, dilation 1, one group,
/// `pad < k`, at least 16 images, not 1x1): batches around the 16- and 8-image lane groups
/// (AVX-512, AVX2), planes
/// from `edge_size`, channels 1..7 (blocks of 6 and 4 channels with remainders), kernels
/// 1..5 (a 1x1 kernel is a pointwise convolution, a plain GEMM).
fn lanes_shape() -> impl Strategy<Value = Conv2dShape> {
    (
        prop_oneof![Just(16usize), Just(17), Just(23), Just(31), Just(32), Just(33), 16usize..=70],
        (1usize..=7, 1usize..=7),
        (edge_size(17), edge_size(17)),
        (1usize..=5, 1usize..=5).prop_filter("1x1 is pointwise", |&(kh, kw)| kh * kw > 1),
        (0usize..=4, 0usize..=4),
    )
        .prop_map(|(n, (c_in, c_out), (h, w), (kh, kw), (ph, pw))| {
            let (pad_h, pad_w) = (ph.min(kh - 1), pw.min(kw - 1));
            let (h, w) =
                (h.max(kh.saturating_sub(2 * pad_h)).max(1), w.max(kw.saturating_sub(2 * pad_w)).max(1));
            Conv2dShape { pad_h, pad_w, ..Conv2dShape::new(n, c_in, h, w, c_out, kh, kw) }
        })
}

/// The path `pass` of a [`lanes_shape`] takes on AVX-512 or AVX2 with a full workspace: the
/// images in lanes, except the forward of output rows that fill at least 80% of a direct
/// strip's 16 lanes (13 to 16 outputs), which the per-image direct loops run (the rule of
/// `conv::plan`).
fn lanes_shape_path(s: &Conv2dShape, pass: ConvPass) -> ConvPath {
    let out_w = s.out_w();
    if pass == ConvPass::Forward && 100 * out_w >= 80 * out_w.next_multiple_of(16) {
        ConvPath::Direct
    } else {
        ConvPath::ImagesInLanes
    }
}

/// Asserts that `pass` of `s` plans `path` on `isa` with `workspace_len` floats of workspace.
#[track_caller]
fn assert_path(s: &Conv2dShape, pass: ConvPass, isa: Isa, workspace_len: usize, path: ConvPath) {
    let planned = plan(s, pass, isa, workspace_len);
    assert_eq!(planned, path, "{pass:?} of {s:?} on {isa:?} with a workspace of {workspace_len}");
}

/// The instruction sets with an images-in-lanes vector: AVX-512 (reported skipped by `test`'s
/// name on a CPU without it) and AVX2, where the CPU has them.
fn lane_isas(test: &str) -> Vec<Isa> {
    Isa::Avx512.supported_or_skip(&format!("{test} (AVX-512)"));
    cpu_isas().into_iter().filter(|&isa| isa != Isa::Portable).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The images-in-lanes path on AVX-512 and AVX2 on one and two threads (every pass
    /// planned on it, but the forward of rows that fill their vectors, which the direct loops
    /// take), and the per-image paths it falls back to when the workspace holds only one
    /// image's scratch. Reported skipped by name on a CPU without AVX-512F.
    #[test]
    fn lanes_path_matches_reference(s in lanes_shape(), seed in any::<u64>(), threads in 1usize..=2) {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        for isa in lane_isas("conv::lanes_path_matches_reference") {
            pool.install(|| on_isa(isa, || check_lanes_path(&s, seed, isa)));
        }
    }
}

/// One case of [`lanes_path_matches_reference`] on `isa` (forced by the caller).
fn check_lanes_path(s: &Conv2dShape, seed: u64, isa: Isa) {
    let full = conv2d_workspace_len(s);
    // One image's scratch: a single slot of the per-image path.
    let one_slot = conv2d_workspace_len(&Conv2dShape { n: 1, ..*s });
    for pass in ConvPass::ALL {
        assert_path(s, pass, isa, full, lanes_shape_path(s, pass));
        // The per-image fallback is the direct loops (im2col + GEMM for the weight gradient on
        // AVX2, which has no direct one), but a pass stays in lanes where its slot fits in one
        // image's scratch (a few shapes of tiny planes, or of one or two output channels and
        // wide kernels; on AVX2, whose slots hold 8 images, the weight gradient of some too).
        let fallback = plan(s, pass, isa, one_slot);
        let per_image = match (pass, isa) {
            (ConvPass::BackwardWeight, Isa::Avx2) => ConvPath::Im2colGemm,
            _ => ConvPath::Direct,
        };
        let lanes_allowed = pass != ConvPass::BackwardWeight || isa == Isa::Avx2;
        assert!(
            fallback == per_image || (lanes_allowed && fallback == ConvPath::ImagesInLanes),
            "{pass:?} of {s:?} on {isa:?} with one image's scratch: {fallback:?}"
        );
    }
    for workspace_len in [full, one_slot] {
        check_forward(s, seed, seed.is_multiple_of(2), workspace_len);
        check_backward_data(s, seed, workspace_len);
        check_backward_weight(s, seed, seed.is_multiple_of(3), workspace_len);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Every pass of random shapes big enough that a 2-thread pool runs their images in
    /// parallel (asserted), against the reference, with the full workspace (a slot per
    /// thread) and with one image's.
    #[test]
    fn parallel_passes_match_reference(s in parallel_conv_shape(), seed in any::<u64>(), with_bias in any::<bool>()) {
        prop_assert!(s.muladds() >= MIN_PARALLEL_MULADDS && s.n >= 2, "{s:?} too small to split");
        two_threads().install(|| {
            let one_slot = conv2d_workspace_len(&Conv2dShape { n: 1, ..s });
            for workspace_len in [conv2d_workspace_len(&s), one_slot] {
                check_forward(&s, seed, with_bias, workspace_len);
                check_backward_data(&s, seed, workspace_len);
                check_backward_weight(&s, seed, with_bias, workspace_len);
            }
        });
    }
}

/// Batches big enough to split across a 2-thread pool: parity with the reference, same bits
/// on every run, and the same results (to rounding) when the workspace holds only one slot.
/// A single large image exercises the channel-parallel im2col/col2im instead.
#[test]
fn parallel_paths_match_reference_and_are_deterministic() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let shapes = [
        Conv2dShape::new(5, 8, 16, 15, 16, 3, 3).with_pad(1),
        Conv2dShape::new(8, 32, 16, 16, 32, 3, 3).with_stride(2).with_groups(2),
        Conv2dShape::new(6, 64, 17, 16, 48, 1, 1),
        Conv2dShape::new(1, 16, 33, 32, 8, 3, 3).with_pad(1),
        // Images in lanes on AVX-512 and AVX2 (every pass): 3 lane groups of 16 (the last one
        // partial) over 2 slots.
        Conv2dShape::new(40, 6, 14, 14, 16, 5, 5),
    ];
    pool.install(|| check_parallel_paths(&shapes));
    // The images-in-lanes shape again, forced onto each lane vector's instruction set
    // whatever `KEEL_ISA` chose above (on AVX2, 5 lane groups of 8 over 2 slots).
    let lanes = &shapes[4..];
    let test = "conv::parallel_paths_match_reference_and_are_deterministic (images in lanes)";
    for isa in lane_isas(test) {
        pool.install(|| {
            on_isa(isa, || {
                let full = conv2d_workspace_len(&lanes[0]);
                for pass in ConvPass::ALL {
                    assert_path(&lanes[0], pass, isa, full, ConvPath::ImagesInLanes);
                }
                check_parallel_paths(lanes);
            })
        });
    }
}

/// The checks of [`parallel_paths_match_reference_and_are_deterministic`] on `shapes`, on
/// the calling thread's pool and instruction set.
fn check_parallel_paths(shapes: &[Conv2dShape]) {
    for s in shapes {
        assert!(s.muladds() >= MIN_PARALLEL_MULADDS, "{s:?} too small to split");
        let full = conv2d_workspace_len(s);
        let one_slot = if s.is_pointwise() { 0 } else { s.col_len() };
        for (seed, workspace_len) in [(1, full), (2, one_slot)] {
            check_forward(s, seed, true, workspace_len);
            check_backward_data(s, seed, workspace_len);
            check_backward_weight(s, seed, true, workspace_len);
        }
        if s.n > 1 {
            assert!(full > one_slot, "{s:?}: the workspace should hold a slot per thread");
        }
        let x = uniform(s.x_len(), 3, -1.0, 1.0);
        let dy = uniform(s.y_len(), 4, -1.0, 1.0);
        let weight = uniform(s.weight_len(), 5, -1.0, 1.0);
        let run = || {
            let mut workspace = vec![0.0; full];
            let mut y = vec![0.0; s.y_len()];
            let mut dx = vec![0.0; s.x_len()];
            let mut dweight = vec![0.0; s.weight_len()];
            let mut dbias = vec![0.0; s.c_out];
            conv2d_forward(s, &x, &weight, None, &mut y, &mut workspace).unwrap();
            conv2d_backward_data(s, &dy, &weight, &mut dx, &mut workspace).unwrap();
            conv2d_backward_weight(s, &x, &dy, &mut dweight, Some(&mut dbias), &mut workspace).unwrap();
            (y, dx, dweight, dbias)
        };
        let first = run();
        for _ in 0..3 {
            assert!(run() == first, "{s:?}: results changed between runs");
        }
    }
}

#[test]
fn empty_batch_is_a_no_op() {
    let s = Conv2dShape::new(0, 3, 5, 5, 4, 3, 3);
    s.check().unwrap();
    assert_eq!((s.x_len(), s.y_len()), (0, 0));
    let weight = uniform(s.weight_len(), 1, -1.0, 1.0);
    let mut workspace = vec![0.0; conv2d_workspace_len(&s)];
    conv2d_forward(&s, &[], &weight, None, &mut [], &mut workspace).unwrap();
    conv2d_backward_data(&s, &[], &weight, &mut [], &mut workspace).unwrap();
    let mut dweight = vec![1.5; s.weight_len()];
    let mut dbias = vec![2.5; 4];
    conv2d_backward_weight(&s, &[], &[], &mut dweight, Some(&mut dbias), &mut workspace).unwrap();
    assert!(dweight.iter().all(|&v| v == 1.5) && dbias.iter().all(|&v| v == 2.5));
}

fn expect_shape_error(result: keel_kernels::Result<()>, name: &str) {
    match result {
        Err(KernelError::Shape { what, .. }) => assert_eq!(what, name),
        other => panic!("expected a shape error naming {name}, got {other:?}"),
    }
}

fn expect_length_error(result: keel_kernels::Result<()>, name: &str) {
    match result {
        Err(KernelError::Length { what, .. }) => assert!(what.starts_with(name), "{what} should name {name}"),
        other => panic!("expected a length error naming {name}, got {other:?}"),
    }
}

#[test]
fn bad_shapes_are_rejected_by_name() {
    let good = Conv2dShape::new(2, 4, 8, 8, 6, 3, 3).with_pad(1).with_groups(2);
    good.check().unwrap();
    type Spoil = fn(&mut Conv2dShape);
    let zeroed: [(&str, Spoil); 11] = [
        ("c_in", |s| s.c_in = 0),
        ("h", |s| s.h = 0),
        ("w", |s| s.w = 0),
        ("c_out", |s| s.c_out = 0),
        ("kh", |s| s.kh = 0),
        ("kw", |s| s.kw = 0),
        ("stride_h", |s| s.stride_h = 0),
        ("stride_w", |s| s.stride_w = 0),
        ("dilation_h", |s| s.dilation_h = 0),
        ("dilation_w", |s| s.dilation_w = 0),
        ("groups", |s| s.groups = 0),
    ];
    for (name, spoil) in zeroed {
        let mut s = good;
        spoil(&mut s);
        expect_shape_error(s.check(), name);
    }
    let bad = [
        ("groups", Conv2dShape { c_in: 3, ..good }),
        ("groups", Conv2dShape { c_out: 5, ..good }),
        ("kh", Conv2dShape { kh: 11, ..good }),
        ("kw", Conv2dShape { dilation_w: 5, ..good }),
        ("kh", Conv2dShape { kh: usize::MAX, ..good }),
        ("shape", Conv2dShape { n: usize::MAX, ..good }),
    ];
    for (name, s) in bad {
        expect_shape_error(s.check(), name);
        // Every kernel runs the same check first, and the sizes do not panic.
        let _ = (s.out_h(), s.x_len(), s.y_len(), s.weight_len(), s.col_len(), conv2d_workspace_len(&s));
        expect_shape_error(conv2d_forward(&s, &[], &[], None, &mut [], &mut []), name);
        expect_shape_error(conv2d_backward_data(&s, &[], &[], &mut [], &mut []), name);
        expect_shape_error(conv2d_backward_weight(&s, &[], &[], &mut [], None, &mut []), name);
        expect_shape_error(im2col(&s, &[], &mut []), name);
        expect_shape_error(col2im(&s, &[], &mut []), name);
        expect_shape_error(reference::conv2d_forward(&s, &[], &[], None, &mut []), name);
        expect_shape_error(reference::conv2d_backward_data(&s, &[], &[], &mut []), name);
        expect_shape_error(reference::conv2d_backward_weight(&s, &[], &[], &mut [], None), name);
        expect_shape_error(reference::im2col(&s, &[], &mut []), name);
        expect_shape_error(reference::col2im(&s, &[], &mut []), name);
    }
}

#[test]
fn bad_lengths_are_rejected_by_name() {
    let s = Conv2dShape::new(2, 4, 8, 8, 6, 3, 3).with_pad(1).with_groups(2);
    let x = vec![0.5; s.x_len()];
    let y = vec![0.5; s.y_len()];
    let weight = vec![0.5; s.weight_len()];
    let bias = vec![0.5; s.c_out];
    let mut ws = vec![0.0; conv2d_workspace_len(&s)];
    let (mut y_out, mut dx, mut dweight, mut dbias) = (y.clone(), x.clone(), weight.clone(), bias.clone());
    let short = |v: &[f32]| v[..v.len() - 1].to_vec();

    expect_length_error(conv2d_forward(&s, &short(&x), &weight, None, &mut y_out, &mut ws), "x");
    expect_length_error(conv2d_forward(&s, &x, &short(&weight), None, &mut y_out, &mut ws), "weight");
    expect_length_error(conv2d_forward(&s, &x, &weight, Some(&short(&bias)), &mut y_out, &mut ws), "bias");
    expect_length_error(conv2d_forward(&s, &x, &weight, None, &mut short(&y), &mut ws), "y");
    expect_length_error(
        conv2d_forward(&s, &x, &weight, None, &mut y_out, &mut short(&ws[..s.col_len()])),
        "workspace",
    );

    expect_length_error(conv2d_backward_data(&s, &short(&y), &weight, &mut dx, &mut ws), "dy");
    expect_length_error(conv2d_backward_data(&s, &y, &short(&weight), &mut dx, &mut ws), "weight");
    expect_length_error(conv2d_backward_data(&s, &y, &weight, &mut short(&x), &mut ws), "dx");
    expect_length_error(
        conv2d_backward_data(&s, &y, &weight, &mut dx, &mut short(&ws[..s.col_len()])),
        "workspace",
    );

    expect_length_error(conv2d_backward_weight(&s, &short(&x), &y, &mut dweight, None, &mut ws), "x");
    expect_length_error(conv2d_backward_weight(&s, &x, &short(&y), &mut dweight, None, &mut ws), "dy");
    expect_length_error(conv2d_backward_weight(&s, &x, &y, &mut short(&weight), None, &mut ws), "dweight");
    expect_length_error(
        conv2d_backward_weight(&s, &x, &y, &mut dweight, Some(&mut short(&bias)), &mut ws),
        "dbias",
    );
    expect_length_error(
        conv2d_backward_weight(&s, &x, &y, &mut dweight, Some(&mut dbias), &mut short(&ws[..s.col_len()])),
        "workspace",
    );

    let plane = vec![0.5; s.c_in / s.groups * s.h * s.w];
    let mut col = vec![0.0; s.col_len()];
    expect_length_error(im2col(&s, &short(&plane), &mut col), "x");
    expect_length_error(im2col(&s, &plane, &mut short(&col)), "col");
    expect_length_error(col2im(&s, &short(&col), &mut plane.clone()), "col");
    expect_length_error(col2im(&s, &col, &mut short(&plane)), "x");
    expect_length_error(reference::conv2d_forward(&s, &x, &weight, None, &mut short(&y)), "y");
    expect_length_error(reference::conv2d_backward_data(&s, &y, &weight, &mut short(&x)), "dx");
    expect_length_error(
        reference::conv2d_backward_weight(&s, &x, &y, &mut dweight, Some(&mut short(&bias))),
        "dbias",
    );
    // The pointwise path needs no workspace at all.
    let p = Conv2dShape::new(2, 4, 8, 8, 6, 1, 1);
    let mut yp = vec![0.0; p.y_len()];
    conv2d_forward(&p, &vec![0.5; p.x_len()], &vec![0.5; p.weight_len()], None, &mut yp, &mut []).unwrap();
}

/// LeNet-5's two convolutions at batch 3, on one thread: rows of 28 and 10 floats in the
/// row moves, and a shallow (k = 25) product whose 784-float rows the GEMM reads in place.
#[test]
fn lenet_shapes_match_reference() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let shapes = [
        Conv2dShape::new(3, 1, 28, 28, 6, 5, 5).with_pad(2),
        Conv2dShape::new(3, 6, 14, 14, 16, 5, 5),
        Conv2dShape::new(64, 1, 28, 28, 6, 5, 5).with_pad(2),
        Conv2dShape::new(37, 6, 14, 14, 16, 5, 5),
    ];
    pool.install(|| {
        for (seed, s) in shapes.iter().enumerate() {
            let len = conv2d_workspace_len(s);
            check_forward(s, seed as u64, true, len);
            check_backward_data(s, seed as u64, len);
            check_backward_weight(s, seed as u64, true, len);
        }
    });
}

/// Column matrices of more than twice the band budget (2 x 2^18 floats), which the im2col +
/// GEMM forward and weight gradient unfold band by band of output rows: stride 2 (bands start
/// at input rows two apart), dilation 2 and stride 1 with padding (bands at the padded
/// top and bottom), on every instruction set of the CPU and on the portable one, on one
/// thread (one band loop per image) and two.
#[test]
fn banded_columns_match_reference() {
    let shapes = [
        // K = 800, P = 30·30: 720 Ki floats, three bands of 10 rows.
        Conv2dShape::new(2, 32, 60, 60, 8, 5, 5).with_pad(2).with_stride(2),
        // K = 288, P = 48·48, dilation 2: three bands of 16 rows.
        Conv2dShape { dilation_h: 2, dilation_w: 2, ..Conv2dShape::new(2, 32, 48, 48, 8, 3, 3).with_pad(2) },
        // K = 288, P = 48·47 (an odd width), stride 1: the weight gradient unfolds in bands.
        Conv2dShape::new(2, 32, 48, 47, 24, 3, 3).with_pad(1),
    ];
    let mut isas = cpu_isas();
    if !isas.contains(&Isa::Portable) {
        isas.push(Isa::Portable);
    }
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        for &isa in &isas {
            pool.install(|| {
                on_isa(isa, || {
                    for (seed, s) in shapes.iter().enumerate() {
                        assert!(s.col_len() > 2 << 18, "{s:?} fits one band");
                        let len = conv2d_workspace_len(s);
                        check_forward(s, seed as u64, true, len);
                        check_backward_weight(s, seed as u64, true, len);
                    }
                })
            });
        }
    }
}

/// The fused forward against the activation of the scalar reference's forward, and bit for
/// bit against the plain forward followed by the activation (the activation only selects
/// or scales each stored value), on every instruction set of the CPU; on AVX-512 and AVX2
/// the shapes take the direct loops (stride 1; 6 and 80 input channels), im2col + GEMM
/// (stride 2, groups) and the images in lanes (19 images), which is asserted (and AVX-512
/// reported skipped by name on a CPU without it). A non-finite leaky-ReLU slope is refused.
#[test]
fn fused_forward_applies_the_activation_to_every_output() {
    let cases = [
        (Conv2dShape::new(3, 1, 28, 28, 6, 5, 5).with_pad(2), ConvPath::Direct),
        (Conv2dShape::new(2, 6, 14, 14, 16, 5, 5), ConvPath::Direct),
        (
            Conv2dShape::new(2, 4, 9, 11, 6, 3, 3).with_stride(2).with_pad(1).with_groups(2),
            ConvPath::Im2colGemm,
        ),
        (Conv2dShape::new(19, 6, 14, 14, 16, 5, 5), ConvPath::ImagesInLanes),
        // 80 input channels summed in registers before the activation.
        (Conv2dShape::new(2, 80, 9, 20, 12, 3, 3).with_pad(1), ConvPath::Direct),
    ];
    Isa::Avx512
        .supported_or_skip("conv::fused_forward_applies_the_activation_to_every_output (AVX-512 paths)");
    for isa in cpu_isas() {
        on_isa(isa, || {
            for (seed, (s, simd_path)) in cases.iter().enumerate() {
                check_fused_forward(s, seed as u64, isa, *simd_path);
            }
        });
    }
    let s = &cases[1].0;
    let (x, weight) = (vec![0.0; s.x_len()], vec![0.0; s.weight_len()]);
    let (mut y, mut workspace) = (vec![0.0; s.y_len()], vec![0.0; conv2d_workspace_len(s)]);
    let bad = Activation::LeakyRelu(f32::NAN);
    assert!(conv2d_forward_fused(s, &x, &weight, None, bad, &mut y, &mut workspace).is_err());
}

/// One shape of [`fused_forward_applies_the_activation_to_every_output`] on `isa` (forced by
/// the caller), asserting the plan `simd_path` when `isa` is AVX-512 or AVX2.
fn check_fused_forward(s: &Conv2dShape, seed: u64, isa: Isa, simd_path: ConvPath) {
    let x = uniform(s.x_len(), seed, -1.0, 1.0);
    let weight = uniform(s.weight_len(), seed + 1, -1.0, 1.0);
    let bias = uniform(s.c_out, seed + 2, -1.0, 1.0);
    let mut workspace = vec![f32::NAN; conv2d_workspace_len(s)];
    if isa != Isa::Portable {
        assert_path(s, ConvPass::Forward, isa, workspace.len(), simd_path);
    }
    let mut reference_y = vec![0.0; s.y_len()];
    reference::conv2d_forward(s, &x, &weight, Some(&bias), &mut reference_y).unwrap();
    // Not vacuous: the activations zero or scale some outputs and keep others.
    assert!(reference_y.iter().any(|&v| v < 0.0) && reference_y.iter().any(|&v| v > 0.0));
    let mut plain = vec![f32::NAN; s.y_len()];
    conv2d_forward(s, &x, &weight, Some(&bias), &mut plain, &mut workspace).unwrap();
    let atol = tol(forward_terms(s));
    for (activation, f) in [
        (Activation::Relu, (|v: f32| if v < 0.0 { 0.0 } else { v }) as fn(f32) -> f32),
        (Activation::LeakyRelu(0.1), |v: f32| if v < 0.0 { 0.1 * v } else { v }),
        (Activation::Identity, |v: f32| v),
    ] {
        let what = format!("{s:?} {activation:?} on {isa:?}");
        let mut fused = vec![f32::NAN; s.y_len()];
        conv2d_forward_fused(s, &x, &weight, Some(&bias), activation, &mut fused, &mut workspace).unwrap();
        // The sums before the activation are within the file's bound (`atol + 1e-5·|y|`, y
        // the reference's sum) of the reference; each activation is 1-Lipschitz, so the
        // activated values are within the same bound of the activated reference.
        for (i, (&got, &sum)) in fused.iter().zip(&reference_y).enumerate() {
            let bound = atol + 1e-5 * sum.abs();
            assert!((got - f(sum)).abs() <= bound, "{what}: y[{i}] = {got}, reference {} ± {bound}", f(sum));
        }
        let expected: Vec<f32> = plain.iter().map(|&v| f(v)).collect();
        assert_eq!(fused, expected, "{what}: against the plain forward");
    }
}
