//! Shape arguments up to `usize::MAX` never make a checked kernel panic or touch memory out
//! of bounds: every family either rejects the call with a typed error or runs it within the
//! small slices it was given.
//!
//! The dimensions come from a mix of small values and values near the overflow points of
//! the shape arithmetic (`2^32`, `2^60`, `2^63`, `usize::MAX / 3 + 1`, `usize::MAX`); the
//! slices are a few dozen floats, so a kernel that accepted a shape it should have refused
//! would index far outside them (a panic, or a fault in SIMD code).

mod common;

use common::uniform;
use keel_kernels::activation::softmax_forward;
use keel_kernels::conv::{self, Conv2dShape, ConvPass};
use keel_kernels::gemm::{
    sgemm, sgemm_fused, sgemm_strided_batched, BatchStrides, Epilogue, GemmShape, Transpose,
};
use keel_kernels::isa::{current_isa, Isa};
use keel_kernels::loss::softmax_cross_entropy_forward;
use keel_kernels::norm::{batchnorm_forward_eval, batchnorm_forward_train};
use keel_kernels::pool::{self, Pool2dShape, PoolPass};
use keel_kernels::rnn::{lstm_cell_forward, lstm_preact_forward, RnnWeights};
use keel_kernels::KernelError;
use proptest::prelude::*;

/// A dimension: small, or near an overflow point of the shape arithmetic.
fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![
        9 => 0usize..5,
        1 => proptest::sample::select(vec![
            usize::MAX,
            usize::MAX - 1,
            usize::MAX / 2,
            usize::MAX / 2 + 1,
            usize::MAX / 3 + 1,
            1 << 32,
            (1 << 32) + 1,
            1 << 60,
            1 << 62,
            1 << 63,
        ]),
    ]
}

fn transpose() -> impl Strategy<Value = Transpose> {
    prop_oneof![Just(Transpose::No), Just(Transpose::Yes)]
}

/// Slices of `len` floats each, for operands that must fit in them.
fn slices(len: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    (uniform(len, 1, -1.0, 1.0), uniform(len, 2, -1.0, 1.0), uniform(len, 3, -1.0, 1.0))
}

/// Runs `f` on every instruction set the CPU has (each path's checks and planning differ).
fn on_every_isa(f: impl Fn()) {
    for isa in Isa::available() {
        keel_kernels::isa::with_isa(isa, &f).unwrap();
    }
}

/// The calls must end in `Ok` or a typed shape, length or argument error (any is typed:
/// the point is that they return at all).
fn returned<T>(_: Result<T, KernelError>) {}

/// `(rows - 1)·ld + cols` in exact arithmetic (0 for an empty matrix).
fn span(rows: usize, cols: usize, ld: usize) -> u128 {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows as u128 - 1) * ld as u128 + cols as u128
    }
}

/// The product of `dims` in exact arithmetic (saturating at `u128::MAX`).
fn product(dims: &[usize]) -> u128 {
    dims.iter().fold(1u128, |p, &d| p.saturating_mul(d as u128))
}

