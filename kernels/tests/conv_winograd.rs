//! The Winograd F(4x4, 3x3) path against the f64 references: every pass, the shapes it is
//! planned for (padding 0 to 2 on each side, channels that do and do not fill whole vectors,
//! planes of 1 to several tiles with ragged edges), on AVX-512 and AVX2, on one and two
//! threads, and its fallback when the workspace is too short for it.
//!
//! Tolerance: the transforms scale the terms of each sum before they cancel, so the rounding
//! error of an output is proportional to the sum of its products' magnitudes `Σ|w·x|`, not
//! to the output itself. Each element must stay within `WINOGRAD_RTOL·Σ|w·x|` (the magnitudes
//! computed by the reference on `|w|` and `|x|`); the largest ratio measured over these
//! shapes is 1.1e-5 (see `conv::winograd`'s docs). A wrong tap, channel or tile
//! moves an element by a whole product, far above the bound.

mod common;

use common::{cpu_isas, edge_size, on_isa, uniform};
use keel_kernels::conv::{
    conv2d_backward_data, conv2d_backward_weight, conv2d_forward_fused, conv2d_workspace_len, plan,
    reference, Conv2dShape, ConvPass, ConvPath,
};
use keel_kernels::gemm::Activation;
use keel_kernels::isa::Isa;
use proptest::prelude::*;

/// Largest error allowed, as a share of the sum of the products' magnitudes.
const WINOGRAD_RTOL: f32 = 3e-5;

/// A random shape the Winograd path takes: 3x3, stride 1, one group, padding 0 to 2 on each
/// axis, 32 to 50 channels in and out (whole vectors of 8 and 16 and remainders), 1 to 3
/// images, output planes of 1 to 19 positions a side (one tile, several, ragged last tiles).
fn winograd_shape() -> impl Strategy<Value = Conv2dShape> {
    let channels = prop_oneof![Just(32usize), Just(33), Just(39), Just(40), Just(48), Just(49), 32usize..=50];
    (1usize..=3, channels.clone(), channels, (edge_size(19), edge_size(19)), (0usize..=2, 0usize..=2))
        .prop_map(|(n, c_in, c_out, (out_h, out_w), (pad_h, pad_w))| {
            // out = in + 2·pad - 2: the input that gives the drawn output (at least 1).
            let input = |out: usize, pad: usize| (out + 2).saturating_sub(2 * pad).max(1);
            Conv2dShape {
                pad_h,
                pad_w,
                ..Conv2dShape::new(n, c_in, input(out_h, pad_h), input(out_w, pad_w), c_out, 3, 3)
            }
        })
}

/// The instruction sets with a Winograd path on this CPU (AVX-512 reported skipped by
/// `test`'s name where the CPU lacks it).
fn winograd_isas(test: &str) -> Vec<Isa> {
    Isa::Avx512.supported_or_skip(&format!("{test} (AVX-512)"));
    cpu_isas().into_iter().filter(|&isa| ConvPath::Winograd.runs_on(isa)).collect()
}

