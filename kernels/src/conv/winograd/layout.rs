//! The Winograd path's geometry and its channel-blocked layout.
//!
//! Planes are tiled by 4x4 outputs. The transforms read and write **channel blocks**:
//! `(blocks, rows, cols, lanes)` arrays, `lanes` consecutive channels (a vector's lanes) at
//! each position, so that a tile's positions are whole vectors. [`to_blocks`] moves NCHW
//! planes into that layout (zero-padded around the image and in the lanes of absent
//! channels), [`from_blocks`] moves a band of outputs back out.

use super::transform::{ALPHA, OUT, POINTS};
use crate::conv::shape::Conv2dShape;
use crate::conv::vector::{vector_lanes, ConvVector};
use crate::gemm::packed_b_len;
use crate::isa::Isa;

/// The tiling of one convolution (stride 1, 3x3, one group) for vectors of `lanes` floats.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    /// The instruction set of the vectors and of the GEMM's packed filters.
    pub isa: Isa,
    /// Floats per vector: channels per block.
    pub lanes: usize,
    /// Input and output channels.
    pub c_in: usize,
    pub c_out: usize,
    /// The same, rounded up to whole blocks of `lanes`.
    pub c_in_padded: usize,
    pub c_out_padded: usize,
    /// Input plane and padding.
    pub h: usize,
    pub w: usize,
    pub pad_h: usize,
    pub pad_w: usize,
    /// Output plane.
    pub out_h: usize,
    pub out_w: usize,
    /// Tiles down and across the output plane (the last ones may reach past it).
    pub tiles_h: usize,
    pub tiles_w: usize,
    /// Images and tile rows of each image transformed and multiplied together (one block):
    /// a band of one image's tile rows where an image has enough tiles, else all the tile
    /// rows of several images.
    pub block_images: usize,
    pub block_rows: usize,
}

impl Geometry {
    /// The tiling of `shape` (which [`super::applies`] accepts) for `isa`'s vectors,
    /// in blocks of about `block_tiles` tiles (whole tile rows, at most the batch).
    pub(super) fn new(shape: &Conv2dShape, isa: Isa, block_tiles: usize) -> Geometry {
        let (out_h, out_w) = (shape.out_h(), shape.out_w());
        let (tiles_h, tiles_w) = (out_h.div_ceil(OUT).max(1), out_w.div_ceil(OUT).max(1));
        let lanes = vector_lanes(isa).max(1);
        // Saturating: the plan asks this of any shape, checked or not.
        let image_tiles = tiles_h.saturating_mul(tiles_w);
        let (block_images, block_rows) = if image_tiles >= block_tiles {
            (1, (block_tiles / tiles_w).clamp(1, tiles_h))
        } else {
            (block_tiles.div_ceil(image_tiles).clamp(1, shape.n.max(1)), tiles_h)
        };
        Geometry {
            isa,
            lanes,
            c_in: shape.c_in,
            c_out: shape.c_out,
            c_in_padded: shape.c_in.div_ceil(lanes).saturating_mul(lanes),
            c_out_padded: shape.c_out.div_ceil(lanes).saturating_mul(lanes),
            h: shape.h,
            w: shape.w,
            pad_h: shape.pad_h,
            pad_w: shape.pad_w,
            out_h,
            out_w,
            tiles_h,
            tiles_w,
            block_images,
            block_rows,
        }
    }

    /// Rows and columns of the zero-padded input plane the tiles read: `4·tiles + 2`.
    pub(super) fn input_plane(&self) -> (usize, usize) {
        let side = |tiles: usize| tiles.saturating_mul(OUT).saturating_add(ALPHA - OUT);
        (side(self.tiles_h), side(self.tiles_w))
    }

    /// Rows and columns of the output-gradient plane the tiles read: `4·tiles`.
    pub(super) fn output_plane(&self) -> (usize, usize) {
        (self.tiles_h.saturating_mul(OUT), self.tiles_w.saturating_mul(OUT))
    }

    /// Tiles of one block.
    pub(super) fn block_tiles(&self) -> usize {
        self.block_images.saturating_mul(self.block_rows).saturating_mul(self.tiles_w)
    }

    /// Floats of one image's input in channel blocks.
    pub(super) fn input_blocks_len(&self) -> usize {
        let (rows, cols) = self.input_plane();
        self.c_in_padded.saturating_mul(rows).saturating_mul(cols)
    }

    /// Floats of one image's output gradient in channel blocks.
    pub(super) fn output_blocks_len(&self) -> usize {
        let (rows, cols) = self.output_plane();
        self.c_out_padded.saturating_mul(rows).saturating_mul(cols)
    }

    /// Floats of one block's tiles in the transform domain with `channels` channels:
    /// `(POINTS, block_tiles, channels)`.
    pub(super) fn points_len(&self, channels: usize) -> usize {
        POINTS.saturating_mul(self.block_tiles()).saturating_mul(channels)
    }

