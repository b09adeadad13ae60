//! Every planned path of every multi-path family (GEMM, convolution, pooling) runs on every
//! instruction set this CPU has, and matches the reference.
//!
//! Each test takes shapes chosen so that, per instruction set, the plans cover every path
//! that instruction set has; it runs each shape under `with_isa`, compares with the
//! reference, and then asserts that every such path was planned (and so run) at least once.
//! Paths the CPU cannot run (an AVX-512 kernel on an AVX2-only CPU) are printed by name.
//!
//! Tolerances: a GEMM or convolution output is a dot product of `K` terms accumulated in
//! f32 (in any order), within `(K + 2)·ε·Σ|a·b|` of the exact value (Higham's γ bound), which
//! the tests compute from the absolute values of the operands; the reference convolution
//! sums in f64. Pooling only compares, copies, adds in window order and divides, so every
//! path gives the reference's bits.

mod common;

use std::collections::HashSet;

use common::{cpu_isas, on_isa, uniform};
use keel_kernels::conv::{self, Conv2dShape, ConvPass, ConvPath};
use keel_kernels::gemm::{native, reference::sgemm_reference, GemmPath, GemmShape, Transpose};
use keel_kernels::isa::Isa;
use keel_kernels::pool::{self, Pool2dShape, PoolPass, PoolPath};

/// Asserts `|actual - expected| <= bound` element-wise, naming the first mismatch.
#[track_caller]
fn assert_within(what: &str, actual: &[f32], expected: &[f32], bound: &[f32]) {
    for (i, ((&a, &e), &b)) in actual.iter().zip(expected).zip(bound).enumerate() {
        assert!((a - e).abs() <= b, "{what}[{i}]: got {a}, expected {e} (bound {b})");
    }
}

/// Checks that every path of `all` that `runs_on` an instruction set of this CPU was seen
/// on it, and reports the ones this CPU cannot run as skipped, by name.
#[track_caller]
fn assert_covered<P: std::fmt::Debug + Copy + Eq + std::hash::Hash>(
    family: &str,
    all: &[P],
    runs_on: impl Fn(P, Isa) -> bool,
    seen: &HashSet<(Isa, P)>,
) {
    for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
        for &path in all.iter().filter(|&&path| runs_on(path, isa)) {
            if isa.supported_or_skip(&format!("paths: {family} path {path:?} on {}", isa.name())) {
                assert!(seen.contains(&(isa, path)), "{family}: {path:?} never planned on {isa:?}");
            }
        }
    }
}

#[test]
fn every_gemm_path_runs_on_every_isa_and_matches_the_reference() {
    let no = Transpose::No;
    // (shape, α): nothing to multiply, a batch of one, 16 rows, 10 columns, a square.
    let cases = [
        (GemmShape::new(5, 7, 0), 1.0),
        (GemmShape::new(9, 6, 4), 0.0),
        (GemmShape::new(1, 300, 70), 1.0),
        (GemmShape::new(200, 1, 64).transposed(Transpose::Yes, no), 0.5),
        (GemmShape::new(16, 100, 64), 1.0),
        (GemmShape::new(64, 10, 64).transposed(no, Transpose::Yes), -1.5),
        (GemmShape::new(70, 50, 90).transposed(Transpose::Yes, Transpose::Yes).with_ld(71, 93, 52), 1.0),
    ];
    let mut seen = HashSet::new();
    for isa in cpu_isas() {
        for (i, &(shape, alpha)) in cases.iter().enumerate() {
            let (a_len, b_len, c_len) =
                ((shape.m.max(shape.k)) * shape.lda, (shape.k.max(shape.n)) * shape.ldb, shape.m * shape.ldc);
            let (a, b) = (uniform(a_len, i as u64, -1.0, 1.0), uniform(b_len, 100 + i as u64, -1.0, 1.0));
            let c0 = uniform(c_len, 200 + i as u64, -1.0, 1.0);
            let beta = 0.25;
            let path = native::plan(&shape, alpha, isa);
            seen.insert((isa, path));
            let mut c = c0.clone();
            on_isa(isa, || native::sgemm(&shape, alpha, &a, &b, beta, &mut c)).unwrap();
            let mut expected = c0.clone();
            sgemm_reference(&shape, alpha, &a, &b, beta, &mut expected);
            let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
            let mut bound = abs(&c0);
            sgemm_reference(&shape, alpha.abs(), &abs(&a), &abs(&b), beta, &mut bound);
            let eps = f32::EPSILON * (shape.k as f32 + 2.0);
            let bound: Vec<f32> = bound.iter().map(|x| x * eps + 1e-30).collect();
            assert_within(&format!("{path:?} on {isa:?}, {shape:?}"), &c, &expected, &bound);
        }
    }
    assert_covered("gemm", &GemmPath::ALL, GemmPath::is_native_on, &seen);
}

