//! Max pool: forward writing the argmax mask, backward scattering through it.

use rayon::prelude::*;
use wide::u32x8;

use super::path::PoolPath;
use super::plan::{plan, PoolPass};
use super::shape::{block_starts, Geometry};
use super::tiled::Tiles;
use super::{gather, planes_per_task, with_stride, Pool2dShape, LANES};
use crate::error::{argument_error, Result};
use crate::isa::current_isa;

/// Max pool forward (PyTorch `max_pool2d_with_indices`).
///
/// `x` is `(n, c, h, w)`; `y` and `argmax` are `(n, c, out_h, out_w)`, both **overwritten**.
/// `y[o]` is the max of window `o` and `argmax[o]` its flat index `ih·w + iw` within its
/// input plane. The window is scanned in row-major order taking `v` when `v > max` or `v` is
/// NaN, so the first of equal maxima wins, a NaN always propagates (the last NaN of the
/// window is recorded, as in PyTorch), and padding is never chosen.
///
/// Indices are `u32` (PyTorch uses `i64`): a plane holds at most 2^32 elements, which
/// [`Pool2dShape::check`] enforces (a 16 GiB plane), and the mask costs half the bytes.
///
/// ```
/// use keel_kernels::pool::{maxpool2d_forward, Pool2dShape};
/// # fn main() -> keel_kernels::Result<()> {
/// // x (1, 1, 4, 4), 2x2 windows, stride 2: y and argmax (1, 1, 2, 2).
/// let shape = Pool2dShape::square(1, 1, 4, 4, 2, 2, 0);
/// let x = [
///     1.0, 2.0, 5.0, 0.0,
///     3.0, 4.0, 1.0, 1.0,
///     0.0, 0.0, 7.0, 8.0,
///     9.0, 0.0, 6.0, 2.0,
/// ];
/// let (mut y, mut argmax) = ([0.0; 4], [0; 4]);
/// maxpool2d_forward(&shape, &x, &mut y, &mut argmax)?;
/// assert_eq!(y, [4.0, 5.0, 9.0, 8.0]);
/// assert_eq!(argmax, [5, 2, 12, 11]); // flat indices row·4 + column within the plane
/// # Ok(())
/// # }
/// ```
pub fn maxpool2d_forward(shape: &Pool2dShape, x: &[f32], y: &mut [f32], argmax: &mut [u32]) -> Result<()> {
    shape.check()?;
    shape.check_in_len("x", x.len())?;
    shape.check_out_len("y", y.len())?;
    shape.check_out_len("argmax", argmax.len())?;
    let g = shape.geometry();
    if g.planes == 0 {
        return Ok(());
    }
    let (pin, pout) = (g.in_plane(), g.out_plane());
    let path = plan(shape, PoolPass::MaxForward, current_isa());
    let tiles = Tiles::new(shape).filter(|_| path != PoolPath::Windows);
    let run = |x: &[f32], y: &mut [f32], argmax: &mut [u32]| match tiles {
        Some(tiles) => tiles.max_forward(path, x, y, argmax),
        None => {
            for ((xp, yp), ap) in
                x.chunks_exact(pin).zip(y.chunks_exact_mut(pout)).zip(argmax.chunks_exact_mut(pout))
            {
                with_stride!(g.cols.s, forward_plane(&g, xp, yp, ap));
            }
        }
    };
    // Work per plane: the input read, the output and the mask written.
    let per_task = planes_per_task(g.planes, pin + 2 * pout);
    if per_task >= g.planes {
        run(x, y, argmax);
    } else {
        x.par_chunks(per_task * pin)
            .zip(y.par_chunks_mut(per_task * pout))
            .zip(argmax.par_chunks_mut(per_task * pout))
            .for_each(|((x, y), argmax)| run(x, y, argmax));
    }
    Ok(())
}

/// One plane: `x` is `(h, w)`, `y` and `argmax` are `(out_h, out_w)`.
fn forward_plane<const STRIDE: usize>(g: &Geometry, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
    let w = g.cols.size;
    let out_w = g.cols.out;
    for (oh, (y_row, a_row)) in y.chunks_exact_mut(out_w).zip(argmax.chunks_exact_mut(out_w)).enumerate() {
        let rows = g.rows.span(oh);
        let (lo, hi) = g.cols.overlapping_block_range();
        for ow in (0..lo).chain(hi..out_w) {
            (y_row[ow], a_row[ow]) = max_window(x, w, rows, g.cols.span(ow));
        }
        for ow in block_starts(lo, hi) {
            let (v, i) = max_block::<STRIDE>(x, w, rows, ow * g.cols.s - g.cols.p, g.cols.s, g.cols.k);
            y_row[ow..ow + LANES].copy_from_slice(&v);
            a_row[ow..ow + LANES].copy_from_slice(&i);
        }
    }
}

/// The max of one (clipped, non-empty) window and its flat index, by PyTorch's rule.
#[inline]
fn max_window(x: &[f32], w: usize, (r0, r1): (usize, usize), (c0, c1): (usize, usize)) -> (f32, u32) {
    let mut best = f32::NEG_INFINITY;
    let mut best_index = r0 * w + c0;
    for ih in r0..r1 {
        for (iw, &v) in x[ih * w + c0..ih * w + c1].iter().enumerate() {
            if v > best || v.is_nan() {
                best = v;
                best_index = ih * w + c0 + iw;
            }
        }
    }
    // Indices are below h·w <= 2^32, checked by `Pool2dShape::check`.
    (best, best_index as u32)
}

