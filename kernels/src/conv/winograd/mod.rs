//! Winograd convolution F(4x4, 3x3) for 3x3, stride-1, one-group layers: 36 multiply-adds per
//! 4x4 outputs and channel pair where the correlation takes 144 (the transforms and their
//! matrices are in `transform.rs`).
//!
//! Each image moves into channel blocks (`layout.rs`); then for each block of tiles (a band
//! of tile rows of one image, or whole images where their planes are small; `tiles.rs`):
//! - forward: `V = Bᵀ d B` of every tile, `(POINTS, tiles, c_in)`; one GEMM per point
//!   `ξ`, `M_ξ (tiles, c_out) = V_ξ (tiles, c_in) × U_ξ (c_in, c_out)` with the filters
//!   `U = G g Gᵀ` transformed once per call; `y = Aᵀ M A + bias`, activated, back to NCHW;
//! - backward to the input: the forward of the transposed shape (`transposed.rs`), the
//!   flipped filters transformed in its place;
//! - weight gradient: `V` as above and `Z = A dy Aᵀ`, `(POINTS, tiles, c_out)`; one GEMM per
//!   point, `dU_ξ (c_in, c_out) += V_ξᵀ × Z_ξ`, summed over the images; then `dg = Gᵀ dU G`
//!   added to `dweight`.
//!
//! The transforms run on the convolution's vectors (`conv::vector`): 16 channels per AVX-512
//! vector, 8 per AVX2 vector or portable 8-float array. Channels are padded to whole vectors
//! (zero lanes). Images run in parallel slots as on the other paths; the transformed filters
//! are shared by them, the weight gradient's partial `dU` summed in slot order, so the bits
//! depend on the slot count only.
//!
//! Error: the transforms scale terms by up to 8·5/4 = 10 before they cancel, so an output's
//! rounding error follows the sum of its products' magnitudes `Σ|w·x|`, not the output.
//! Measured against the f64 reference on random shapes (inputs in [-1, 1]): at most 1.1e-5
//! of `Σ|w·x|` for each pass (about 90 units of roundoff). `tests/conv_winograd.rs` allows
//! 3e-5.

mod dispatch;
mod layout;
mod tiles;
mod transform;

use self::layout::Geometry;
use self::transform::POINTS;
use super::bias::add_bias_gradient;
use super::plan::ConvPass;
use super::shape::Conv2dShape;
use super::slots::{add_slot_partials, images_per_slot, run_slots, wanted_slots};
use super::transposed::transposed;
use super::tuning::{WINOGRAD_BLOCK_TILES, WINOGRAD_GRADIENT_BLOCK_TILES, WINOGRAD_MIN_CHANNELS};
use crate::error::Result;
use crate::gemm::{sgemm_fused_on, sgemm_prepacked_on, Activation, Epilogue, GemmShape, Transpose};
use crate::isa::Isa;

/// Whether the Winograd path computes the three passes of `shape` (on any instruction set):
/// 3x3 filters, stride 1, dilation 1, one group, padding of at most 2 (the
/// backward to the input pads by `2 - pad`), and at least [`WINOGRAD_MIN_CHANNELS`] input and
/// output channels.
pub(super) fn applies(shape: &Conv2dShape) -> bool {
    shape.kh == 3
        && shape.kw == 3
        && shape.stride_h == 1
        && shape.stride_w == 1
        && shape.dilation_h == 1
        && shape.dilation_w == 1
        && shape.groups == 1
        && shape.pad_h <= 2
        && shape.pad_w <= 2
        && shape.c_in >= WINOGRAD_MIN_CHANNELS
        && shape.c_out >= WINOGRAD_MIN_CHANNELS
}

/// Floats shared by the slots of a forward: the transformed filters packed for the GEMMs,
/// and the padded bias.
fn shared_len(g: &Geometry) -> usize {
    POINTS.saturating_mul(g.packed_filter_len()).saturating_add(g.c_out_padded)
}

/// Floats of a forward's workspace with `slots` slots: the shared part, then the slots.
fn forward_len(g: &Geometry, slots: usize) -> usize {
    shared_len(g).saturating_add(slots.saturating_mul(forward_slot_len(g)))
}

/// Floats of one forward slot: a block's images in channel blocks, its tiles before and
/// after the GEMMs, and a tile row of outputs.
fn forward_slot_len(g: &Geometry) -> usize {
    g.block_images
        .saturating_mul(g.input_blocks_len())
        .saturating_add(g.points_len(g.c_in_padded))
        .saturating_add(g.points_len(g.c_out_padded))
        .saturating_add(g.out_rows_len())
}

