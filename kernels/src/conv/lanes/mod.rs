//! Convolution with the images of a batch in the vector lanes, for the small planes of a
//! network's first layers (LeNet-5: 28x28 and 14x14 images, 1 -> 6 and 6 -> 16 channels).
//!
//! Per image, such a layer vectorises badly: a row of 10 outputs fills 10 of 16 lanes, and
//! as a GEMM its column matrix has to be written and read back for a handful of channels.
//! Here as many images as a vector has lanes (a *lane group*: 16 on AVX-512, 8 on AVX2) are
//! moved into the layout `(c, h, w, lanes)` (see [`layout`]), where every position is one
//! full vector, and the three passes run as register-blocked loops with no masks and no
//! partial vectors (see [`kernels`]; one generic body, one vector type per instruction set in
//! `conv/vector.rs`, dispatched in [`dispatch`]):
//! - forward: `y = act(correlate(pad(x), weight) + bias)`;
//! - backward to the input: `dx = correlate(pad'(dy), flip(weight)ᵀ)`, where `pad'` surrounds
//!   `dy` with `k - 1 - pad` zeros and the flipped weight swaps `c_in` and `c_out` and
//!   reverses both kernel axes (a stride-1 transposed convolution is a correlation);
//! - backward to the weight: `dweight += Σ dy · taps(pad(x))`, summed over every position and
//!   image of a pass, then across lanes.
//!
//! Computes stride 1, dilation 1, one channel group, `pad <= k - 1`, at least a lane group
//! of images and planes small enough that a group's layouts stay in L2; runs where that pays
//! ([`forward_applies`], [`backward_applies`]). The caller gives the workspace, and a
//! workspace too short for one slot leaves the pass to the per-image path.
//!
//! Threads: the lane groups are cut into one consecutive run per slot (at most one per thread,
//! see `conv2d.rs`), each with its own part of the workspace. The weight gradient sums each
//! slot into a partial added in slot order, so results depend on the slot count (the thread
//! count and workspace), never on scheduling.

mod dispatch;
mod kernels;
mod layout;

use self::kernels::Sizes;
use self::layout::{Images, Plane};
use super::bias::add_bias_gradient;
use super::shape::{saturating_product, Conv2dShape};
use super::slots::{add_slot_partials, run_slots, wanted_slots};
use super::transposed::flip_weight;
use super::tuning::{DIRECT_MIN_FILL_PERCENT, DIRECT_ROW_LANES, GROUPS_PER_PASS, MAX_GROUP_FLOATS};
use super::vector::vector_lanes as lanes;
use crate::error::Result;
use crate::gemm::Activation;
use crate::isa::Isa;

/// Whether this module computes the passes of `shape` on `isa` (see the module docs).
fn computes(shape: &Conv2dShape, isa: Isa) -> bool {
    // A group's two layouts, `(c_in·hp·wp + c_out·out_h·out_w)·lanes` floats (saturating:
    // this may be asked of any shape).
    let lanes = lanes(isa);
    let (hp, wp) = shape.padded_dims();
    let group_floats = saturating_product(&[shape.c_in, hp, wp, lanes])
        .saturating_add(saturating_product(&[shape.c_out, shape.out_h(), shape.out_w(), lanes]));
    // AVX-512 and AVX2 only: the portable vector's moves in and out of the layout are
    // scalar loops, slower than the per-image paths.
    isa != Isa::Portable
        && shape.stride_h == 1
        && shape.stride_w == 1
        && shape.dilation_h == 1
        && shape.dilation_w == 1
        && shape.groups == 1
        && !shape.is_pointwise()
        && shape.pad_h < shape.kh
        && shape.pad_w < shape.kw
        && shape.n >= lanes
        && group_floats <= MAX_GROUP_FLOATS
}

/// Whether the forward of `shape` runs here: where [`computes`] holds and the per-image
/// direct loops (`direct.rs`, [`DIRECT_ROW_LANES`] outputs of a row per strip) would fill
/// less than [`DIRECT_MIN_FILL_PERCENT`] of their lanes (rows of 10 outputs fill 10 of 16).
/// Where they fill more, moving the output planes out of the layout costs more than the
/// lanes it fills.
pub(super) fn forward_applies(shape: &Conv2dShape, isa: Isa) -> bool {
    let out_w = shape.out_w();
    computes(shape, isa) && 100 * out_w < DIRECT_MIN_FILL_PERCENT * out_w.next_multiple_of(DIRECT_ROW_LANES)
}

/// Whether the two backward passes of `shape` run here: wherever [`computes`] holds. The
/// per-image backward to the input is a GEMM plus col2im, and the per-image weight gradient
/// reads every row through unaligned, masked loads: both slower than the lanes' full vectors.
pub(super) fn backward_applies(shape: &Conv2dShape, isa: Isa) -> bool {
    computes(shape, isa)
}

