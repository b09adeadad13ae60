//! Average pool forward and backward.

use rayon::prelude::*;
use wide::f32x8;

use super::path::PoolPath;
use super::plan::{plan, PoolPass};
use super::shape::{block_starts, Geometry};
use super::tiled::Tiles;
use super::{gather, planes_per_task, with_stride, Pool2dShape, LANES};
use crate::error::Result;
use crate::isa::current_isa;

/// Average pool forward (PyTorch `avg_pool2d`, no `divisor_override`).
///
/// `count_include_pad` is PyTorch's option of that name (its default is `true`).
/// `x` is `(n, c, h, w)`; `y` is `(n, c, out_h, out_w)`, **overwritten** with the sum of
/// each window's input elements (in row-major window order, in `f32`, the same order as the
/// reference, so both give the same bits) divided by the window's divisor: with
/// `count_include_pad` the window clipped to the padded input (padding counts as zeros; with
/// `ceil_mode` the part past the padding does not count), otherwise the number of input
/// elements it covers.
///
/// ```
/// use keel_kernels::pool::{avgpool2d_forward, Pool2dShape};
/// # fn main() -> keel_kernels::Result<()> {
/// // x (1, 1, 2, 2), 2x2 windows, stride 2, padding 1: y (1, 1, 2, 2), each window holding
/// // one input element and three of padding.
/// let shape = Pool2dShape::square(1, 1, 2, 2, 2, 2, 1);
/// let x = [1.0, 2.0, 3.0, 4.0];
/// let mut y = [0.0; 4];
/// avgpool2d_forward(&shape, true, &x, &mut y)?; // padding counts: divide by 4
/// assert_eq!(y, [0.25, 0.5, 0.75, 1.0]);
/// avgpool2d_forward(&shape, false, &x, &mut y)?; // divide by the 1 input element
/// assert_eq!(y, [1.0, 2.0, 3.0, 4.0]);
/// # Ok(())
/// # }
/// ```
pub fn avgpool2d_forward(
    shape: &Pool2dShape,
    count_include_pad: bool,
    x: &[f32],
    y: &mut [f32],
) -> Result<()> {
    shape.check()?;
    shape.check_in_len("x", x.len())?;
    shape.check_out_len("y", y.len())?;
    let g = shape.geometry();
    if g.planes == 0 {
        return Ok(());
    }
    let (pin, pout) = (g.in_plane(), g.out_plane());
    // Tiled windows have no padding and no clipping: the divisor is k² either way.
    let path = plan(shape, PoolPass::AvgForward, current_isa());
    let tiles = Tiles::new(shape).filter(|_| path != PoolPath::Windows);
    let run = |x: &[f32], y: &mut [f32]| match tiles {
        Some(tiles) => tiles.avg_forward(path, x, y),
        None => {
            for (xp, yp) in x.chunks_exact(pin).zip(y.chunks_exact_mut(pout)) {
                with_stride!(g.cols.s, forward_plane(&g, count_include_pad, xp, yp));
            }
        }
    };
    let per_task = planes_per_task(g.planes, pin + pout);
    if per_task >= g.planes {
        run(x, y);
    } else {
        x.par_chunks(per_task * pin).zip(y.par_chunks_mut(per_task * pout)).for_each(|(x, y)| run(x, y));
    }
    Ok(())
}

/// One plane: `x` is `(h, w)`, `y` is `(out_h, out_w)`.
fn forward_plane<const STRIDE: usize>(g: &Geometry, count_include_pad: bool, x: &[f32], y: &mut [f32]) {
    let w = g.cols.size;
    let (lo, hi) = g.cols.overlapping_block_range();
    for (oh, y_row) in y.chunks_exact_mut(g.cols.out).enumerate() {
        let (r0, r1) = g.rows.span(oh);
        for ow in (0..lo).chain(hi..g.cols.out) {
            let (c0, c1) = g.cols.span(ow);
            let mut sum = 0.0f32;
            for ih in r0..r1 {
                for &v in &x[ih * w + c0..ih * w + c1] {
                    sum += v;
                }
            }
            y_row[ow] = sum / g.divisor(oh, ow, count_include_pad);
        }
        if lo == hi {
            continue;
        }
        // Every block window is the full kw columns, so the divisor depends on the row only.
        let divisor = f32x8::splat(g.divisor(oh, lo, count_include_pad));
        for ow in block_starts(lo, hi) {
            let col0 = ow * g.cols.s - g.cols.p;
            let mut sum = f32x8::ZERO;
            for ih in r0..r1 {
                for kj in 0..g.cols.k {
                    sum += gather::<STRIDE>(x, ih * w + kj + col0, g.cols.s);
                }
            }
            y_row[ow..ow + LANES].copy_from_slice(&(sum / divisor).to_array());
        }
    }
}

