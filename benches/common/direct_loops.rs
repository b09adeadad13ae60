//! Plain f32 convolution loops: the fast baseline of `benches/conv.rs`, beside keel's paths
//! and the f64 reference (`conv::reference`, a correctness oracle, not a fast loop).
//!
//! What a careful user writes without SIMD code: loops over (image, output channel, input
//! channel, tap, output row) with the output row innermost, its range clipped to the padding
//! once per row so the inner loop has no branch; the compiler vectorises it (stride 1) for
//! the build's baseline instruction set. The weight gradient's dot products keep eight
//! partial sums so that they vectorise too. Groups 1, dilation 1; allocation-free.
//!
//! The three passes write their loop nests out rather than share an iterator or a visitor
//! over taps or rows: both of those ran the baseline slower (`docs/tuning.md`), which would
//! flatter keel.
#![allow(dead_code)] // `examples/peer_timings.rs` includes it through `conv_work.rs` and runs none of it

use keel::kernels::conv::Conv2dShape;

/// The output columns `ow` whose input column `ow·stride + tap - pad` lies in `0..w`.
fn valid_columns(out_w: usize, w: usize, stride: usize, pad: usize, tap: usize) -> std::ops::Range<usize> {
    let first = (pad.saturating_sub(tap)).div_ceil(stride);
    // ow·stride + tap < w + pad  ⇔  ow < (w + pad - tap) / stride, rounded up.
    let end = (w + pad).saturating_sub(tap).div_ceil(stride).min(out_w);
    first.min(end)..end
}

/// The input row output row `oy` reads through kernel row `ky`, if it is not padding.
fn input_row(s: &Conv2dShape, oy: usize, ky: usize) -> Option<usize> {
    (oy * s.stride_h + ky).checked_sub(s.pad_h).filter(|&iy| iy < s.h)
}

/// Where `weight[co, ci, ky, kx]` is.
fn weight_index(s: &Conv2dShape, co: usize, ci: usize, ky: usize, kx: usize) -> usize {
    ((co * s.c_in + ci) * s.kh + ky) * s.kw + kx
}

fn check(s: &Conv2dShape) {
    assert!(s.groups == 1 && s.dilation_h == 1 && s.dilation_w == 1, "direct loops: groups 1, dilation 1");
}

/// y (n, c_out, out_h, out_w) = bias + x ⋆ weight; x (n, c_in, h, w), weight (c_out, c_in, kh, kw).
pub fn forward(s: &Conv2dShape, x: &[f32], weight: &[f32], bias: &[f32], y: &mut [f32]) {
    check(s);
    let (oh_n, ow_n) = (s.out_h(), s.out_w());
    for n in 0..s.n {
        for co in 0..s.c_out {
            let plane = &mut y[(n * s.c_out + co) * oh_n * ow_n..][..oh_n * ow_n];
            plane.fill(bias[co]);
            for ci in 0..s.c_in {
                let input = &x[(n * s.c_in + ci) * s.h * s.w..][..s.h * s.w];
                for ky in 0..s.kh {
                    for kx in 0..s.kw {
                        let wv = weight[weight_index(s, co, ci, ky, kx)];
                        let cols = valid_columns(ow_n, s.w, s.stride_w, s.pad_w, kx);
                        for oy in 0..oh_n {
                            let Some(iy) = input_row(s, oy, ky) else { continue };
                            let row = &input[iy * s.w..][..s.w];
                            let out = &mut plane[oy * ow_n..][..ow_n];
                            axpy(wv, row, &mut out[cols.clone()], cols.start, s.stride_w, kx, s.pad_w);
                        }
                    }
                }
            }
        }
    }
}