    /// Floats of the transformed filters, `(POINTS, c_in_padded, c_out_padded)`.
    pub(super) fn filters_len(&self) -> usize {
        POINTS.saturating_mul(self.c_in_padded).saturating_mul(self.c_out_padded)
    }

    /// Floats of one point's transformed filters packed as the GEMM's B̃ (`c_in_padded x
    /// c_out_padded`).
    pub(super) fn packed_filter_len(&self) -> usize {
        packed_b_len(self.isa, self.c_in_padded, self.c_out_padded)
    }

    /// Floats of one tile row of outputs of one channel block, `(4, 4·tiles_w, lanes)`.
    pub(super) fn out_rows_len(&self) -> usize {
        (OUT * OUT).saturating_mul(self.tiles_w).saturating_mul(self.lanes)
    }
}

/// Moves `channels` planes `(h, w)` of `src` into channel blocks `dst (ceil(channels/L),
/// rows, cols, L)`, `L = V::LANES`, the image's top-left corner at `(top, left)`:
/// `dst[b][r][q][l] = src[b·L + l][r - top][q - left]` where that is inside the image (and
/// the plane), 0 everywhere else.
///
/// Panics unless `src` holds the planes and `dst` the blocks.
#[inline(always)]
pub(super) fn to_blocks<V: ConvVector>(
    src: &[f32],
    channels: usize,
    (h, w): (usize, usize),
    (top, left): (usize, usize),
    (rows, cols): (usize, usize),
    dst: &mut [f32],
) {
    let lanes = V::LANES;
    let plane = h * w;
    let blocks = channels.div_ceil(lanes);
    assert!(src.len() >= channels * plane && dst.len() >= blocks * rows * cols * lanes);
    // Image rows and columns inside the plane.
    let (image_rows, image_cols) = (h.min(rows.saturating_sub(top)), w.min(cols.saturating_sub(left)));
    for (block, dst_block) in dst.chunks_exact_mut(rows * cols * lanes).take(blocks).enumerate() {
        let count = lanes.min(channels - block * lanes);
        for (r, dst_row) in dst_block.chunks_exact_mut(cols * lanes).enumerate() {
            let Some(iy) = r.checked_sub(top).filter(|&iy| iy < image_rows) else {
                dst_row.fill(0.0);
                continue;
            };
            dst_row[..left * lanes].fill(0.0);
            dst_row[(left + image_cols) * lanes..].fill(0.0);
            for x0 in (0..image_cols).step_by(lanes) {
                let width = lanes.min(image_cols - x0);
                let from = block * lanes * plane + iy * w + x0;
                // SAFETY: channel `block·L + l` for l < count exists, and its row `iy` holds
                // columns `x0 .. x0 + width` (x0 + width <= w): inside `src` (asserted
                // above); the `width` positions from `left + x0` lie inside this row of
                // `dst_row` (left + image_cols <= cols).
                unsafe {
                    V::rows_to_lanes(
                        src.as_ptr().add(from),
                        plane,
                        count,
                        width,
                        dst_row.as_mut_ptr().add((left + x0) * lanes),
                    )
                }
            }
        }
    }
}

/// Moves one channel block's band of output rows out of the layout: `src (band, cols, L)`,
/// `L = V::LANES`, into `dst (channels, out_h, out_w)`, rows `first_row ..` of channels
/// `first_channel .. first_channel + L` (those that exist, those of the band inside the
/// plane): `dst[first_channel + l][first_row + a][q] = src[a][q][l]`.
///
/// Panics unless the slices hold those elements.
#[inline(always)]
pub(super) fn from_blocks<V: ConvVector>(
    src: &[f32],
    (band, cols): (usize, usize),
    dst: &mut [f32],
    channels: usize,
    (out_h, out_w): (usize, usize),
    first_channel: usize,
    first_row: usize,
) {
    let lanes = V::LANES;
    let plane = out_h * out_w;
    let count = lanes.min(channels - first_channel);
    let valid_rows = band.min(out_h.saturating_sub(first_row));
    let valid_cols = out_w.min(cols);
    assert!(src.len() >= band * cols * lanes && dst.len() >= channels * plane);
    for a in 0..valid_rows {
        for x0 in (0..valid_cols).step_by(lanes) {
            let width = lanes.min(valid_cols - x0);
            // SAFETY: positions `x0 .. x0 + width` of band row `a` lie in `src` (a < band,
            // x0 + width <= cols); channels `first_channel + l` (l < count <= channels -
            // first_channel) have row `first_row + a < out_h` and its columns `x0 .. x0 +
            // width <= out_w` inside `dst` (asserted above).
            unsafe {
                V::lanes_to_rows(
                    src.as_ptr().add((a * cols + x0) * lanes),
                    width,
                    dst.as_mut_ptr().add(first_channel * plane + (first_row + a) * out_w + x0),
                    plane,
                    count,
                )
            }
        }
    }
}
