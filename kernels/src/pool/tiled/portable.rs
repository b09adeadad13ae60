//! Portable bodies of the tiled pools, `K x K` windows (`K` = 2 or 3, a compile-time
//! constant so the window loops unroll): plain Rust over output rows, which the compiler
//! vectorises for the build target where it can; what every ISA runs for `k = 3`. Max pool
//! backward has no body here: in scalar code the caller's zero fill (a `memset`) and
//! scatter (one add per output) beat writing each window's `k²` elements with a select.

use super::Tiles;

/// The `K` input rows under output row `oh` of plane `xp`, each cut to the `K·out_w` columns
/// the windows cover.
fn window_rows<'x, const K: usize>(t: &Tiles, xp: &'x [f32], oh: usize) -> [&'x [f32]; K] {
    core::array::from_fn(|r| &xp[(K * oh + r) * t.w..][..K * t.out_w])
}

/// Max pool forward (see [`Tiles::max_forward`]): the window scanned in row-major order
/// from its first element, taking `v` when `v > max` or `v` is NaN (the reference's rule).
pub(super) fn max_forward<const K: usize>(t: &Tiles, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
    let planes = x.chunks_exact(t.in_plane()).zip(y.chunks_exact_mut(t.out_plane()));
    for ((xp, yp), ap) in planes.zip(argmax.chunks_exact_mut(t.out_plane())) {
        for (oh, (y_row, a_row)) in yp.chunks_exact_mut(t.out_w).zip(ap.chunks_exact_mut(t.out_w)).enumerate()
        {
            let rows = window_rows::<K>(t, xp, oh);
            for (ow, (yv, av)) in y_row.iter_mut().zip(a_row.iter_mut()).enumerate() {
                let mut best = rows[0][K * ow];
                let mut best_rel = 0;
                for (r, row) in rows.iter().enumerate() {
                    for (c, &v) in row[K * ow..K * ow + K].iter().enumerate() {
                        if v > best || v.is_nan() {
                            best = v;
                            best_rel = r * t.w + c;
                        }
                    }
                }
                *yv = best;
                // Below h·w <= 2^32 (`Pool2dShape::check`).
                *av = ((K * oh) * t.w + K * ow + best_rel) as u32;
            }
        }
    }
}

/// Average pool forward (see [`Tiles::avg_forward`]).
pub(super) fn avg_forward<const K: usize>(t: &Tiles, x: &[f32], y: &mut [f32]) {
    let divisor = (K * K) as f32;
    for (xp, yp) in x.chunks_exact(t.in_plane()).zip(y.chunks_exact_mut(t.out_plane())) {
        for (oh, y_row) in yp.chunks_exact_mut(t.out_w).enumerate() {
            let rows = window_rows::<K>(t, xp, oh);
            for (ow, yv) in y_row.iter_mut().enumerate() {
                let mut sum = 0.0f32;
                for row in &rows {
                    for &v in &row[K * ow..K * ow + K] {
                        sum += v;
                    }
                }
                *yv = sum / divisor;
            }
        }
    }
}

/// Average pool backward (see [`Tiles::avg_backward`]) on the covered part of each plane.
pub(super) fn avg_backward<const K: usize>(t: &Tiles, dy: &[f32], dx: &mut [f32]) {
    let divisor = (K * K) as f32;
    for (dyp, dxp) in dy.chunks_exact(t.out_plane()).zip(dx.chunks_exact_mut(t.in_plane())) {
        for (oh, dy_row) in dyp.chunks_exact(t.out_w).enumerate() {
            for dx_row in dxp[K * oh * t.w..(K * oh + K) * t.w].chunks_exact_mut(t.w) {
                for (cell, &d) in dx_row[..K * t.out_w].chunks_exact_mut(K).zip(dy_row) {
                    cell.fill(d / divisor + 0.0);
                }
            }
        }
    }
}
