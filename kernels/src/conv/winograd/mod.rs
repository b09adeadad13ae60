//! Winograd convolution F(4x4, 3x3) for 3x3, stride-1, one-group layers: 36 multiply-adds per
//! 4x4 outputs and channel pair where the correlation takes 144 (the transforms and their
//! matrices are in `transform.rs`).
//!
//! Per image, the input moves into channel blocks (`layout.rs`), then for each block of
//! tile rows (`tiles.rs`):
//! - forward: `V = Bᵀ d B` of every tile, `(POINTS, tiles, c_in)`; one GEMM per point
//!   `ξ`, `M_ξ (tiles, c_out) = V_ξ (tiles, c_in) × U_ξ (c_in, c_out)` with the filters
//!   `U = G g Gᵀ` transformed once per call; `y = Aᵀ M A + bias`, activated, back to NCHW;
//! - backward to the input: the forward of the transposed shape (`transposed.rs`), the
//!   flipped filters transformed in its place;
//! - weight gradient: `V` as above and `Z = A dy Aᵀ`, `(POINTS, tiles, c_out)`; one GEMM per
//!   point, `dU_ξ (c_in, c_out) += V_ξᵀ × Z_ξ`, summed over the images; then `dg = Gᵀ dU G`
//!   added to `dweight`.
//!
//! Channels are padded to whole vectors (zero lanes). Images run in parallel slots as on the
//! other paths; the transformed filters are shared by them, the weight gradient's partial
//! `dU` summed in slot order, so the bits depend on the slot count only.
//!
//! Error: the transforms' interpolation points (0, ±1, ±2) scale terms by up to 8·5/4 before
//! they cancel, so the rounding error is that of a sum with terms about 10x larger than the
//! direct loops': measured against an f64 reference, at most 2e-6 of the sum of the
//! products' magnitudes for the forward and backward to the input (2e-7 for direct sums),
//! and 5e-6 for the weight gradient (tests/conv.rs, `winograd_*`).

mod dispatch;
mod layout;
mod tiles;
mod transform;

use self::layout::Geometry;
use self::transform::{filter, filter_gradient, POINTS};
use super::bias::add_bias_gradient;
use super::plan::ConvPass;
use super::shape::Conv2dShape;
use super::slots::{add_slot_partials, images_per_slot, run_slots, wanted_slots};
use super::transposed::transposed;
use super::tuning::WINOGRAD_MIN_CHANNELS;
use super::vector::vector_lanes;
use crate::error::Result;
use crate::gemm::{
    pack_b_panels, sgemm_fused_on, sgemm_prepacked_on, Activation, Epilogue, GemmShape, Transpose,
};
use crate::isa::Isa;

/// Taps of a 3x3 filter.
const TAPS: usize = 9;

