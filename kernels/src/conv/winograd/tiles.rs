//! The tile transforms of one block of tile rows, between the channel-blocked planes
//! (`layout.rs`) and the transform domain `(POINTS, block_tiles, channels)`, where tile `t`
//! of the block (`t = row·tiles_w + column`, rows counted from the block's first) is row `t`
//! of each point's matrix.

use super::layout::{from_blocks, Geometry};
use super::transform::{gradient_tile, input_tile, output_tile, OUT};
use crate::conv::vector::ConvVector;
use crate::gemm::Activation;

/// `Bᵀ d B` of the tiles of tile rows `first_row .. first_row + tile_rows` of one image's
/// input in channel blocks (`g.input_blocks_len()` floats) into `points (POINTS,
/// block_tiles, c_in_padded)`.
///
/// Panics unless the rows are inside the plane and make at most one block, and the slices
/// hold what the geometry says.
#[inline(always)]
pub(super) fn input_tiles<V: ConvVector>(
    g: &Geometry,
    input: &[f32],
    first_row: usize,
    tile_rows: usize,
    points: &mut [f32],
) {
    let lanes = V::LANES;
    let (rows, cols) = g.input_plane();
    let channels = g.c_in_padded;
    assert!(lanes == g.lanes && tile_rows <= g.block_rows && first_row + tile_rows <= g.tiles_h);
    assert!(input.len() >= g.input_blocks_len() && points.len() >= g.points_len(channels));
    let point = g.block_tiles() * channels;
    for block in 0..channels / lanes {
        for row in 0..tile_rows {
            for column in 0..g.tiles_w {
                let tile = row * g.tiles_w + column;
                let from = ((block * rows + OUT * (first_row + row)) * cols + OUT * column) * lanes;
                // SAFETY: the tile's 6x6 positions are rows `4·(first_row + row) + i <
                // 4·tiles_h + 2 = rows` and columns `4·column + j < cols` of this block's
                // plane, inside `input`; point `ξ` of the tile's lanes is at `ξ·point +
                // tile·channels + block·lanes`, below `POINTS·point` (tile < block_tiles):
                // inside `points` (both asserted above).
                unsafe {
                    input_tile::<V>(
                        input.as_ptr().add(from),
                        cols * lanes,
                        points.as_mut_ptr().add(tile * channels + block * lanes),
                        point,
                    )
                }
            }
        }
    }
}

/// `Aᵀ m A + bias`, then `activation`, of tile row `row` of a block (`points (POINTS,
/// block_tiles, c_out_padded)`), written to output rows `4·(first_row + row) ..` of one
/// image's output `y (c_out, out_h, out_w)` (those inside the plane). `bias` holds
/// `c_out_padded` floats; `out_rows` is scratch of `g.out_rows_len()`.
///
/// Panics unless the slices hold what the geometry says and the row is inside the plane.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn output_row<V: ConvVector>(
    g: &Geometry,
    points: &[f32],
    first_row: usize,
    row: usize,
    bias: &[f32],
    activation: Activation,
    out_rows: &mut [f32],
    y: &mut [f32],
) {
    let lanes = V::LANES;
    let channels = g.c_out_padded;
    assert!(lanes == g.lanes && row < g.block_rows && first_row + row < g.tiles_h);
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
            let tile = row * g.tiles_w + column;
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
            OUT * (first_row + row),
        );
    }
}

/// `A dy Aᵀ` of the tiles of tile rows `first_row .. first_row + tile_rows` of one image's
/// output gradient in channel blocks (`g.output_blocks_len()` floats) into `points (POINTS,
/// block_tiles, c_out_padded)`.
///
/// Panics as [`input_tiles`].
#[inline(always)]
pub(super) fn gradient_tiles<V: ConvVector>(
    g: &Geometry,
    gradient: &[f32],
    first_row: usize,
    tile_rows: usize,
    points: &mut [f32],
) {
    let lanes = V::LANES;
    let (rows, cols) = g.output_plane();
    let channels = g.c_out_padded;
    assert!(lanes == g.lanes && tile_rows <= g.block_rows && first_row + tile_rows <= g.tiles_h);
    assert!(gradient.len() >= g.output_blocks_len() && points.len() >= g.points_len(channels));
    let point = g.block_tiles() * channels;
    for block in 0..channels / lanes {
        for row in 0..tile_rows {
            for column in 0..g.tiles_w {
                let tile = row * g.tiles_w + column;
                let from = ((block * rows + OUT * (first_row + row)) * cols + OUT * column) * lanes;
                // SAFETY: the tile's 4x4 positions are rows `4·(first_row + row) + a <
                // rows` and columns `4·column + b < cols` of this block's plane, inside
                // `gradient`; the points as in `input_tiles` (asserted above).
                unsafe {
                    gradient_tile::<V>(
                        gradient.as_ptr().add(from),
                        cols * lanes,
                        points.as_mut_ptr().add(tile * channels + block * lanes),
                        point,
                    )
                }
            }
        }
    }
}
