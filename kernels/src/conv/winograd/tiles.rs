//! The transforms over whole tensors: the tiles of one block, between the channel-blocked
//! planes (`layout.rs`) and the transform domain `(POINTS, block_tiles, channels)`, where
//! tile `t` of the block is row `t` of each point's matrix; and the filters, into the GEMMs'
//! packed B̃ and back from their gradients.

use super::layout::{from_blocks, Geometry};
use super::transform::{
    filter_gradient_tile, filter_tile, gradient_tile, input_tile, output_tile, ALPHA, OUT, POINTS,
};
use crate::conv::vector::ConvVector;
use crate::gemm::{packed_b_index, panel_width, Activation};

/// `Bᵀ d B` of the tiles of tile rows `first_row .. first_row + tile_rows` of one image's
/// input in channel blocks (`g.input_blocks_len()` floats) into `points (POINTS,
/// block_tiles, c_in_padded)`, as the block's tiles `first_tile ..` (row by row).
///
/// Panics unless the rows are inside the plane and their tiles inside the block, and the
/// slices hold what the geometry says.
#[inline(always)]
pub(super) fn input_tiles<V: ConvVector>(
    g: &Geometry,
    input: &[f32],
    rows: (usize, usize),
    first_tile: usize,
    points: &mut [f32],
) {
    let plane = Plane { side: g.input_plane(), window: ALPHA, channels: g.c_in_padded };
    assert!(input.len() >= g.input_blocks_len());
    transform_tiles::<V>(g, plane, input, rows, first_tile, points, input_tile::<V>);
}

/// A channel-blocked plane the tiles are read from: its `(rows, cols)`, the side of the
/// window each tile reads, and its channels (whole blocks).
struct Plane {
    side: (usize, usize),
    window: usize,
    channels: usize,
}

/// The transforms of one plane's tiles: `tile(from, row, to, point)`, which reads a
/// `plane.window` square of positions from `from` (rows `row` floats apart, positions
/// `V::LANES`) and writes `V::LANES` floats at `to + ξ·point` for each point `ξ`, on every tile of tile rows `first_row .. first_row +
/// tile_rows` and every channel block of `plane`'s copy `src`: `from` the tile's window (rows
/// `row` floats apart), `to` the tile's lanes in point 0 of `points (POINTS, block_tiles,
/// plane.channels)` as the block's tile `first_tile + ..` (points `point` floats apart).
///
/// Panics unless every window lies inside the plane, `src` holds the plane's blocks, the
/// tiles lie inside the block and `points` holds them.
#[inline(always)]
fn transform_tiles<V: ConvVector>(
    g: &Geometry,
    plane: Plane,
    src: &[f32],
    (first_row, tile_rows): (usize, usize),
    first_tile: usize,
    points: &mut [f32],
    tile: unsafe fn(*const f32, usize, *mut f32, usize),
) {
    let lanes = V::LANES;
    let ((rows, cols), channels) = (plane.side, plane.channels);
    assert!(lanes == g.lanes && first_row + tile_rows <= g.tiles_h && channels.is_multiple_of(lanes));
    assert!(OUT * (g.tiles_h - 1) + plane.window <= rows && OUT * (g.tiles_w - 1) + plane.window <= cols);
    assert!(src.len() >= channels * rows * cols);
    assert!(first_tile + tile_rows * g.tiles_w <= g.block_tiles() && points.len() >= g.points_len(channels));
    let point = g.block_tiles() * channels;
    for block in 0..channels / lanes {
        for row in 0..tile_rows {
            for column in 0..g.tiles_w {
                let index = first_tile + row * g.tiles_w + column;
                let from = ((block * rows + OUT * (first_row + row)) * cols + OUT * column) * lanes;
                // SAFETY: `tile` reads the window's rows `4·(first_row + row) + i` and columns
                // `4·column + j` (i, j < window), inside this block's plane, inside `src`; it
                // writes point `ξ` of the tile's lanes at `ξ·point + index·channels +
                // block·lanes`, below `POINTS·point` (index < block_tiles): inside `points`
                // (all asserted above).
                unsafe {
                    tile(
                        src.as_ptr().add(from),
                        cols * lanes,
                        points.as_mut_ptr().add(index * channels + block * lanes),
                        point,
                    )
                };
            }
        }
    }
}