/// Whether a workspace of `len` floats holds one slot of the forward on `isa`.
pub(super) fn forward_fits(shape: &Conv2dShape, isa: Isa, len: usize) -> bool {
    groups_per_slot(shape, isa, len, forward_slot_len(shape, isa)).is_some()
}

/// Whether a workspace of `len` floats holds the flipped weight and one slot of the
/// backward to the input on `isa`.
pub(super) fn backward_data_fits(shape: &Conv2dShape, isa: Isa, len: usize) -> bool {
    len.checked_sub(shape.weight_len())
        .and_then(|room| groups_per_slot(shape, isa, room, backward_data_slot_len(shape, isa)))
        .is_some()
}

/// Whether a workspace of `len` floats holds one slot of the backward to the weight on `isa`.
pub(super) fn backward_weight_fits(shape: &Conv2dShape, isa: Isa, len: usize) -> bool {
    groups_per_slot(shape, isa, len, backward_weight_slot_len(shape, isa)).is_some()
}

/// The input's layout, padded as the forward reads it.
fn input_plane(shape: &Conv2dShape) -> Plane {
    Plane { channels: shape.c_in, h: shape.h, w: shape.w, pad_h: shape.pad_h, pad_w: shape.pad_w }
}

/// The output's (or output gradient's) layout, unpadded.
fn output_plane(shape: &Conv2dShape) -> Plane {
    Plane { channels: shape.c_out, h: shape.out_h(), w: shape.out_w(), pad_h: 0, pad_w: 0 }
}

/// The output gradient's layout padded for the backward to the input: `k - 1 - pad` zeros
/// on each side.
fn output_gradient_plane(shape: &Conv2dShape) -> Plane {
    Plane { pad_h: shape.kh - 1 - shape.pad_h, pad_w: shape.kw - 1 - shape.pad_w, ..output_plane(shape) }
}

/// The input gradient's layout, unpadded.
fn input_gradient_plane(shape: &Conv2dShape) -> Plane {
    Plane { pad_h: 0, pad_w: 0, ..input_plane(shape) }
}

/// Floats of slack at the start of every slot, so that its layouts can start on a 64-byte
/// boundary: every layout is a whole number of vectors (16 or 8 floats), so one aligned start
/// aligns every vector load and store of the kernels (an unaligned vector spans two cache
/// lines).
const ALIGN_SLACK: usize = 16;

/// The index of `slot`'s first float on a 64-byte boundary (0 where the platform cannot
/// tell).
fn aligned_start(slot: &[f32]) -> usize {
    let offset = slot.as_ptr().align_offset(64);
    if offset < ALIGN_SLACK {
        offset
    } else {
        0
    }
}

fn forward_slot_len(shape: &Conv2dShape, isa: Isa) -> usize {
    let lanes = lanes(isa);
    ALIGN_SLACK + input_plane(shape).len(lanes) + output_plane(shape).len(lanes)
}

fn backward_data_slot_len(shape: &Conv2dShape, isa: Isa) -> usize {
    let lanes = lanes(isa);
    ALIGN_SLACK + output_gradient_plane(shape).len(lanes) + input_gradient_plane(shape).len(lanes)
}

fn backward_weight_slot_len(shape: &Conv2dShape, isa: Isa) -> usize {
    let lanes = lanes(isa);
    ALIGN_SLACK
        + GROUPS_PER_PASS * (input_plane(shape).len(lanes) + output_plane(shape).len(lanes))
        + shape.weight_len()
        + shape.c_out
}

/// Lane groups of the batch on `isa` (where [`computes`] holds).
fn lane_groups(shape: &Conv2dShape, isa: Isa) -> usize {
    shape.n.div_ceil(lanes(isa))
}

/// Workspace for the passes of `shape` that run here on `isa`, with one slot per thread
/// (see `conv2d_workspace_len`); 0 where none does.
pub(super) fn workspace_len(shape: &Conv2dShape, isa: Isa) -> usize {
    if !computes(shape, isa) {
        return 0;
    }
    let slots = wanted_slots(shape).min(lane_groups(shape, isa));
    let data = shape.weight_len().saturating_add(slots.saturating_mul(backward_data_slot_len(shape, isa)));
    let weight = slots.saturating_mul(backward_weight_slot_len(shape, isa));
    let forward =
        if forward_applies(shape, isa) { slots.saturating_mul(forward_slot_len(shape, isa)) } else { 0 };
    data.max(weight).max(forward)
}