/// Whether the Winograd path computes the three passes of `shape` on `isa`: a vector
/// instruction set, 3x3 filters, stride 1, dilation 1, one group, padding of at most 2 (the
/// backward to the input pads by `2 - pad`), and at least [`WINOGRAD_MIN_CHANNELS`] input and
/// output channels.
pub(super) fn applies(shape: &Conv2dShape, isa: Isa) -> bool {
    vector_lanes(isa) > 0
        && shape.kh == 3
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

/// Floats of a forward's workspace with `slots` slots: the shared part, then the slots,
/// which first hold the transformed filters before they are packed.
fn forward_len(g: &Geometry, slots: usize) -> usize {
    shared_len(g).saturating_add(slots.saturating_mul(forward_slot_len(g)).max(g.filters_len()))
}

/// Floats of one forward slot: an image in channel blocks, one block's tiles before and
/// after the GEMMs, and a tile row of outputs.
fn forward_slot_len(g: &Geometry) -> usize {
    g.input_blocks_len()
        .saturating_add(g.points_len(g.c_in_padded))
        .saturating_add(g.points_len(g.c_out_padded))
        .saturating_add(g.out_rows_len())
}

/// Floats of one weight-gradient slot: the partial `dU` and `dbias`, the input and output
/// gradient in channel blocks, and one block's two transforms.
fn weight_slot_len(g: &Geometry) -> usize {
    partial_len(g)
        .saturating_add(g.input_blocks_len())
        .saturating_add(g.output_blocks_len())
        .saturating_add(g.points_len(g.c_in_padded))
        .saturating_add(g.points_len(g.c_out_padded))
}

/// A slot's partial sums: `dU (POINTS, c_in_padded, c_out_padded)`, then `dbias (c_out)`.
fn partial_len(g: &Geometry) -> usize {
    g.filters_len().saturating_add(g.c_out)
}

/// The geometries of the forward and of the backward to the input (the transposed shape).
fn geometries(shape: &Conv2dShape, isa: Isa) -> Option<(Geometry, Geometry)> {
    let t = transposed(shape)?;
    Some((Geometry::new(shape, isa), Geometry::new(&t, isa)))
}

/// Workspace floats pass `pass` of `shape` needs on `isa` for `slots` slots (0 where the
/// path does not apply).
fn pass_len(shape: &Conv2dShape, pass: ConvPass, isa: Isa, slots: usize) -> usize {
    let Some((g, t)) = geometries(shape, isa).filter(|_| applies(shape, isa)) else {
        return 0;
    };
    match pass {
        ConvPass::Forward => forward_len(&g, slots),
        ConvPass::BackwardData => forward_len(&t, slots),
        ConvPass::BackwardWeight => slots.saturating_mul(weight_slot_len(&g)),
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
    applies(shape, isa) && len >= pass_len(shape, pass, isa, 1)
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
    let g = Geometry::new(shape, isa);
    let (shared, slots) = workspace.split_at_mut(shared_len(&g));
    let (filters, padded_bias) = shared.split_at_mut(POINTS * g.packed_filter_len());
    transform_filters(&g, weight, false, &mut slots[..g.filters_len()]);
    pack_filters(&g, &slots[..g.filters_len()], filters);
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
    let g = Geometry::new(&t, isa);
    let (shared, slots) = workspace.split_at_mut(shared_len(&g));
    let (filters, zero_bias) = shared.split_at_mut(POINTS * g.packed_filter_len());
    transform_filters(&g, weight, true, &mut slots[..g.filters_len()]);
    pack_filters(&g, &slots[..g.filters_len()], filters);
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
    let task = |first: usize, _: usize, y_run: &mut [f32], slot: &mut [f32]| -> Result<()> {
        let (input, rest) = slot.split_at_mut(g.input_blocks_len());
        let (v, rest) = rest.split_at_mut(g.points_len(g.c_in_padded));
        let (m, out_rows) = rest.split_at_mut(g.points_len(g.c_out_padded));
        for (i, yi) in y_run.chunks_exact_mut(y_image).enumerate() {
            let xi = &x[(first + i) * x_image..][..x_image];
            let corner = (g.pad_h, g.pad_w);
            // SAFETY (each dispatch): the caller checked that the CPU has `isa`, which has a
            // vector (`applies`); the slices are the geometry's.
            unsafe { dispatch::to_blocks(isa, xi, g.c_in, (g.h, g.w), corner, g.input_plane(), input) };
            for first_row in (0..g.tiles_h).step_by(g.block_rows) {
                let rows = g.block_rows.min(g.tiles_h - first_row);
                // SAFETY: as above.
                unsafe { dispatch::input_tiles(isa, g, input, first_row, rows, v) };
                multiply(isa, g, rows * g.tiles_w, v, filters, m)?;
                for row in 0..rows {
                    // SAFETY: as above.
                    unsafe {
                        dispatch::output_row(isa, g, m, first_row, row, bias, activation, out_rows, yi)
                    };
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
    let g = Geometry::new(shape, isa);
    let slot_len = weight_slot_len(&g);
    let per = images_per_slot(shape, workspace.len(), slot_len);
    let (x_image, y_image) = (g.c_in * g.h * g.w, g.c_out * g.out_h * g.out_w);
    let with_bias = dbias.is_some();
    let task = |first: usize, images: usize, _: &mut [f32], slot: &mut [f32]| -> Result<()> {
        let (partial, rest) = slot.split_at_mut(partial_len(&g));
        partial.fill(0.0);
        let (du, db) = partial.split_at_mut(g.filters_len());
        let (input, rest) = rest.split_at_mut(g.input_blocks_len());
        let (gradient, rest) = rest.split_at_mut(g.output_blocks_len());
        let (v, rest) = rest.split_at_mut(g.points_len(g.c_in_padded));
        let z = &mut rest[..g.points_len(g.c_out_padded)];
        for image in first..first + images {
            let xi = &x[image * x_image..][..x_image];
            let dyi = &dy[image * y_image..][..y_image];
            let (out_plane, corner) = ((g.out_h, g.out_w), (g.pad_h, g.pad_w));
            // SAFETY (each dispatch): as in `run_forward`.
            unsafe {
                dispatch::to_blocks(isa, xi, g.c_in, (g.h, g.w), corner, g.input_plane(), input);
                dispatch::to_blocks(isa, dyi, g.c_out, out_plane, (0, 0), g.output_plane(), gradient);
            }
            for first_row in (0..g.tiles_h).step_by(g.block_rows) {
                let rows = g.block_rows.min(g.tiles_h - first_row);
                // SAFETY: as above.
                unsafe {
                    dispatch::input_tiles(isa, &g, input, first_row, rows, v);
                    dispatch::gradient_tiles(isa, &g, gradient, first_row, rows, z);
                }
                multiply_gradient(isa, &g, rows * g.tiles_w, v, z, du)?;
            }
            if with_bias {
                add_bias_gradient(shape, dyi, db);
            }
        }
        Ok(())
    };
    run_slots(0, shape.n, per, &mut [], 0, workspace, slot_len, &task)?;
    let (first, others) = workspace.split_at_mut(slot_len);
    let (du, db) = first[..partial_len(&g)].split_at_mut(g.filters_len());
    let slots = shape.n.div_ceil(per);
    add_slot_partials(others.chunks_exact(slot_len).take(slots - 1), du, Some(&mut *db));
    add_filter_gradients(&g, du, dweight);
    if let Some(dbias) = dbias {
        for (acc, &d) in dbias.iter_mut().zip(db.iter()) {
            *acc += d;
        }
    }
    Ok(())
}

/// `M_ξ (tiles, c_out_padded) = V_ξ (tiles, c_in_padded) × U_ξ (c_in_padded, c_out_padded)`
/// for every point `ξ` of one block, `U_ξ` packed by [`pack_filters`].
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

/// Packs each point's transformed filters `U_ξ (c_in_padded, c_out_padded)` of `filters`
/// as the GEMM's B̃ into `packed (POINTS, g.packed_filter_len())`.
fn pack_filters(g: &Geometry, filters: &[f32], packed: &mut [f32]) {
    let (cp, kp, len) = (g.c_in_padded, g.c_out_padded, g.packed_filter_len());
    let shape = GemmShape::new(0, kp, cp);
    for (point, panels) in packed.chunks_exact_mut(len).take(POINTS).enumerate() {
        pack_b_panels(g.isa, &shape, &filters[point * cp * kp..][..cp * kp], panels);
    }
}

/// `dU_ξ (c_in_padded, c_out_padded) += V_ξᵀ × Z_ξ` for every point `ξ` of one block of
/// `tiles` tiles.
fn multiply_gradient(
    isa: Isa,
    g: &Geometry,
    tiles: usize,
    v: &[f32],
    z: &[f32],
    du: &mut [f32],
) -> Result<()> {
    let (cp, kp, capacity) = (g.c_in_padded, g.c_out_padded, g.block_tiles());
    let shape = GemmShape::new(cp, kp, tiles).transposed(Transpose::Yes, Transpose::No);
    for point in 0..POINTS {
        let a = &v[point * capacity * cp..][..tiles * cp];
        let b = &z[point * capacity * kp..][..tiles * kp];
        let c = &mut du[point * cp * kp..][..cp * kp];
        sgemm_fused_on(isa, &shape, 1.0, a, b, 1.0, c, &Epilogue::NONE)?;
    }
    Ok(())
}

/// `filters (POINTS, c_in_padded, c_out_padded)` **overwritten** with `G g Gᵀ` of each filter
/// `g` of `weight (c_out, c_in, 3, 3)` (in `g`'s channels), zero for padded channels; with
/// `flipped`, of the transposed shape's filters, read from the original `weight (c_in,
/// c_out, 3, 3)` with both kernel axes reversed.
fn transform_filters(g: &Geometry, weight: &[f32], flipped: bool, filters: &mut [f32]) {
    let (cp, kp) = (g.c_in_padded, g.c_out_padded);
    filters.fill(0.0);
    for k in 0..g.c_out {
        for c in 0..g.c_in {
            let taps: [f32; TAPS] = if flipped {
                let source = &weight[(c * g.c_out + k) * TAPS..][..TAPS];
                std::array::from_fn(|t| source[TAPS - 1 - t])
            } else {
                let source = &weight[(k * g.c_in + c) * TAPS..][..TAPS];
                std::array::from_fn(|t| source[t])
            };
            for (point, value) in filter(&taps).into_iter().enumerate() {
                filters[(point * cp + c) * kp + k] = value;
            }
        }
    }
}

/// `dweight (c_out, c_in, 3, 3) += Gᵀ dU G` of each filter's transformed gradient in `du
/// (POINTS, c_in_padded, c_out_padded)`.
fn add_filter_gradients(g: &Geometry, du: &[f32], dweight: &mut [f32]) {
    let (cp, kp) = (g.c_in_padded, g.c_out_padded);
    for k in 0..g.c_out {
        for c in 0..g.c_in {
            let u: [f32; POINTS] = std::array::from_fn(|point| du[(point * cp + c) * kp + k]);
            let target = &mut dweight[(k * g.c_in + c) * TAPS..][..TAPS];
            for (acc, d) in target.iter_mut().zip(filter_gradient(&u)) {
                *acc += d;
            }
        }
    }
}