/// Floats of one weight-gradient slot: the partial `dU` and `dbias`, a block's images'
/// inputs and output gradients in channel blocks, and the block's two transforms.
fn weight_slot_len(g: &Geometry) -> usize {
    partial_len(g)
        .saturating_add(g.block_images.saturating_mul(g.input_blocks_len()))
        .saturating_add(g.block_images.saturating_mul(g.output_blocks_len()))
        .saturating_add(g.points_len(g.c_in_padded))
        .saturating_add(g.points_len(g.c_out_padded))
}

/// A slot's partial sums: `dU (POINTS, c_in_padded, c_out_padded)`, then `dbias (c_out)`.
fn partial_len(g: &Geometry) -> usize {
    g.filters_len().saturating_add(g.c_out)
}

/// The geometries of the forward, of the backward to the input (the transposed shape) and of
/// the weight gradient.
fn geometries(shape: &Conv2dShape, isa: Isa) -> Option<[Geometry; 3]> {
    let t = transposed(shape)?;
    Some([
        Geometry::new(shape, isa, WINOGRAD_BLOCK_TILES),
        Geometry::new(&t, isa, WINOGRAD_BLOCK_TILES),
        Geometry::new(shape, isa, WINOGRAD_GRADIENT_BLOCK_TILES),
    ])
}

/// Workspace floats pass `pass` of `shape` needs on `isa` for `slots` slots (0 where the
/// path does not apply).
fn pass_len(shape: &Conv2dShape, pass: ConvPass, isa: Isa, slots: usize) -> usize {
    let Some([g, t, w]) = geometries(shape, isa).filter(|_| applies(shape)) else {
        return 0;
    };
    match pass {
        ConvPass::Forward => forward_len(&g, slots),
        ConvPass::BackwardData => forward_len(&t, slots),
        ConvPass::BackwardWeight => slots.saturating_mul(weight_slot_len(&w)),
    }
}

/// Workspace floats for every Winograd pass of `shape` on `isa` with one slot per thread of
/// the current pool (0 where the path does not apply).
pub(super) fn workspace_len(shape: &Conv2dShape, isa: Isa) -> usize {
    let slots = wanted_slots(shape);
    ConvPass::ALL.into_iter().map(|pass| pass_len(shape, pass, isa, slots)).max().unwrap_or(0)
}

/// Whether the path applies to `shape` on `isa` and a workspace of `len` floats holds one
/// slot of `pass`.
pub(super) fn fits(shape: &Conv2dShape, pass: ConvPass, isa: Isa, len: usize) -> bool {
    applies(shape) && len >= pass_len(shape, pass, isa, 1)
}

/// Forward: `y (n, c_out, out_h, out_w)` **overwritten** with `activation(conv(x, weight) +
/// bias)`, `x (n, c_in, h, w)`, `weight (c_out, c_in, 3, 3)`, `bias (c_out)`.
///
/// The caller checked the shape and the slices, that the CPU has `isa`, that [`applies`]
/// holds and that [`fits`] the workspace.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward(
    isa: Isa,
    shape: &Conv2dShape,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
    y: &mut [f32],
    workspace: &mut [f32],
) -> Result<()> {
    let g = Geometry::new(shape, isa, WINOGRAD_BLOCK_TILES);
    let (shared, slots) = workspace.split_at_mut(shared_len(&g));
    let (filters, padded_bias) = shared.split_at_mut(POINTS * g.packed_filter_len());
    // SAFETY: the caller checked that the CPU has `isa`.
    unsafe { dispatch::filter_tiles(isa, &g, weight, false, filters) };
    padded_bias.fill(0.0);
    if let Some(bias) = bias {
        padded_bias[..g.c_out].copy_from_slice(bias);
    }
    run_forward(isa, shape, &g, x, filters, padded_bias, activation, y, slots)
}

/// Backward to the input: `dx (n, c_in, h, w)` **overwritten** from `dy (n, c_out, out_h,
/// out_w)` and `weight (c_out, c_in, 3, 3)`, as the forward of the transposed shape. The
/// caller checked as for [`forward`].
pub(super) fn backward_data(
    isa: Isa,
    shape: &Conv2dShape,
    dy: &[f32],
    weight: &[f32],
    dx: &mut [f32],
    workspace: &mut [f32],
) -> Result<()> {
    let Some(t) = transposed(shape) else {
        unreachable!("the Winograd path applies to stride-1 shapes with pad <= 2, which transpose")
    };
    let g = Geometry::new(&t, isa, WINOGRAD_BLOCK_TILES);
    let (shared, slots) = workspace.split_at_mut(shared_len(&g));
    let (filters, zero_bias) = shared.split_at_mut(POINTS * g.packed_filter_len());
    // SAFETY: as in `forward`.
    unsafe { dispatch::filter_tiles(isa, &g, weight, true, filters) };
    zero_bias.fill(0.0);
    run_forward(isa, &t, &g, dy, filters, zero_bias, Activation::Identity, dx, slots)
}