/// One convolution pass on `isa` against the reference, returning the path it planned.
fn conv_pass(shape: &Conv2dShape, pass: ConvPass, isa: Isa, seed: u64) -> ConvPath {
    let x = uniform(shape.n * shape.c_in * shape.h * shape.w, seed, -1.0, 1.0);
    let weight = uniform(shape.weight_len(), seed ^ 1, -1.0, 1.0);
    let bias = uniform(shape.c_out, seed ^ 2, -1.0, 1.0);
    let y_len = shape.n * shape.c_out * shape.out_h() * shape.out_w();
    let dy = uniform(y_len, seed ^ 3, -1.0, 1.0);
    let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
    let (ax, aw, ady) = (abs(&x), abs(&weight), abs(&dy));
    let eps = f32::EPSILON * (shape.col_rows().max(shape.c_out * shape.kh * shape.kw) as f32 + 2.0);
    let mut workspace = vec![0.0; on_isa(isa, || conv::conv2d_workspace_len(shape))];
    let path = conv::plan(shape, pass, isa, workspace.len());
    let what = format!("{pass:?} {path:?} on {isa:?}, {shape:?}");
    // (actual, expected, bound) of the pass.
    let (actual, expected, bound) = match pass {
        ConvPass::Forward => {
            let mut y = vec![f32::NAN; y_len];
            on_isa(isa, || conv::conv2d_forward(shape, &x, &weight, Some(&bias), &mut y, &mut workspace))
                .unwrap();
            let (mut expected, mut bound) = (vec![0.0; y_len], vec![0.0; y_len]);
            conv::reference::conv2d_forward(shape, &x, &weight, Some(&bias), &mut expected).unwrap();
            conv::reference::conv2d_forward(shape, &ax, &aw, Some(&abs(&bias)), &mut bound).unwrap();
            (y, expected, bound)
        }
        ConvPass::BackwardData => {
            let mut dx = vec![f32::NAN; x.len()];
            on_isa(isa, || conv::conv2d_backward_data(shape, &dy, &weight, &mut dx, &mut workspace)).unwrap();
            let (mut expected, mut bound) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            conv::reference::conv2d_backward_data(shape, &dy, &weight, &mut expected).unwrap();
            conv::reference::conv2d_backward_data(shape, &ady, &aw, &mut bound).unwrap();
            (dx, expected, bound)
        }
        ConvPass::BackwardWeight => {
            // Accumulated into: start from a non-zero gradient, and the bias gradient after it.
            let start = uniform(shape.weight_len() + shape.c_out, seed ^ 4, -1.0, 1.0);
            let mut grads = start.clone();
            let (dw, db) = grads.split_at_mut(shape.weight_len());
            on_isa(isa, || conv::conv2d_backward_weight(shape, &x, &dy, dw, Some(db), &mut workspace))
                .unwrap();
            let mut expected = start.clone();
            let (ew, eb) = expected.split_at_mut(shape.weight_len());
            conv::reference::conv2d_backward_weight(shape, &x, &dy, ew, Some(eb)).unwrap();
            let mut bound = abs(&start);
            let (bw, bb) = bound.split_at_mut(shape.weight_len());
            conv::reference::conv2d_backward_weight(shape, &ax, &ady, bw, Some(bb)).unwrap();
            // The bias gradient sums out_h·out_w terms per image, the weight gradient more.
            (grads, expected, bound)
        }
    };
    let eps = eps.max(f32::EPSILON * (shape.n * shape.out_h() * shape.out_w()) as f32);
    // Winograd's transforms scale the terms before they cancel: its bound is 3e-5·Σ|terms|
    // (measured and justified in tests/conv_winograd.rs).
    let eps = if path == ConvPath::Winograd { eps.max(3e-5) } else { eps };
    let bound: Vec<f32> = bound.iter().map(|x| x * eps + 1e-30).collect();
    assert_within(&what, &actual, &expected, &bound);
    path
}