/// Lane groups per slot for a workspace of `len` floats with slots of `slot_len`, or `None`
/// when not even one slot fits.
fn groups_per_slot(shape: &Conv2dShape, isa: Isa, len: usize, slot_len: usize) -> Option<usize> {
    let groups = lane_groups(shape, isa);
    let slots = wanted_slots(shape).min(groups).min(len / slot_len);
    (slots > 0).then(|| groups.div_ceil(slots))
}

/// The lane groups of `lanes` images of a run of `images` whole images: `(first image offset,
/// Images)` each.
fn groups_of(images: usize, image_len: usize, lanes: usize) -> impl Iterator<Item = (usize, Images)> {
    (0..images)
        .step_by(lanes)
        .map(move |first| (first * image_len, Images { image_len, count: lanes.min(images - first) }))
}

/// The sizes of a pass on `isa` that reads the layout `input` (its padding included) and
/// writes or reads `c_out` channels.
fn sizes(isa: Isa, input: &Plane, c_out: usize, kh: usize, kw: usize) -> Sizes {
    Sizes {
        lanes: lanes(isa),
        c_in: input.channels,
        c_out,
        hp: input.padded_h(),
        wp: input.padded_w(),
        kh,
        kw,
        live_rows: input.pad_h..input.pad_h + input.h,
        live_cols: input.pad_w..input.pad_w + input.w,
    }
}

/// Panics unless the CPU has `isa` and `isa` a vector for this path.
fn assert_runs_on(isa: Isa) {
    assert!(
        isa != Isa::Portable && isa.is_supported(),
        "images-in-lanes convolution on {isa:?}, which this CPU or path lacks"
    );
}

/// Forward, as `conv2d_forward_fused` documents it, for a shape where [`forward_applies`]
/// holds on `isa`, checked slices and a workspace that [`forward_fits`].
///
/// Panics if the CPU lacks `isa` or the workspace does not fit.
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
    assert_runs_on(isa);
    let slot_len = forward_slot_len(shape, isa);
    let per = groups_per_slot(shape, isa, workspace.len(), slot_len).expect("the plan checked the workspace");
    let pass =
        Correlate { isa, input: input_plane(shape), output: output_plane(shape), weight, bias, activation };
    pass.run(shape, per, x, y, workspace, slot_len)
}

/// Backward to the input, as `conv2d_backward_data` documents it, for a shape where
/// [`backward_applies`] holds on `isa`, checked slices and a workspace that
/// [`backward_data_fits`].
///
/// Panics if the CPU lacks `isa` or the workspace does not fit.
pub(super) fn backward_data(
    isa: Isa,
    shape: &Conv2dShape,
    dy: &[f32],
    weight: &[f32],
    dx: &mut [f32],
    workspace: &mut [f32],
) -> Result<()> {
    assert_runs_on(isa);
    let slot_len = backward_data_slot_len(shape, isa);
    let room = workspace.len().checked_sub(shape.weight_len()).expect("the plan checked the workspace");
    let per = groups_per_slot(shape, isa, room, slot_len).expect("the plan checked the workspace");
    let (flipped, slots) = workspace.split_at_mut(shape.weight_len());
    flip_weight(shape, weight, flipped);
    let pass = Correlate {
        isa,
        input: output_gradient_plane(shape),
        output: input_gradient_plane(shape),
        weight: flipped,
        bias: None,
        activation: Activation::Identity,
    };
    pass.run(shape, per, dy, dx, slots, slot_len)
}

/// A correlation of NCHW batches through the layout on `isa`: `input` (padded) to `output`.
struct Correlate<'a> {
    isa: Isa,
    input: Plane,
    output: Plane,
    weight: &'a [f32],
    bias: Option<&'a [f32]>,
    activation: Activation,
}

impl Correlate<'_> {
    /// `dst` (the batch in `output`'s shape) **overwritten** from `src` (in `input`'s), lane
    /// group by lane group, in runs of `per` groups, one slot of `slot_len` floats each.
    fn run(
        &self,
        shape: &Conv2dShape,
        per: usize,
        src: &[f32],
        dst: &mut [f32],
        slots: &mut [f32],
        slot_len: usize,
    ) -> Result<()> {
        let (isa, input, output) = (self.isa, &self.input, &self.output);
        let lanes = lanes(isa);
        let sizes = sizes(isa, input, output.channels, shape.kh, shape.kw);
        let (src_image, dst_image) =
            (input.channels * input.h * input.w, output.channels * output.h * output.w);
        let task = |first: usize, images: usize, dst: &mut [f32], slot: &mut [f32]| -> Result<()> {
            let src = &src[first * src_image..(first + images) * src_image];
            let start = aligned_start(slot);
            let slot = &mut slot[start..];
            let (inp, out) = slot.split_at_mut(input.len(lanes));
            let out = &mut out[..output.len(lanes)];
            for (offset, images) in groups_of(images, src_image, lanes) {
                let dst_images = Images { image_len: dst_image, ..images };
                // SAFETY: the CPU has `isa`, which has a vector here (asserted by the entry).
                // The slices hold the group's images and the layouts' lengths.
                unsafe {
                    dispatch::interleave(isa, &src[offset..], images, input, inp);
                    dispatch::correlate(isa, &sizes, self.activation, inp, self.weight, self.bias, out);
                    let dst = &mut dst[offset / src_image * dst_image..];
                    dispatch::deinterleave(isa, out, output, dst_images, dst);
                }
            }
            Ok(())
        };
        run_slots(0, shape.n, per * lanes, dst, dst_image, slots, slot_len, &task)
    }
}