/// `|v|` elementwise.
fn magnitudes(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

/// Asserts `|actual - expected| <= WINOGRAD_RTOL·scale + 1e-6` elementwise (`scale`: the sums
/// of the products' magnitudes) and returns the largest `|actual - expected| / scale`.
#[track_caller]
fn assert_within(what: &str, actual: &[f32], expected: &[f32], scale: &[f32]) -> f32 {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    let mut worst = 0.0f32;
    for (i, ((&a, &e), &s)) in actual.iter().zip(expected).zip(scale).enumerate() {
        let error = (a - e).abs();
        assert!(error <= WINOGRAD_RTOL * s + 1e-6, "{what}[{i}]: {a} vs {e} (scale {s})");
        if s > 0.0 {
            worst = worst.max(error / s);
        }
    }
    worst
}

/// The three passes of `s` on the current instruction set with a workspace of `len` floats,
/// against the references; returns the largest error ratio of each.
fn check_passes(s: &Conv2dShape, seed: u64, len: usize) -> [f32; 3] {
    let x = uniform(s.x_len(), seed, -1.0, 1.0);
    let weight = uniform(s.weight_len(), seed + 1, -1.0, 1.0);
    let bias = uniform(s.c_out, seed + 2, -1.0, 1.0);
    let dy = uniform(s.y_len(), seed + 3, -1.0, 1.0);
    let (x_abs, weight_abs, dy_abs) = (magnitudes(&x), magnitudes(&weight), magnitudes(&dy));
    let mut workspace = vec![f32::NAN; len];

    // Forward with a bias and a leaky ReLU (slope 1/4 keeps the negative side's error
    // within the same bound).
    let activation = Activation::LeakyRelu(0.25);
    let mut expected = vec![0.0; s.y_len()];
    reference::conv2d_forward(s, &x, &weight, Some(&bias), &mut expected).unwrap();
    expected.iter_mut().for_each(|v| *v = if *v < 0.0 { 0.25 * *v } else { *v });
    let mut scale = vec![0.0; s.y_len()];
    reference::conv2d_forward(s, &x_abs, &weight_abs, None, &mut scale).unwrap();
    let mut y = vec![f32::NAN; s.y_len()];
    conv2d_forward_fused(s, &x, &weight, Some(&bias), activation, &mut y, &mut workspace).unwrap();
    let forward = assert_within(&format!("y {s:?}"), &y, &expected, &scale);

    let mut expected = vec![0.0; s.x_len()];
    reference::conv2d_backward_data(s, &dy, &weight, &mut expected).unwrap();
    let mut scale = vec![0.0; s.x_len()];
    reference::conv2d_backward_data(s, &dy_abs, &weight_abs, &mut scale).unwrap();
    let mut dx = vec![f32::NAN; s.x_len()];
    conv2d_backward_data(s, &dy, &weight, &mut dx, &mut workspace).unwrap();
    let data = assert_within(&format!("dx {s:?}"), &dx, &expected, &scale);

    // Non-zero starting gradients: the pass adds to them.
    let dweight0 = uniform(s.weight_len(), seed + 4, -1.0, 1.0);
    let dbias0 = uniform(s.c_out, seed + 5, -1.0, 1.0);
    let (mut expected_w, mut expected_b) = (dweight0.clone(), dbias0.clone());
    reference::conv2d_backward_weight(s, &x, &dy, &mut expected_w, Some(&mut expected_b)).unwrap();
    let mut scale_w = magnitudes(&dweight0);
    reference::conv2d_backward_weight(s, &x_abs, &dy_abs, &mut scale_w, None).unwrap();
    let (mut dweight, mut dbias) = (dweight0, dbias0);
    conv2d_backward_weight(s, &x, &dy, &mut dweight, Some(&mut dbias), &mut workspace).unwrap();
    let weights = assert_within(&format!("dweight {s:?}"), &dweight, &expected_w, &scale_w);
    let scale_b: Vec<f32> = expected_b.iter().map(|_| (s.n * s.out_h() * s.out_w() + 1) as f32).collect();
    assert_within(&format!("dbias {s:?}"), &dbias, &expected_b, &scale_b);
    [forward, data, weights]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Every pass planned on the Winograd path with a full workspace matches the references
    /// on one and two threads; a workspace one float short of its slot leaves each pass to
    /// another path, which matches them too.
    #[test]
    fn winograd_path_matches_reference(s in winograd_shape(), seed in any::<u64>(), threads in 1usize..=2) {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        for isa in winograd_isas("conv_winograd::winograd_path_matches_reference") {
            pool.install(|| on_isa(isa, || {
                let full = conv2d_workspace_len(&s);
                for pass in ConvPass::ALL {
                    assert_eq!(plan(&s, pass, isa, full), ConvPath::Winograd, "{pass:?} of {s:?} on {isa:?}");
                }
                check_passes(&s, seed, full);
            }));
        }
    }
}

/// Below its slot's length the plan leaves each pass to another path.
#[test]
fn short_workspace_falls_back_to_another_path() {
    let s = Conv2dShape::new(2, 40, 9, 11, 36, 3, 3).with_pad(1);
    for isa in winograd_isas("conv_winograd::short_workspace_falls_back_to_another_path") {
        on_isa(isa, || {
            let one_column_buffer = s.col_len();
            for pass in ConvPass::ALL {
                assert_ne!(plan(&s, pass, isa, one_column_buffer), ConvPath::Winograd, "{pass:?} on {isa:?}");
            }
            check_passes(&s, 7, one_column_buffer);
        });
    }
}

/// The same inputs give the same bits on two threads, run after run; the error ratios of a
/// ResNet-like layer stay within the bound (printed for `docs/kernels.md`).
#[test]
fn resnet_like_layer_is_deterministic_and_within_bound() {
    let s = Conv2dShape::new(4, 64, 14, 14, 64, 3, 3).with_pad(1);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    for isa in winograd_isas("conv_winograd::resnet_like_layer_is_deterministic_and_within_bound") {
        pool.install(|| {
            on_isa(isa, || {
                let len = conv2d_workspace_len(&s);
                let x = uniform(s.x_len(), 11, -1.0, 1.0);
                let weight = uniform(s.weight_len(), 12, -1.0, 1.0);
                let runs: Vec<Vec<f32>> = (0..2)
                    .map(|_| {
                        let mut y = vec![0.0; s.y_len()];
                        let mut workspace = vec![0.0; len];
                        conv2d_forward_fused(
                            &s,
                            &x,
                            &weight,
                            None,
                            Activation::Identity,
                            &mut y,
                            &mut workspace,
                        )
                        .unwrap();
                        y
                    })
                    .collect();
                assert!(runs[0].iter().zip(&runs[1]).all(|(a, b)| a.to_bits() == b.to_bits()));
                let worst = check_passes(&s, 13, len);
                println!("{isa:?}: worst error / Σ|products| (forward, data, weight) = {worst:?}");
            })
        });
    }
}