/// Average pool backward: `dx` (`(n, c, h, w)`) is **overwritten**: zeros, then each
/// `dy[o] / divisor(o)` (`dy` is `(n, c, out_h, out_w)`, divisor as in the forward) is
/// added to every input element of window `o` (overlapping windows add, in output order,
/// as in the reference: the same bits).
///
/// ```
/// use keel_kernels::pool::{avgpool2d_backward, Pool2dShape};
/// # fn main() -> keel_kernels::Result<()> {
/// // dx (1, 1, 3, 3); 2x2 windows, stride 1: dy (1, 1, 2, 2). Each window spreads a
/// // quarter of its gradient over its four inputs; overlaps add.
/// let shape = Pool2dShape::square(1, 1, 3, 3, 2, 1, 0);
/// let mut dx = [f32::NAN; 9]; // overwritten, never read
/// avgpool2d_backward(&shape, true, &[1.0; 4], &mut dx)?;
/// assert_eq!(dx, [0.25, 0.5, 0.25, 0.5, 1.0, 0.5, 0.25, 0.5, 0.25]);
/// # Ok(())
/// # }
/// ```
pub fn avgpool2d_backward(
    shape: &Pool2dShape,
    count_include_pad: bool,
    dy: &[f32],
    dx: &mut [f32],
) -> Result<()> {
    shape.check()?;
    shape.check_out_len("dy", dy.len())?;
    shape.check_in_len("dx", dx.len())?;
    let g = shape.geometry();
    if g.planes == 0 {
        return Ok(());
    }
    let (pin, pout) = (g.in_plane(), g.out_plane());
    let path = plan(shape, PoolPass::AvgBackward, current_isa());
    let tiles = Tiles::new(shape).filter(|_| path != PoolPath::Windows);
    let run = |dy: &[f32], dx: &mut [f32]| match tiles {
        Some(tiles) => tiles.avg_backward(path, dy, dx),
        None => {
            for (dyp, dxp) in dy.chunks_exact(pout).zip(dx.chunks_exact_mut(pin)) {
                with_stride!(g.cols.s, backward_plane(&g, count_include_pad, dyp, dxp));
            }
        }
    };
    let per_task = planes_per_task(g.planes, pout + pin);
    if per_task >= g.planes {
        run(dy, dx);
    } else {
        dy.par_chunks(per_task * pout)
            .zip(dx.par_chunks_mut(per_task * pin))
            .for_each(|(dy, dx)| run(dy, dx));
    }
    Ok(())
}

/// One plane: `dy` is `(out_h, out_w)`, `dx` is `(h, w)`.
///
/// Outputs are visited in the reference's order (row by row, left edge, blocks, right
/// edge, each in increasing `ow`), and each adds its `dy / divisor` to its window in
/// row-major order, so every `dx` element receives the same adds in the same order as in
/// the reference: the same bits. The blocks compute 8 gradients with one vector division
/// (their windows are full-width, so one divisor per row) and add them with the stride
/// known at compile time for strides 1 and 2; 2-wide stride-2 windows add whole vectors.
fn backward_plane<const STRIDE: usize>(g: &Geometry, count_include_pad: bool, dy: &[f32], dx: &mut [f32]) {
    let w = g.cols.size;
    let (s, kw) = (if STRIDE == 0 { g.cols.s } else { STRIDE }, g.cols.k);
    let (lo, hi) = g.cols.block_range();
    dx.fill(0.0);
    for (oh, dy_row) in dy.chunks_exact(g.cols.out).enumerate() {
        let (r0, r1) = g.rows.span(oh);
        let edge = |dx: &mut [f32], ow: usize| {
            let (c0, c1) = g.cols.span(ow);
            let grad = dy_row[ow] / g.divisor(oh, ow, count_include_pad);
            for ih in r0..r1 {
                dx[ih * w + c0..ih * w + c1].iter_mut().for_each(|v| *v += grad);
            }
        };
        (0..lo).for_each(|ow| edge(dx, ow));
        if lo < hi {
            let divisor = f32x8::splat(g.divisor(oh, lo, count_include_pad));
            for ow in (lo..hi).step_by(LANES) {
                let grad = (f32x8::new(core::array::from_fn(|l| dy_row[ow + l])) / divisor).to_array();
                let col0 = ow * s - g.cols.p;
                // 2-wide stride-2 windows tile the row without overlap: it receives
                // [g0 g0 g1 g1 .. g7 g7], one add per element as in the reference.
                let paired =
                    [0, LANES / 2].map(|half| f32x8::new(core::array::from_fn(|i| grad[half + i / 2])));
                for ih in r0..r1 {
                    // The 8 windows of this row span columns col0 .. col0 + 7·s + kw.
                    let row = &mut dx[ih * w + col0..ih * w + col0 + (LANES - 1) * s + kw];
                    if STRIDE == 2 && kw == 2 {
                        for (chunk, add) in row.chunks_exact_mut(LANES).zip(paired) {
                            let sum = f32x8::new(core::array::from_fn(|i| chunk[i])) + add;
                            chunk.copy_from_slice(&sum.to_array());
                        }
                    } else {
                        for (l, &gl) in grad.iter().enumerate() {
                            row[l * s..l * s + kw].iter_mut().for_each(|v| *v += gl);
                        }
                    }
                }
            }
        }
        (hi..g.cols.out).for_each(|ow| edge(dx, ow));
    }
}
