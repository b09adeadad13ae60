//! Scalar references: PyTorch's CPU loops written out plainly, window by window, the ground
//! truth for the fast paths and the baseline in the benches.
//!
//! Windows are computed here in signed arithmetic exactly as PyTorch does (start
//! `o·stride - pad`, end `start + kernel`, then clipped), independently of the geometry
//! helpers the fast paths use. Each function panics if a slice is shorter than `shape`
//! implies (call [`Pool2dShape::check`] first); the public kernels in [`super`] are checked.

use super::Pool2dShape;

/// One window on one axis: `(lo, hi)` clipped to the input, and the length of the window
/// clipped to the padded input (`count_include_pad`'s factor).
fn window(o: usize, size: usize, k: usize, s: usize, p: usize) -> (usize, usize, usize) {
    let start = (o * s) as isize - p as isize;
    let end = start + k as isize;
    let padded_len = end.min((size + p) as isize) - start;
    (start.max(0) as usize, end.min(size as isize) as usize, padded_len as usize)
}

/// Max pool forward: `y[oh, ow]` = the max of the window, `argmax[oh, ow]` = its flat index
/// `ih·w + iw` in the input plane. Scan in window order from `-inf` at the first element's
/// index, taking `v` when `v > max || v.is_nan()` (PyTorch's rule: the first of equal maxima
/// wins, a NaN always wins, so the last NaN of the window is recorded).
pub fn maxpool2d_forward(shape: &Pool2dShape, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
    let (h, w, oh_n, ow_n) = (shape.h, shape.w, shape.out_h(), shape.out_w());
    for plane in 0..shape.n * shape.c {
        let xp = &x[plane * h * w..][..h * w];
        for oh in 0..oh_n {
            let (h0, h1, _) = window(oh, h, shape.kh, shape.stride_h, shape.pad_h);
            for ow in 0..ow_n {
                let (w0, w1, _) = window(ow, w, shape.kw, shape.stride_w, shape.pad_w);
                let mut best = f32::NEG_INFINITY;
                let mut best_index = h0 * w + w0;
                for ih in h0..h1 {
                    for iw in w0..w1 {
                        let v = xp[ih * w + iw];
                        if v > best || v.is_nan() {
                            best = v;
                            best_index = ih * w + iw;
                        }
                    }
                }
                let o = plane * oh_n * ow_n + oh * ow_n + ow;
                y[o] = best;
                argmax[o] = best_index as u32;
            }
        }
    }
}

/// Max pool backward: `dx` overwritten with zeros, then `dx[argmax[o]] += dy[o]` plane by
/// plane in output order. Panics on an index outside the plane.
pub fn maxpool2d_backward(shape: &Pool2dShape, dy: &[f32], argmax: &[u32], dx: &mut [f32]) {
    let plane_in = shape.h * shape.w;
    let plane_out = shape.out_h() * shape.out_w();
    dx.iter_mut().for_each(|v| *v = 0.0);
    for plane in 0..shape.n * shape.c {
        for o in 0..plane_out {
            let i = argmax[plane * plane_out + o] as usize;
            assert!(i < plane_in, "argmax index {i} outside the plane of {plane_in}");
            dx[plane * plane_in + i] += dy[plane * plane_out + o];
        }
    }
}

/// Divisor of a window: its padded extent when `count_include_pad`, else its input elements.
fn divisor(shape: &Pool2dShape, oh: usize, ow: usize, count_include_pad: bool) -> f32 {
    let (h0, h1, hp) = window(oh, shape.h, shape.kh, shape.stride_h, shape.pad_h);
    let (w0, w1, wp) = window(ow, shape.w, shape.kw, shape.stride_w, shape.pad_w);
    (if count_include_pad { hp * wp } else { (h1 - h0) * (w1 - w0) }) as f32
}

/// Average pool forward: `y[oh, ow]` = (sum of the window's input elements, in window order,
/// in `f32`) / divisor.
pub fn avgpool2d_forward(shape: &Pool2dShape, count_include_pad: bool, x: &[f32], y: &mut [f32]) {
    let (h, w, oh_n, ow_n) = (shape.h, shape.w, shape.out_h(), shape.out_w());
    for plane in 0..shape.n * shape.c {
        let xp = &x[plane * h * w..][..h * w];
        for oh in 0..oh_n {
            let (h0, h1, _) = window(oh, h, shape.kh, shape.stride_h, shape.pad_h);
            for ow in 0..ow_n {
                let (w0, w1, _) = window(ow, w, shape.kw, shape.stride_w, shape.pad_w);
                let mut sum = 0.0f32;
                for ih in h0..h1 {
                    for iw in w0..w1 {
                        sum += xp[ih * w + iw];
                    }
                }
                y[plane * oh_n * ow_n + oh * ow_n + ow] = sum / divisor(shape, oh, ow, count_include_pad);
            }
        }
    }
}

/// Average pool backward: `dx` overwritten with zeros, then each output's `dy / divisor`
/// added to every input element of its window (overlapping windows add).
pub fn avgpool2d_backward(shape: &Pool2dShape, count_include_pad: bool, dy: &[f32], dx: &mut [f32]) {
    let (h, w, oh_n, ow_n) = (shape.h, shape.w, shape.out_h(), shape.out_w());
    dx.iter_mut().for_each(|v| *v = 0.0);
    for plane in 0..shape.n * shape.c {
        let dxp = &mut dx[plane * h * w..][..h * w];
        for oh in 0..oh_n {
            let (h0, h1, _) = window(oh, h, shape.kh, shape.stride_h, shape.pad_h);
            for ow in 0..ow_n {
                let (w0, w1, _) = window(ow, w, shape.kw, shape.stride_w, shape.pad_w);
                let g = dy[plane * oh_n * ow_n + oh * ow_n + ow] / divisor(shape, oh, ow, count_include_pad);
                for ih in h0..h1 {
                    for iw in w0..w1 {
                        dxp[ih * w + iw] += g;
                    }
                }
            }
        }
    }
}

/// Global average pool forward: `y[n, c]` = mean of plane `x[n, c, :, :]`, summed in `f64`
/// (so the reference's own rounding is negligible next to the fast path's).
pub fn global_avgpool_forward(n: usize, c: usize, h: usize, w: usize, x: &[f32], y: &mut [f32]) {
    let plane = h * w;
    for p in 0..n * c {
        let sum: f64 = x[p * plane..][..plane].iter().map(|&v| f64::from(v)).sum();
        y[p] = (sum / plane as f64) as f32;
    }
}

/// Global average pool backward: every element of plane `dx[n, c, :, :]` overwritten with
/// `dy[n, c] / (h·w)`.
pub fn global_avgpool_backward(n: usize, c: usize, h: usize, w: usize, dy: &[f32], dx: &mut [f32]) {
    let plane = h * w;
    for p in 0..n * c {
        let g = dy[p] / plane as f32;
        dx[p * plane..][..plane].iter_mut().for_each(|v| *v = g);
    }
}