/// Asserts that a call that returned `Ok` was given a slice of at least `needed` floats
/// (computed without overflow): a wrapped check would accept less.
#[track_caller]
fn ok_implies_fits<T>(what: &str, result: Result<T, KernelError>, needed: u128, len: usize) {
    if result.is_ok() {
        assert!(needed <= len as u128, "{what}: Ok with a slice of {len} where the shape needs {needed}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// The call: `ldc = 2^60` used to wrap the span check and fault.
    #[test]
    fn gemm_never_panics(
        (m, n, k) in (dim(), dim(), dim()),
        (lda, ldb, ldc) in (dim(), dim(), dim()),
        (transa, transb) in (transpose(), transpose()),
        (batch, sa, sb, sc) in (dim(), dim(), dim(), dim()),
        len in 0usize..48,
    ) {
        let (a, b, c0) = slices(len);
        let shape = GemmShape { transa, transb, m, n, k, lda, ldb, ldc };
        let stored = |trans, rows, cols| if trans == Transpose::No { (rows, cols) } else { (cols, rows) };
        let ((ar, ac), (br, bc)) = (stored(transa, m, k), stored(transb, k, n));
        // The largest of the three spans, and the same for the last matrix of a batch.
        let one = span(ar, ac, lda).max(span(br, bc, ldb)).max(span(m, n, ldc));
        let last = |stride: usize, span: u128| if span == 0 || batch == 0 { 0 } else { (batch as u128 - 1) * stride as u128 + span };
        let batched = last(sa, span(ar, ac, lda)).max(last(sb, span(br, bc, ldb))).max(last(sc, span(m, n, ldc)));
        on_every_isa(|| {
            let mut c = c0.clone();
            ok_implies_fits("sgemm", sgemm(&shape, 1.0, &a, &b, 0.5, &mut c), one, len);
            ok_implies_fits("sgemm_fused", sgemm_fused(&shape, 1.0, &a, &b, 0.0, &mut c, &Epilogue::NONE), one, len);
            let strides = BatchStrides { a: sa, b: sb, c: sc };
            let result = sgemm_strided_batched(&shape, batch, strides, 1.0, &a, &b, 0.0, &mut c, &Epilogue::NONE);
            ok_implies_fits("sgemm_strided_batched", result, batched, len);
        });
    }

    #[test]
    fn conv_never_panics(
        (n, c_in, h, w, c_out) in (dim(), dim(), dim(), dim(), dim()),
        (kh, kw, stride, pad, dilation, groups) in (dim(), dim(), dim(), dim(), dim(), dim()),
        len in 0usize..64,
        workspace_len in 0usize..256,
    ) {
        let shape = Conv2dShape {
            stride_h: stride, stride_w: stride, pad_h: pad, pad_w: pad,
            dilation_h: dilation, dilation_w: dilation, groups,
            ..Conv2dShape::new(n, c_in, h, w, c_out, kh, kw)
        };
        let (x, weight, y0) = slices(len);
        on_every_isa(|| {
            let ws = conv::conv2d_workspace_len(&shape).min(4096).max(workspace_len);
            for pass in ConvPass::ALL {
                conv::plan(&shape, pass, current_isa(), ws);
            }
            let mut workspace = vec![0.0; ws];
            let (mut y, mut dx, mut dw) = (y0.clone(), y0.clone(), y0.clone());
            let x_len = product(&[n, c_in, h, w]);
            ok_implies_fits("conv2d_forward", conv::conv2d_forward(&shape, &x, &weight, None, &mut y, &mut workspace), x_len, len);
            returned(conv::conv2d_backward_data(&shape, &y0, &weight, &mut dx, &mut workspace));
            returned(conv::conv2d_backward_weight(&shape, &x, &y0, &mut dw, None, &mut workspace));
            returned(conv::im2col(&shape, &x, &mut y));
            returned(conv::col2im(&shape, &x, &mut dx));
        });
    }

    #[test]
    fn pool_never_panics(
        (n, c, h, w) in (dim(), dim(), dim(), dim()),
        (kh, kw, stride, pad) in (dim(), dim(), dim(), dim()),
        ceil_mode in any::<bool>(),
        len in 0usize..64,
    ) {
        let shape = Pool2dShape { kh, kw, ..Pool2dShape::square(n, c, h, w, 1, stride, pad) }.with_ceil_mode(ceil_mode);
        let (x, dy, y0) = slices(len);
        on_every_isa(|| {
            for pass in PoolPass::ALL {
                pool::plan(&shape, pass, current_isa());
            }
            let (mut y, mut dx, mut argmax) = (y0.clone(), y0.clone(), vec![0u32; len]);
            let x_len = product(&[n, c, h, w]);
            ok_implies_fits("maxpool2d_forward", pool::maxpool2d_forward(&shape, &x, &mut y, &mut argmax), x_len, len);
            returned(pool::maxpool2d_backward(&shape, &dy, &argmax, &mut dx));
            returned(pool::avgpool2d_forward(&shape, true, &x, &mut y));
            returned(pool::avgpool2d_backward(&shape, false, &dy, &mut dx));
            returned(pool::global_avgpool_forward(n, c, h, w, &x, &mut y));
            returned(pool::global_avgpool_backward(n, c, h, w, &dy, &mut dx));
        });
    }

    #[test]
    fn row_families_never_panic(
        (rows, cols, third) in (dim(), dim(), dim()),
        len in 0usize..64,
    ) {
        let (x, p, q) = slices(len);
        let targets = vec![0u32; len];
        on_every_isa(|| {
            let mut y = q.clone();
            ok_implies_fits("softmax_forward", softmax_forward(rows, cols, &x, &mut y), product(&[rows, cols]), len);
            returned(softmax_cross_entropy_forward(rows, cols, &x, &targets, &mut y));
            // Batch norm: (n, c, spatial) = (rows, cols, third).
            let (mut rm, mut rv, mut sm, mut si) = (p.clone(), p.clone(), p.clone(), p.clone());
            returned(batchnorm_forward_train(
                rows, cols, third, &x, &p, &q, 1e-5, 0.1, &mut rm, &mut rv, &mut y, &mut sm, &mut si,
            ));
            let result = batchnorm_forward_eval(rows, cols, third, &x, &p, &q, &p, &p, 1e-5, &mut y);
            ok_implies_fits("batchnorm_forward_eval", result, product(&[rows, cols, third]), len);
            // Recurrent cells: (batch, input, hidden) = (rows, third, cols).
            let (mut c, mut h, mut cache) = (q.clone(), q.clone(), q.clone());
            returned(lstm_cell_forward(rows, cols, &x, &p, &mut c, &mut h, &mut cache));
            let weights = RnnWeights { weight_ih: &p, weight_hh: &p, bias_ih: &q, bias_hh: &q };
            returned(lstm_preact_forward(rows, third, cols, &x, &p, &weights, &mut y));
        });
    }
}

/// The call from the issue that faulted on an AVX2 CPU, and the one that returned `Ok` with
/// C's rows written over each other: both are length errors naming `c`, on every ISA.
#[test]
fn wrapping_leading_dimensions_are_length_errors() {
    let (m, n, k) = (17, 32, 8);
    let (a, b) = (vec![1.0f32; m * k], vec![1.0f32; k * n]);
    on_every_isa(|| {
        let mut c = vec![0.0f32; n];
        let shape = GemmShape::new(m, n, k).with_ld(k, n, 1 << 60);
        let err = sgemm(&shape, 1.0, &a, &b, 0.0, &mut c).unwrap_err();
        assert!(matches!(&err, KernelError::Length { what, .. } if what.starts_with("c ")), "{err}");
        let shape = GemmShape::new(3, n, k).with_ld(k, n, 1 << 63);
        let err = sgemm(&shape, 1.0, &a[..3 * k], &b, 0.0, &mut c).unwrap_err();
        assert!(matches!(&err, KernelError::Length { what, .. } if what.starts_with("c ")), "{err}");
        assert!(c.iter().all(|&x| x == 0.0), "C written before the error");
    });
}