/// dx (n, c_in, h, w) = the transposed convolution of dy (n, c_out, out_h, out_w) with weight.
pub fn backward_data(s: &Conv2dShape, dy: &[f32], weight: &[f32], dx: &mut [f32]) {
    check(s);
    let (oh_n, ow_n) = (s.out_h(), s.out_w());
    dx.fill(0.0);
    for n in 0..s.n {
        for co in 0..s.c_out {
            let grad = &dy[(n * s.c_out + co) * oh_n * ow_n..][..oh_n * ow_n];
            for ci in 0..s.c_in {
                let input = &mut dx[(n * s.c_in + ci) * s.h * s.w..][..s.h * s.w];
                for ky in 0..s.kh {
                    for kx in 0..s.kw {
                        let wv = weight[weight_index(s, co, ci, ky, kx)];
                        let cols = valid_columns(ow_n, s.w, s.stride_w, s.pad_w, kx);
                        for oy in 0..oh_n {
                            let Some(iy) = input_row(s, oy, ky) else { continue };
                            let row = &mut input[iy * s.w..][..s.w];
                            let g = &grad[oy * ow_n..][..ow_n];
                            scatter(wv, &g[cols.clone()], row, cols.start, s.stride_w, kx, s.pad_w);
                        }
                    }
                }
            }
        }
    }
}

/// dweight (c_out, c_in, kh, kw) += Σ dy·x over images and output positions; dbias (c_out) += Σ dy.
/// Both accumulated, as keel's parameter gradients are.
pub fn backward_weight(s: &Conv2dShape, x: &[f32], dy: &[f32], dweight: &mut [f32], dbias: &mut [f32]) {
    check(s);
    let (oh_n, ow_n) = (s.out_h(), s.out_w());
    for n in 0..s.n {
        for co in 0..s.c_out {
            let grad = &dy[(n * s.c_out + co) * oh_n * ow_n..][..oh_n * ow_n];
            dbias[co] += grad.iter().sum::<f32>();
            for ci in 0..s.c_in {
                let input = &x[(n * s.c_in + ci) * s.h * s.w..][..s.h * s.w];
                for ky in 0..s.kh {
                    for kx in 0..s.kw {
                        let cols = valid_columns(ow_n, s.w, s.stride_w, s.pad_w, kx);
                        let mut total = 0.0;
                        for oy in 0..oh_n {
                            let Some(iy) = input_row(s, oy, ky) else { continue };
                            let row = &input[iy * s.w..][..s.w];
                            let g = &grad[oy * ow_n..][..ow_n];
                            total += if s.stride_w == 1 {
                                let shift = cols.start + kx - s.pad_w;
                                dot8(&g[cols.clone()], &row[shift..shift + cols.len()])
                            } else {
                                cols.clone().map(|ox| g[ox] * row[ox * s.stride_w + kx - s.pad_w]).sum()
                            };
                        }
                        dweight[weight_index(s, co, ci, ky, kx)] += total;
                    }
                }
            }
        }
    }
}

/// out[j] += a·row[(first + j)·stride + tap - pad]: with stride 1 a zip of two slices, which
/// the compiler vectorises without bounds checks.
fn axpy(a: f32, row: &[f32], out: &mut [f32], first: usize, stride: usize, tap: usize, pad: usize) {
    let shift = first * stride + tap - pad;
    if stride == 1 {
        let len = out.len();
        for (o, r) in out.iter_mut().zip(&row[shift..shift + len]) {
            *o += a * r;
        }
    } else {
        for (o, r) in out.iter_mut().zip(row[shift..].iter().step_by(stride)) {
            *o += a * r;
        }
    }
}

/// row[(first + j)·stride + tap - pad] += a·g[j]: the transpose of [`axpy`].
fn scatter(a: f32, g: &[f32], row: &mut [f32], first: usize, stride: usize, tap: usize, pad: usize) {
    let shift = first * stride + tap - pad;
    if stride == 1 {
        for (r, v) in row[shift..shift + g.len()].iter_mut().zip(g) {
            *r += a * v;
        }
    } else {
        for (r, v) in row[shift..].iter_mut().step_by(stride).zip(g) {
            *r += a * v;
        }
    }
}

/// Σ a·b in eight partial sums, so that the compiler puts them in vector lanes.
fn dot8(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8.remainder().iter().zip(b8.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a8.zip(b8) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}