/// `Aᵀ m A + bias`, then `activation`, of tile row `row` of one image (the block's tiles
/// `first_tile ..` of `points (POINTS, block_tiles, c_out_padded)`), written to output rows
/// `4·row ..` of the image's output `y (c_out, out_h, out_w)` (those inside the plane).
/// `bias` holds `c_out_padded` floats; `out_rows` is scratch of `g.out_rows_len()`.
///
/// Panics unless the slices hold what the geometry says and the row and its tiles are
/// inside the plane and the block.
#[inline(always)]
pub(super) fn output_row<V: ConvVector>(
    g: &Geometry,
    points: &[f32],
    (row, first_tile): (usize, usize),
    (bias, activation): (&[f32], Activation),
    out_rows: &mut [f32],
    y: &mut [f32],
) {
    let lanes = V::LANES;
    let channels = g.c_out_padded;
    assert!(lanes == g.lanes && row < g.tiles_h && first_tile + g.tiles_w <= g.block_tiles());
    assert!(
        points.len() >= g.points_len(channels)
            && bias.len() >= channels
            && out_rows.len() >= g.out_rows_len()
    );
    let point = g.block_tiles() * channels;
    let band_cols = OUT * g.tiles_w;
    for block in 0..channels / lanes {
        // SAFETY: block·lanes + lanes <= c_out_padded <= bias.len() (asserted above).
        let bias = unsafe { V::load(bias.as_ptr().add(block * lanes)) };
        for column in 0..g.tiles_w {
            let tile = first_tile + column;
            // SAFETY: point `ξ` of the tile's lanes is at `ξ·point + tile·channels +
            // block·lanes`, inside `points` (tile < block_tiles); the 4x4 outputs go to
            // rows `a < 4` and columns `4·column + b < band_cols` of `out_rows (4,
            // band_cols, lanes)` (asserted above).
            unsafe {
                output_tile::<V>(
                    points.as_ptr().add(tile * channels + block * lanes),
                    point,
                    bias,
                    activation,
                    out_rows.as_mut_ptr().add(OUT * column * lanes),
                    band_cols * lanes,
                )
            }
        }
        from_blocks::<V>(
            out_rows,
            (OUT, band_cols),
            y,
            g.c_out,
            (g.out_h, g.out_w),
            block * lanes,
            OUT * row,
        );
    }
}

/// `A dy Aᵀ` of the tiles of tile rows `first_row .. first_row + tile_rows` of one image's
/// output gradient in channel blocks (`g.output_blocks_len()` floats) into `points (POINTS,
/// block_tiles, c_out_padded)`, as the block's tiles `first_tile ..`.
///
/// Panics as [`input_tiles`].
#[inline(always)]
pub(super) fn gradient_tiles<V: ConvVector>(
    g: &Geometry,
    gradient: &[f32],
    rows: (usize, usize),
    first_tile: usize,
    points: &mut [f32],
) {
    let plane = Plane { side: g.output_plane(), window: OUT, channels: g.c_out_padded };
    assert!(gradient.len() >= g.output_blocks_len());
    transform_tiles::<V>(g, plane, gradient, rows, first_tile, points, gradient_tile::<V>);
}

/// Taps of a 3x3 filter.
const TAPS: usize = 9;

/// The filters `G g Gᵀ` of `weight (c_out, c_in, 3, 3)` in `g`'s channels, written to `packed
/// (POINTS, g.packed_filter_len())`: each point's `U_ξ (c_in_padded, c_out_padded)` as the
/// GEMM's B̃ for `g.isa`, zero in padded channels. With `flipped`, the filters are those of
/// the transposed shape, read from the original `weight (c_in, c_out, 3, 3)` with both kernel
/// axes reversed.
///
/// Panics unless `weight` holds `c_out·c_in·9` floats and `packed` the points, or if the
/// GEMM's micro-panels are not whole vectors wide.
#[inline(always)]
pub(super) fn filter_tiles<V: ConvVector>(g: &Geometry, weight: &[f32], flipped: bool, packed: &mut [f32]) {
    let lanes = V::LANES;
    let (cp, kp, point) = (g.c_in_padded, g.c_out_padded, g.packed_filter_len());
    // The packed columns, up to the last micro-panel's zero padding.
    let padded_cols = point / cp.max(1);
    let panel = panel_width(g.isa);
    assert!(lanes == g.lanes && padded_cols.is_multiple_of(panel) && panel.is_multiple_of(lanes));
    assert!(weight.len() >= g.c_out * g.c_in * TAPS && packed.len() >= POINTS * point);
    // One (k, c) filter's taps start at `k·k_stride + c·c_stride` (flipped: reversed).
    let (k_stride, c_stride) = if flipped { (TAPS, g.c_out * TAPS) } else { (g.c_in * TAPS, TAPS) };
    let mut staged = [0.0f32; 9 * 16];
    for (c, k0) in panel_order(cp, padded_cols, panel, lanes) {
        let count = if c < g.c_in { lanes.min(g.c_out.saturating_sub(k0)) } else { 0 };
        if count == 0 {
            // Padding: a row past c_in or columns past c_out.
            staged.fill(0.0);
        }
        for t0 in (0..TAPS).step_by(lanes).filter(|_| count > 0) {
            let cols = lanes.min(TAPS - t0);
            // SAFETY: count > 0, so k0 < c_out and c < c_in: filter `(k0 + l, c)` for
            // l < count exists and its taps `t0 .. t0 + cols <= 9` lie inside `weight`
            // (asserted above); `staged` holds 9 positions of up to 16 lanes.
            unsafe {
                let src = weight.as_ptr().add(k0 * k_stride + c * c_stride + t0);
                V::rows_to_lanes(src, k_stride, count, cols, staged.as_mut_ptr().add(t0 * lanes))
            }
        }
        let mut taps = [V::splat(0.0); TAPS];
        for (t, tap) in taps.iter_mut().enumerate() {
            let from = if flipped { TAPS - 1 - t } else { t };
            // SAFETY: from < 9 positions of `lanes` floats, inside `staged`.
            *tap = unsafe { V::load(staged.as_ptr().add(from * lanes)) };
        }
        let at = packed_b_index(g.isa, cp, kp, c, k0);
        for (xi, v) in filter_tile(taps).into_iter().enumerate() {
            // SAFETY: columns `k0 .. k0 + lanes` of row c are consecutive in the panels
            // (k0 a multiple of `lanes`, which divides the micro-panel width; asserted
            // above) and inside point ξ's `point` floats, inside `packed`.
            unsafe { v.store(packed.as_mut_ptr().add(xi * point + at), Activation::Identity) };
        }
    }
}