/// The forward of `shape` (tiled as `g`) with its filters transformed (`filters`) and its
/// bias padded (`bias`), the images split among the slots `workspace` holds (at least one).
#[allow(clippy::too_many_arguments)]
fn run_forward(
    isa: Isa,
    shape: &Conv2dShape,
    g: &Geometry,
    x: &[f32],
    filters: &[f32],
    bias: &[f32],
    activation: Activation,
    y: &mut [f32],
    workspace: &mut [f32],
) -> Result<()> {
    let slot_len = forward_slot_len(g);
    let per = images_per_slot(shape, workspace.len(), slot_len);
    let (x_image, y_image) = (g.c_in * g.h * g.w, g.c_out * g.out_h * g.out_w);
    let task = |first: usize, images: usize, y_run: &mut [f32], slot: &mut [f32]| -> Result<()> {
        let (inputs, rest) = slot.split_at_mut(g.block_images * g.input_blocks_len());
        let (v, rest) = rest.split_at_mut(g.points_len(g.c_in_padded));
        let (m, out_rows) = rest.split_at_mut(g.points_len(g.c_out_padded));
        for group in (0..images).step_by(g.block_images) {
            let count = g.block_images.min(images - group);
            for (j, input) in inputs.chunks_exact_mut(g.input_blocks_len()).take(count).enumerate() {
                let xi = &x[(first + group + j) * x_image..][..x_image];
                let corner = (g.pad_h, g.pad_w);
                // SAFETY (each dispatch): the caller checked that the CPU has `isa`; the
                // slices are the geometry's.
                unsafe { dispatch::to_blocks(isa, xi, g.c_in, (g.h, g.w), corner, g.input_plane(), input) };
            }
            for first_row in (0..g.tiles_h).step_by(g.block_rows) {
                let rows = g.block_rows.min(g.tiles_h - first_row);
                let image_tiles = rows * g.tiles_w;
                for (j, input) in inputs.chunks_exact(g.input_blocks_len()).take(count).enumerate() {
                    // SAFETY: as above.
                    unsafe { dispatch::input_tiles(isa, g, input, (first_row, rows), j * image_tiles, v) };
                }
                multiply(isa, g, count * image_tiles, v, filters, m)?;
                for j in 0..count {
                    let yi = &mut y_run[(group + j) * y_image..][..y_image];
                    for row in 0..rows {
                        let at = (first_row + row, j * image_tiles + row * g.tiles_w);
                        // SAFETY: as above.
                        unsafe { dispatch::output_row(isa, g, m, at, (bias, activation), out_rows, yi) };
                    }
                }
            }
        }
        Ok(())
    };
    run_slots(0, shape.n, per, y, y_image, workspace, slot_len, &task)
}