/// Windows of 8 consecutive outputs lying inside the input, lane `l` starting at input
/// column `col0 + l·stride`: the max and its flat index per lane.
///
/// The scan starts from the first element (as good as PyTorch's `-inf` start at the first
/// element's index: both keep that index unless a later element is larger or NaN; scanning
/// the first element again changes nothing, a NaN there re-selects itself). Each step keeps
/// `rel = ih·w + kj`, common to all lanes; the lane's own column is added at the end.
#[inline(always)]
fn max_block<const STRIDE: usize>(
    x: &[f32],
    w: usize,
    (r0, r1): (usize, usize),
    col0: usize,
    stride: usize,
    kw: usize,
) -> ([f32; LANES], [u32; LANES]) {
    let mut best = gather::<STRIDE>(x, r0 * w + col0, stride);
    let mut best_rel = u32x8::splat((r0 * w) as u32);
    for ih in r0..r1 {
        for kj in 0..kw {
            let rel = ih * w + kj;
            let v = gather::<STRIDE>(x, rel + col0, stride);
            let take = v.simd_gt(best) | v.is_nan();
            best = take.select(v, best);
            best_rel = take.to_bits().select(u32x8::splat(rel as u32), best_rel);
        }
    }
    // Lane l's own column is col0 + l·s (a constant vector when the stride is).
    let s = if STRIDE == 0 { stride } else { STRIDE };
    let lane_cols = u32x8::splat(col0 as u32) + u32x8::new(core::array::from_fn(|l| (l * s) as u32));
    (best.to_array(), (best_rel + lane_cols).to_array())
}

/// Max pool backward: `dx` (`(n, c, h, w)`) is **overwritten** with zeros, then each
/// `dy[o]` (`(n, c, out_h, out_w)`) is added at `argmax[o]` of the same plane (overlapping
/// windows add; adds run in output order within a plane, whatever the thread count).
///
/// Every index is checked against the plane size `h·w`: one outside it is an
/// [`Argument`](crate::KernelError::Argument) error naming the first bad position (`dx` is
/// then unspecified). Indices inside the plane but outside their window are not detected
/// (they are added where they point, like any other).
///
/// ```
/// use keel_kernels::pool::{maxpool2d_backward, maxpool2d_forward, Pool2dShape};
/// # fn main() -> keel_kernels::Result<()> {
/// // x, dx (1, 1, 3, 3); 2x2 windows with stride 1 overlap: y, dy, argmax (1, 1, 2, 2).
/// let shape = Pool2dShape::square(1, 1, 3, 3, 2, 1, 0);
/// let x = [0.0, 1.0, 0.0, 2.0, 9.0, 3.0, 0.0, 4.0, 0.0];
/// let (mut y, mut argmax) = ([0.0; 4], [0; 4]);
/// maxpool2d_forward(&shape, &x, &mut y, &mut argmax)?;
/// assert_eq!(argmax, [4, 4, 4, 4]); // the centre wins every window
/// let mut dx = [f32::NAN; 9]; // overwritten, never read
/// maxpool2d_backward(&shape, &[1.0, 2.0, 3.0, 4.0], &argmax, &mut dx)?;
/// assert_eq!(dx, [0.0, 0.0, 0.0, 0.0, 10.0, 0.0, 0.0, 0.0, 0.0]);
/// # Ok(())
/// # }
/// ```
pub fn maxpool2d_backward(shape: &Pool2dShape, dy: &[f32], argmax: &[u32], dx: &mut [f32]) -> Result<()> {
    shape.check()?;
    shape.check_out_len("dy", dy.len())?;
    shape.check_out_len("argmax", argmax.len())?;
    shape.check_in_len("dx", dx.len())?;
    let g = shape.geometry();
    if g.planes == 0 {
        return Ok(());
    }
    let (pin, pout) = (g.in_plane(), g.out_plane());
    let path = plan(shape, PoolPass::MaxBackward, current_isa());
    let tiles = Tiles::new(shape).filter(|_| path != PoolPath::Windows);
    // Writes `dx` for the planes of one task; the first bad (position in the task, index) if
    // any. Tiled windows write `dx` directly when every index is inside its window, else
    // (and for other shapes) zero fill then scatter.
    let run = |dy: &[f32], argmax: &[u32], dx: &mut [f32]| -> Option<(usize, u32)> {
        if tiles.is_some_and(|tiles| tiles.max_backward(path, dy, argmax, dx)) {
            return None;
        }
        for (p, ((dyp, ap), dxp)) in
            dy.chunks_exact(pout).zip(argmax.chunks_exact(pout)).zip(dx.chunks_exact_mut(pin)).enumerate()
        {
            dxp.fill(0.0);
            for (o, (&d, &i)) in dyp.iter().zip(ap).enumerate() {
                match dxp.get_mut(i as usize) {
                    Some(slot) => *slot += d,
                    None => return Some((p * pout + o, i)),
                }
            }
        }
        None
    };
    let per_task = planes_per_task(g.planes, 2 * pout + pin);
    let bad = if per_task >= g.planes {
        run(dy, argmax, dx)
    } else {
        dy.par_chunks(per_task * pout)
            .zip(argmax.par_chunks(per_task * pout))
            .zip(dx.par_chunks_mut(per_task * pin))
            .enumerate()
            .filter_map(|(t, ((dy, argmax), dx))| {
                run(dy, argmax, dx).map(|(o, i)| (t * per_task * pout + o, i))
            })
            .min()
    };
    match bad {
        Some((o, i)) => {
            Err(argument_error(format!("argmax[{o}]"), format!("an index into its plane, < h·w = {pin}"), i))
        }
        None => Ok(()),
    }
}