/// The `(row, first column)` of each vector of `lanes` columns of `rows x cols` packed in
/// micro-panels `panel` wide, in the order they lie in memory: micro-panel by micro-panel,
/// row by row. Writing each point's panels in this order streams them (in any other order,
/// 36 points' scattered stores thrash the TLB on layers of 512 channels).
fn panel_order(rows: usize, cols: usize, panel: usize, lanes: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..cols).step_by(panel).flat_map(move |first| {
        (0..rows).flat_map(move |row| (first..first + panel).step_by(lanes).map(move |col| (row, col)))
    })
}

/// `dweight (c_out, c_in, 3, 3) += Gᵀ dU G` of each filter's transformed gradient in `du
/// (POINTS, c_in_padded, c_out_padded)`.
///
/// Panics unless the slices hold those elements.
#[inline(always)]
pub(super) fn add_filter_gradients<V: ConvVector>(g: &Geometry, du: &[f32], dweight: &mut [f32]) {
    let lanes = V::LANES;
    let (cp, kp) = (g.c_in_padded, g.c_out_padded);
    assert!(lanes == g.lanes && du.len() >= g.filters_len() && dweight.len() >= g.c_out * g.c_in * TAPS);
    let k_stride = g.c_in * TAPS;
    let mut staged = [0.0f32; 9 * 16];
    for c in 0..g.c_in {
        for k0 in (0..g.c_out).step_by(lanes) {
            let count = lanes.min(g.c_out - k0);
            let mut u = [V::splat(0.0); POINTS];
            for (xi, v) in u.iter_mut().enumerate() {
                // SAFETY: point ξ's lanes `k0 .. k0 + lanes <= c_out_padded` of row c lie
                // inside `du` (asserted above).
                *v = unsafe { V::load(du.as_ptr().add((xi * cp + c) * kp + k0)) };
            }
            let base = k0 * k_stride + c * TAPS;
            for t0 in (0..TAPS).step_by(lanes) {
                let cols = lanes.min(TAPS - t0);
                // SAFETY: filters `(k0 + l, c)`, l < count, and their taps `t0 .. t0 + cols`
                // lie inside `dweight` (asserted above); `staged` holds 9 x 16 floats.
                unsafe {
                    V::rows_to_lanes(
                        dweight.as_ptr().add(base + t0),
                        k_stride,
                        count,
                        cols,
                        staged.as_mut_ptr().add(t0 * lanes),
                    )
                }
            }
            for (tap, d) in filter_gradient_tile(u).into_iter().enumerate() {
                // SAFETY: tap < 9 positions of `lanes` floats, inside `staged`.
                unsafe {
                    let at = staged.as_mut_ptr().add(tap * lanes);
                    V::load(at).add(d).store(at, Activation::Identity)
                }
            }
            for t0 in (0..TAPS).step_by(lanes) {
                let cols = lanes.min(TAPS - t0);
                // SAFETY: as the loads above.
                unsafe {
                    V::lanes_to_rows(
                        staged.as_ptr().add(t0 * lanes),
                        cols,
                        dweight.as_mut_ptr().add(base + t0),
                        k_stride,
                        count,
                    )
                }
            }
        }
    }
}