/// Weight gradient: `dweight (c_out, c_in, 3, 3)` and `dbias (c_out)` **accumulated** from
/// `x (n, c_in, h, w)` and `dy (n, c_out, out_h, out_w)`. The caller checked as for
/// [`forward`].
pub(super) fn backward_weight(
    isa: Isa,
    shape: &Conv2dShape,
    x: &[f32],
    dy: &[f32],
    dweight: &mut [f32],
    dbias: Option<&mut [f32]>,
    workspace: &mut [f32],
) -> Result<()> {
    let g = Geometry::new(shape, isa, WINOGRAD_GRADIENT_BLOCK_TILES);
    let slot_len = weight_slot_len(&g);
    let per = images_per_slot(shape, workspace.len(), slot_len);
    let (x_image, y_image) = (g.c_in * g.h * g.w, g.c_out * g.out_h * g.out_w);
    let with_bias = dbias.is_some();
    let task = |first: usize, images: usize, _: &mut [f32], slot: &mut [f32]| -> Result<()> {
        let (partial, rest) = slot.split_at_mut(partial_len(&g));
        let (du, db) = partial.split_at_mut(g.filters_len());
        db.fill(0.0);
        // The slot's first block overwrites `du` (β = 0), the others add to it.
        let mut beta = 0.0;
        let (inputs, rest) = rest.split_at_mut(g.block_images * g.input_blocks_len());
        let (gradients, rest) = rest.split_at_mut(g.block_images * g.output_blocks_len());
        let (v, rest) = rest.split_at_mut(g.points_len(g.c_in_padded));
        let z = &mut rest[..g.points_len(g.c_out_padded)];
        for group in (0..images).step_by(g.block_images) {
            let count = g.block_images.min(images - group);
            let pairs = inputs
                .chunks_exact_mut(g.input_blocks_len())
                .zip(gradients.chunks_exact_mut(g.output_blocks_len()));
            for (j, (input, gradient)) in pairs.take(count).enumerate() {
                let image = first + group + j;
                let xi = &x[image * x_image..][..x_image];
                let dyi = &dy[image * y_image..][..y_image];
                let (out_plane, corner) = ((g.out_h, g.out_w), (g.pad_h, g.pad_w));
                // SAFETY (each dispatch): as in `run_forward`.
                unsafe {
                    dispatch::to_blocks(isa, xi, g.c_in, (g.h, g.w), corner, g.input_plane(), input);
                    dispatch::to_blocks(isa, dyi, g.c_out, out_plane, (0, 0), g.output_plane(), gradient);
                }
                if with_bias {
                    add_bias_gradient(shape, dyi, db);
                }
            }
            for first_row in (0..g.tiles_h).step_by(g.block_rows) {
                let rows = g.block_rows.min(g.tiles_h - first_row);
                let image_tiles = rows * g.tiles_w;
                let pairs = inputs
                    .chunks_exact(g.input_blocks_len())
                    .zip(gradients.chunks_exact(g.output_blocks_len()));
                for (j, (input, gradient)) in pairs.take(count).enumerate() {
                    // SAFETY: as above.
                    unsafe {
                        dispatch::input_tiles(isa, &g, input, (first_row, rows), j * image_tiles, v);
                        dispatch::gradient_tiles(isa, &g, gradient, (first_row, rows), j * image_tiles, z);
                    }
                }
                multiply_gradient(isa, &g, count * image_tiles, v, z, beta, du)?;
                beta = 1.0;
            }
        }
        Ok(())
    };
    run_slots(0, shape.n, per, &mut [], 0, workspace, slot_len, &task)?;
    let (first, others) = workspace.split_at_mut(slot_len);
    let (du, db) = first[..partial_len(&g)].split_at_mut(g.filters_len());
    let slots = shape.n.div_ceil(per);
    add_slot_partials(others.chunks_exact(slot_len).take(slots - 1), du, Some(&mut *db));
    // SAFETY: as in `run_forward`.
    unsafe { dispatch::add_filter_gradients(isa, &g, du, dweight) };
    if let Some(dbias) = dbias {
        for (acc, &d) in dbias.iter_mut().zip(db.iter()) {
            *acc += d;
        }
    }
    Ok(())
}

/// `M_ξ (tiles, c_out_padded) = V_ξ (tiles, c_in_padded) × U_ξ (c_in_padded, c_out_padded)`
/// for every point `ξ` of one block, `U_ξ` packed by `tiles::filter_tiles`.
fn multiply(isa: Isa, g: &Geometry, tiles: usize, v: &[f32], filters: &[f32], m: &mut [f32]) -> Result<()> {
    let (cp, kp, capacity, packed) = (g.c_in_padded, g.c_out_padded, g.block_tiles(), g.packed_filter_len());
    let shape = GemmShape::new(tiles, kp, cp);
    for point in 0..POINTS {
        let a = &v[point * capacity * cp..][..tiles * cp];
        let b = &filters[point * packed..][..packed];
        let c = &mut m[point * capacity * kp..][..tiles * kp];
        sgemm_prepacked_on(isa, &shape, 1.0, a, b, 0.0, c, &Epilogue::NONE)?;
    }
    Ok(())
}

/// `dU_ξ (c_in_padded, c_out_padded) = V_ξᵀ × Z_ξ + β·dU_ξ` for every point `ξ` of one block
/// of `tiles` tiles (`dU` not read when `β = 0`).
fn multiply_gradient(
    isa: Isa,
    g: &Geometry,
    tiles: usize,
    v: &[f32],
    z: &[f32],
    beta: f32,
    du: &mut [f32],
) -> Result<()> {
    let (cp, kp, capacity) = (g.c_in_padded, g.c_out_padded, g.block_tiles());
    let shape = GemmShape::new(cp, kp, tiles).transposed(Transpose::Yes, Transpose::No);
    for point in 0..POINTS {
        let a = &v[point * capacity * cp..][..tiles * cp];
        let b = &z[point * capacity * kp..][..tiles * kp];
        let c = &mut du[point * cp * kp..][..cp * kp];
        sgemm_fused_on(isa, &shape, 1.0, a, b, beta, c, &Epilogue::NONE)?;
    }
    Ok(())
}