/// Backward to the weight and bias, as `conv2d_backward_weight` documents it, for a shape
/// where [`backward_applies`] holds on AVX-512, checked slices and a workspace that
/// [`backward_weight_fits`].
///
/// Panics if the CPU lacks `isa` or the workspace does not fit.
pub(super) fn backward_weight(
    isa: Isa,
    shape: &Conv2dShape,
    x: &[f32],
    dy: &[f32],
    dweight: &mut [f32],
    dbias: Option<&mut [f32]>,
    workspace: &mut [f32],
) -> Result<()> {
    assert_runs_on(isa);
    let lanes = lanes(isa);
    let slot_len = backward_weight_slot_len(shape, isa);
    let per = groups_per_slot(shape, isa, workspace.len(), slot_len).expect("the plan checked the workspace");
    let (input, gradient) = (input_plane(shape), output_plane(shape));
    let sizes = sizes(isa, &input, shape.c_out, shape.kh, shape.kw);
    let (x_image, dy_image) =
        (input.channels * input.h * input.w, gradient.channels * gradient.h * gradient.w);
    let group_len = input.len(lanes) + gradient.len(lanes);
    let weight_len = shape.weight_len();
    // One slot's images into `dweight` and `dbias` (accumulated).
    let run =
        |x: &[f32], dy: &[f32], groups: &mut [f32], dweight: &mut [f32], mut dbias: Option<&mut [f32]>| {
            let images = x.len() / x_image;
            for first in (0..images).step_by(GROUPS_PER_PASS * lanes) {
                let count = (GROUPS_PER_PASS * lanes).min(images - first);
                let pass = &mut groups[..count.div_ceil(lanes) * group_len];
                for ((offset, images), group) in
                    groups_of(count, x_image, lanes).zip(pass.chunks_exact_mut(group_len))
                {
                    let (inp, out) = group.split_at_mut(input.len(lanes));
                    let dy_images = Images { image_len: dy_image, ..images };
                    let dy_offset = offset / x_image * dy_image;
                    // SAFETY: as in `Correlate::run`.
                    unsafe {
                        dispatch::interleave(isa, &x[first * x_image + offset..], images, &input, inp);
                        let dy = &dy[first * dy_image + dy_offset..];
                        dispatch::interleave(isa, dy, dy_images, &gradient, out);
                    }
                }
                // SAFETY: as in `Correlate::run`; `pass` holds whole groups.
                unsafe { dispatch::weight_gradient(isa, &sizes, pass, dweight) };
            }
            if let Some(dbias) = dbias.as_deref_mut() {
                for dyi in dy.chunks_exact(dy_image) {
                    add_bias_gradient(shape, dyi, dbias);
                }
            }
        };
    let slot_images = per * lanes;
    if shape.n <= slot_images {
        let slot = &mut workspace[..slot_len];
        let start = aligned_start(slot);
        run(x, dy, &mut slot[start..], dweight, dbias);
        return Ok(());
    }
    let with_bias = dbias.is_some();
    // Each slot zeroes its partial gradients, then accumulates its images into them.
    let task = |first: usize, images: usize, _: &mut [f32], slot: &mut [f32]| -> Result<()> {
        let start = aligned_start(slot);
        let (groups, partial) = slot[start..].split_at_mut(GROUPS_PER_PASS * group_len);
        let (pw, pb) = partial.split_at_mut(weight_len);
        pw.fill(0.0);
        pb.fill(0.0);
        let (x, dy) = (
            &x[first * x_image..(first + images) * x_image],
            &dy[first * dy_image..(first + images) * dy_image],
        );
        run(x, dy, groups, pw, with_bias.then_some(pb));
        Ok(())
    };
    run_slots(0, shape.n, slot_images, &mut [], 0, workspace, slot_len, &task)?;
    let partials = workspace.chunks_exact(slot_len).take(shape.n.div_ceil(slot_images));
    add_slot_partials(
        partials.map(|slot| &slot[aligned_start(slot) + GROUPS_PER_PASS * group_len..]),
        dweight,
        dbias,
    );
    Ok(())
}