#[test]
fn every_conv_path_runs_on_every_isa_and_matches_the_reference() {
    let strided = Conv2dShape {
        stride_h: 2,
        stride_w: 2,
        pad_h: 1,
        pad_w: 1,
        ..Conv2dShape::new(2, 3, 11, 9, 5, 3, 3)
    };
    let cases = [
        // LeNet-5's second layer on 16 images: images in lanes on AVX-512 and AVX2.
        Conv2dShape::new(16, 6, 14, 14, 16, 5, 5),
        // Stride 1, padded: direct on AVX-512 (all three passes) and AVX2 (forward and
        // backward to the input).
        Conv2dShape { pad_h: 1, pad_w: 1, ..Conv2dShape::new(2, 3, 9, 10, 8, 3, 3) },
        // 1x1.
        Conv2dShape::new(2, 8, 5, 7, 12, 1, 1),
        // Stride 2, planes of 6x5 outputs: images gathered into one GEMM (forward and
        // backward to the input), im2col + GEMM per image for the weight gradient.
        strided,
        // Stride 2, planes of 12x12 outputs: im2col + GEMM per image everywhere.
        Conv2dShape {
            stride_h: 2,
            stride_w: 2,
            pad_h: 1,
            pad_w: 1,
            ..Conv2dShape::new(3, 4, 23, 23, 6, 3, 3)
        },
        // 3x3, stride 1, 32 and 36 channels: Winograd F(4x4, 3x3) on AVX-512 and AVX2.
        Conv2dShape { pad_h: 1, pad_w: 1, ..Conv2dShape::new(2, 32, 9, 10, 36, 3, 3) },
        // 13 images of 5x5 planes and 20 input channels (too many for the direct loops on
        // rows this short): gathered GEMMs over uneven runs of images.
        Conv2dShape { pad_h: 1, pad_w: 1, ..Conv2dShape::new(13, 20, 5, 5, 7, 3, 3) },
    ];
    let mut seen = HashSet::new();
    for isa in cpu_isas() {
        for (i, shape) in cases.iter().enumerate() {
            for pass in ConvPass::ALL {
                seen.insert((isa, conv_pass(shape, pass, isa, i as u64 * 10)));
            }
        }
    }
    assert_covered("conv", &ConvPath::ALL, ConvPath::runs_on, &seen);
}

#[test]
fn every_pool_path_runs_on_every_isa_and_matches_the_reference() {
    let cases = [
        // 2x2 tiled (SIMD on AVX-512 and AVX2, plain loops on portable), rows of 14 and 5.
        Pool2dShape::square(2, 3, 28, 28, 2, 2, 0),
        Pool2dShape::square(2, 3, 10, 11, 2, 2, 0),
        // 3x3 tiled: plain loops on every instruction set.
        Pool2dShape::square(2, 3, 9, 10, 3, 3, 0),
        // Overlapping, padded windows.
        Pool2dShape::square(2, 3, 9, 10, 3, 2, 1),
    ];
    let mut seen = HashSet::new();
    for isa in cpu_isas() {
        for (i, shape) in cases.iter().enumerate() {
            let x = uniform(shape.in_len(), i as u64, -1.0, 1.0);
            let dy = uniform(shape.out_len(), i as u64 ^ 7, -1.0, 1.0);
            let (mut y, mut argmax, mut dx) =
                (vec![f32::NAN; shape.out_len()], vec![0u32; shape.out_len()], vec![f32::NAN; x.len()]);
            let (mut ey, mut eargmax, mut edx) = (y.clone(), argmax.clone(), dx.clone());
            for pass in PoolPass::ALL {
                seen.insert((isa, pool::plan(shape, pass, isa)));
                let what = format!("{pass:?} on {isa:?}, {shape:?}");
                match pass {
                    PoolPass::MaxForward => {
                        on_isa(isa, || pool::maxpool2d_forward(shape, &x, &mut y, &mut argmax)).unwrap();
                        pool::reference::maxpool2d_forward(shape, &x, &mut ey, &mut eargmax);
                        assert_eq!(argmax, eargmax, "{what}");
                    }
                    PoolPass::MaxBackward => {
                        on_isa(isa, || pool::maxpool2d_backward(shape, &dy, &eargmax, &mut dx)).unwrap();
                        pool::reference::maxpool2d_backward(shape, &dy, &eargmax, &mut edx);
                    }
                    PoolPass::AvgForward => {
                        on_isa(isa, || pool::avgpool2d_forward(shape, true, &x, &mut y)).unwrap();
                        pool::reference::avgpool2d_forward(shape, true, &x, &mut ey);
                    }
                    PoolPass::AvgBackward => {
                        on_isa(isa, || pool::avgpool2d_backward(shape, true, &dy, &mut dx)).unwrap();
                        pool::reference::avgpool2d_backward(shape, true, &dy, &mut edx);
                    }
                }
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&y), bits(&ey), "{what}: y");
                assert_eq!(bits(&dx), bits(&edx), "{what}: dx");
            }
        }
    }
    assert_covered("pool", &PoolPath::ALL, PoolPath::runs_on, &seen);
}
