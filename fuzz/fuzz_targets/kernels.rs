//! The public kernel entry points with arbitrary shapes (small, huge, and everything
//! between) and slice lengths: each returns `Ok` or a typed error, never panics, and `Ok`
//! only when its slices cover the shape.
#![no_main]

use keel_kernels::conv::{self, Conv2dShape};
use keel_kernels::gemm::{sgemm, sgemm_prepacked, Epilogue, GemmShape, PackedB, Transpose};
use keel_kernels::pool::{self, Pool2dShape};
use libfuzzer_sys::fuzz_target;

/// A dimension from two bytes: mostly small, sometimes at the edges of `usize`.
fn dim(bytes: &[u8], at: usize) -> usize {
    let (a, b) = (bytes.get(at).copied().unwrap_or(1), bytes.get(at + 1).copied().unwrap_or(0));
    match b >> 6 {
        0 | 1 => usize::from(a) % 40,
        2 => usize::from(a) << (b & 63),
        _ => usize::MAX - usize::from(a),
    }
}

fuzz_target!(|data: &[u8]| {
    let d = |i: usize| dim(data, 2 * i);
    let len = |i: usize| d(i) % 4096;
    let (a, b) = (vec![0.5f32; len(0)], vec![0.25f32; len(1)]);
    let mut c = vec![0.0f32; len(2)];
    let trans = |bit: usize| if data.first().is_some_and(|&x| x >> bit & 1 == 1) { Transpose::Yes } else { Transpose::No };
    let shape = GemmShape { transa: trans(0), transb: trans(1), m: d(3), n: d(4), k: d(5), lda: d(6), ldb: d(7), ldc: d(8) };
    if sgemm(&shape, 1.0, &a, &b, 0.5, &mut c).is_ok() {
        assert!(shape.check(a.len(), b.len(), c.len()).is_ok());
    }
    let mut packed = PackedB::default();
    if packed.pack(&shape, &b).is_ok() {
        let _ = sgemm_prepacked(&shape, 1.0, &a, &packed, 0.0, &mut c, &Epilogue::NONE);
    }

    let conv_shape = Conv2dShape {
        stride_h: d(9),
        stride_w: d(9),
        pad_h: d(10),
        pad_w: d(10),
        dilation_h: d(11),
        dilation_w: d(11),
        groups: d(12),
        ..Conv2dShape::new(d(13), d(14), d(15), d(16), d(17), d(18), d(19))
    };
    let mut workspace = vec![0.0f32; conv::conv2d_workspace_len(&conv_shape).min(1 << 16)];
    if conv::conv2d_forward(&conv_shape, &a, &b, None, &mut c, &mut workspace).is_ok() {
        assert_eq!(conv_shape.x_len(), a.len());
    }
    let mut dx = vec![0.0f32; len(20)];
    let _ = conv::conv2d_backward_data(&conv_shape, &c, &b, &mut dx, &mut workspace);

    let pool_shape = Pool2dShape {
        stride_w: d(28),
        pad_w: d(29),
        kw: d(30),
        ceil_mode: data.first().is_some_and(|&x| x & 4 != 0),
        ..Pool2dShape::square(d(21), d(22), d(23), d(24), d(25), d(26), d(31))
    };
    let mut argmax = vec![0u32; len(27)];
    let _ = pool::maxpool2d_forward(&pool_shape, &a, &mut c, &mut argmax);
});
