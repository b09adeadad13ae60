//! Convolution forward, backward-data and backward-weight: the checked entry points, which
//! pick the images-in-lanes (`lanes/`) or direct (`direct.rs`) path where it applies and the
//! workspace holds it, and otherwise run im2col + GEMM as below.
//!
//! Per image and group `g` (`K = (c_in/groups)·kh·kw`, `P = out_h·out_w`, `W_g` the
//! `(c_out/groups, K)` rows of the weight, `col` the `(K, P)` im2col of the group's input):
//! - forward: `y_g = W_g × col (+ bias)`;
//! - backward-data: `dcol = W_gᵀ × dy_g`, then `dx_g = col2im(dcol)`;
//! - backward-weight: `dW_g += dy_g × colᵀ`, `dbias += Σ_p dy_g`.
//!
//! A pointwise convolution (1x1, stride 1, no padding) has `col = x_g` (`(c_in/groups, h·w)`
//! is already the column matrix), so it skips im2col/col2im and needs no column buffer.
//!
//! Threads: the batch is split into consecutive runs of images, one per workspace slot, run
//! in parallel (each slot owns a column buffer and, for backward-weight, a partial gradient).
//! Inside a slot the images run in order; a single slot instead lets im2col/col2im split
//! channels and leaves the GEMM its own threading. Slot count and split depend only on the
//! shape, the pool size and the workspace length, so results are deterministic for them.

use super::direct;
use super::im2col::{col2im_unchecked, im2col_unchecked};
use super::lanes;
use super::shape::{check_bias, check_weight, check_x, check_y, Conv2dShape};
use crate::error::{check_min_len, Result};
use crate::gemm::{sgemm, sgemm_fused, Activation, Bias, Epilogue, Transpose};
use crate::parallel::{current_num_threads, MIN_PARALLEL_MULADDS};

/// Scratch length for any of the three conv kernels on `shape`, sized for the current rayon
/// pool (call it inside the pool you will run the kernels in).
///
/// On one thread (or a batch too small to split) this is one column buffer of
/// `(c_in/groups)·kh·kw · out_h·out_w` floats (0 for a pointwise convolution). Otherwise it
/// is `min(n, threads)` slots, each a column buffer plus a partial weight and bias gradient
/// (`c_out·(c_in/groups)·kh·kw + c_out` floats), so that images run in parallel. Where the
/// direct backward-data or the images-in-lanes paths apply, it is at least what they need.
/// Kernels accept any workspace at least one column buffer long and use as many slots (and
/// the fastest path) it holds. Returns a meaningless length for a shape that fails
/// [`Conv2dShape::check`] (the kernels reject it).
pub fn conv2d_workspace_len(shape: &Conv2dShape) -> usize {
    let slots = wanted_slots(shape);
    let direct_data = transposed(shape).filter(direct::applies).map_or(0, |t| direct_data_slot_len(&t));
    let per_image = if slots <= 1 {
        col_scratch_len(shape).max(direct_data)
    } else {
        slots.saturating_mul(weight_slot_len(shape).max(direct_data))
    };
    per_image.max(lanes::workspace_len(shape))
}

/// Scratch of one slot: a column buffer (none for pointwise convolutions), or the padded
/// image of the direct forward if that is longer.
fn col_scratch_len(shape: &Conv2dShape) -> usize {
    if shape.is_pointwise() {
        0
    } else if direct::applies(shape) {
        shape.col_len().max(direct::scratch_len(shape))
    } else {
        shape.col_len()
    }
}

/// A backward-weight slot: column buffer, partial `dweight`, partial `dbias`.
fn weight_slot_len(shape: &Conv2dShape) -> usize {
    col_scratch_len(shape).saturating_add(shape.weight_len()).saturating_add(shape.c_out)
}

/// Slots worth running: one per thread (at most one per image) when the whole pass has
/// enough multiply-adds to pay for the split, else 1.
pub(super) fn wanted_slots(shape: &Conv2dShape) -> usize {
    let threads = current_num_threads();
    if shape.n < 2 || threads < 2 || shape.muladds() < MIN_PARALLEL_MULADDS {
        1
    } else {
        shape.n.min(threads)
    }
}

/// Images per slot, given a workspace of `workspace_len` and slots of `slot_len` floats.
/// With `per` images per slot there are `n.div_ceil(per)` slots, none of them empty.
fn images_per_slot(shape: &Conv2dShape, workspace_len: usize, slot_len: usize) -> usize {
    let fit = workspace_len.checked_div(slot_len).unwrap_or(usize::MAX);
    let slots = wanted_slots(shape).min(fit).max(1);
    shape.n.div_ceil(slots).max(1)
}

fn check_workspace(shape: &Conv2dShape, len: usize) -> Result<()> {
    let (rows, cols) = (shape.col_rows(), shape.col_cols());
    check_min_len(
        || {
            format!(
                "workspace (at least one column buffer (c_in/groups·kh·kw, out_h·out_w) = ({rows}, {cols}), \
                 or the direct forward's padded image if longer)"
            )
        },
        col_scratch_len(shape),
        len,
    )
}

/// Runs `task(first_image, images, out, slot)` over the batch `first..first + images`, in
/// runs of `per` images: each run gets its own part of `out` (`out_image` floats per image)
/// and its own `slot_len` floats of `scratch`. Runs execute in parallel (halving with
/// `rayon::join`); the caller sized `scratch` for `images.div_ceil(per)` slots.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_slots<F>(
    first: usize,
    images: usize,
    per: usize,
    out: &mut [f32],
    out_image: usize,
    scratch: &mut [f32],
    slot_len: usize,
    task: &F,
) -> Result<()>
where
    F: Fn(usize, usize, &mut [f32], &mut [f32]) -> Result<()> + Sync,
{
    if images <= per {
        return task(first, images, out, &mut scratch[..slot_len]);
    }
    let left_slots = images.div_ceil(per) / 2;
    let left = left_slots * per;
    let (out_left, out_right) = out.split_at_mut(left * out_image);
    let (scratch_left, scratch_right) = scratch.split_at_mut(left_slots * slot_len);
    let (a, b) = rayon::join(
        || run_slots(first, left, per, out_left, out_image, scratch_left, slot_len, task),
        || run_slots(first + left, images - left, per, out_right, out_image, scratch_right, slot_len, task),
    );
    a.and(b)
}

/// Convolution forward: `y = conv(x, weight) + bias`.
///
/// Shapes (see [`Conv2dShape`]): `x (n, c_in, h, w)`, `weight (c_out, c_in/groups, kh, kw)`,
/// `bias (c_out)` or `None`, `y (n, c_out, out_h, out_w)` **overwritten** (never read).
/// `workspace`: scratch (contents ignored) of at least one column buffer, none for a pointwise
/// convolution; with room for more, runs of images go to parallel slots, one buffer each
/// (see [`conv2d_workspace_len`]). With stride 1 and dilation 1 on an AVX-512 CPU the
/// forward is a direct convolution (see `direct.rs`), whose padded image may need a little
/// more than a column buffer for tiny outputs: size the workspace with
/// [`conv2d_workspace_len`]. `n = 0` is a no-op. Errors if the shape fails its check
/// or a slice length does not match.
pub fn conv2d_forward(
    shape: &Conv2dShape,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    workspace: &mut [f32],
) -> Result<()> {
    conv2d_forward_fused(shape, x, weight, bias, Activation::Identity, y, workspace)
}

/// [`conv2d_forward`] with an activation fused in: `y = activation(conv(x, weight) + bias)`,
/// applied to each tile of `y` before it is stored (in the direct convolution's registers,
/// or the GEMM's epilogue), so `y` is written once. Shapes, workspace and errors as
/// [`conv2d_forward`]; a leaky-ReLU slope must be finite.
pub fn conv2d_forward_fused(
    shape: &Conv2dShape,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
    y: &mut [f32],
    workspace: &mut [f32],
) -> Result<()> {
    Epilogue { bias: Bias::None, activation }.check(0, 0)?;
    shape.check()?;
    check_x(shape, "x", x.len())?;
    check_weight(shape, "weight", weight.len())?;
    if let Some(bias) = bias {
        check_bias(shape, "bias", bias.len())?;
    }
    check_y(shape, "y", y.len())?;
    check_workspace(shape, workspace.len())?;
    if shape.n == 0
        || (lanes::forward_applies(shape)
            && lanes::forward(shape, x, weight, bias, activation, y, workspace)?)
    {
        return Ok(());
    }
    let slot_len = col_scratch_len(shape);
    let per = images_per_slot(shape, workspace.len(), slot_len);
    let (x_image, y_image) = image_lens(shape);
    let single = per >= shape.n;
    let task = |first: usize, images: usize, y_run: &mut [f32], col: &mut [f32]| -> Result<()> {
        let x_run = &x[first * x_image..(first + images) * x_image];
        for (xi, yi) in x_run.chunks_exact(x_image).zip(y_run.chunks_exact_mut(y_image)) {
            forward_image(shape, xi, weight, bias, activation, yi, col, single)?;
        }
        Ok(())
    };
    run_slots(0, shape.n, per, y, y_image, workspace, slot_len, &task)
}

/// Forward of one image `x (c_in, h, w)` into `y (c_out, P)`.
#[allow(clippy::too_many_arguments)]
fn forward_image(
    shape: &Conv2dShape,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
    y: &mut [f32],
    col: &mut [f32],
    parallel: bool,
) -> Result<()> {
    let (cg, cog, k, p) = group_dims(shape);
    let x_group = cg * shape.h * shape.w;
    let direct = direct::applies(shape);
    for g in 0..shape.groups {
        let xg = &x[g * x_group..(g + 1) * x_group];
        let wg = &weight[g * cog * k..(g + 1) * cog * k];
        let yg = &mut y[g * cog * p..(g + 1) * cog * p];
        let bias_g = bias.map(|b| &b[g * cog..(g + 1) * cog]);
        if direct {
            direct::forward_group(shape, xg, wg, bias_g, activation, yg, col);
            continue;
        }
        let cols: &[f32] = if shape.is_pointwise() {
            xg
        } else {
            im2col_unchecked(shape, xg, &mut col[..k * p], parallel);
            &col[..k * p]
        };
        // The bias (one per output channel, a row of y) and the activation go in the GEMM's
        // epilogue, while each tile is in registers.
        let epilogue = Epilogue { bias: bias_g.map_or(Bias::None, Bias::PerRow), activation };
        sgemm_fused(Transpose::No, Transpose::No, cog, p, k, 1.0, wg, k, cols, p, 0.0, yg, p, &epilogue)?;
    }
    Ok(())
}

/// Lengths of one image of `x` and of `y`: `(c_in·h·w, c_out·out_h·out_w)`.
fn image_lens(shape: &Conv2dShape) -> (usize, usize) {
    (shape.c_in * shape.h * shape.w, shape.c_out * shape.col_cols())
}

/// `(c_in/groups, c_out/groups, K = (c_in/groups)·kh·kw, P = out_h·out_w)`.
fn group_dims(shape: &Conv2dShape) -> (usize, usize, usize, usize) {
    (shape.c_in / shape.groups, shape.c_out / shape.groups, shape.col_rows(), shape.col_cols())
}

/// Convolution backward to the input: `dx = conv_transpose(dy, weight)`, the adjoint of
/// [`conv2d_forward`] in `x`.
///
/// Shapes: `dy (n, c_out, out_h, out_w)`, `weight (c_out, c_in/groups, kh, kw)`,
/// `dx (n, c_in, h, w)` **overwritten** (never read; input positions no window touches get 0).
/// `workspace` as for [`conv2d_forward`]. `n = 0` is a no-op. Errors as [`conv2d_forward`].
pub fn conv2d_backward_data(
    shape: &Conv2dShape,
    dy: &[f32],
    weight: &[f32],
    dx: &mut [f32],
    workspace: &mut [f32],
) -> Result<()> {
    shape.check()?;
    check_y(shape, "dy", dy.len())?;
    check_weight(shape, "weight", weight.len())?;
    check_x(shape, "dx", dx.len())?;
    check_workspace(shape, workspace.len())?;
    if shape.n == 0
        || (lanes::backward_applies(shape) && lanes::backward_data(shape, dy, weight, dx, workspace)?)
    {
        return Ok(());
    }
    // Where the backward is a correlation the direct forward computes, and the workspace
    // holds the flipped weight besides the direct forward's scratch, it runs as that forward
    // (measured 1.1x to 1.9x faster than GEMM + col2im, 1.5x on conv C).
    let direct =
        transposed(shape).filter(|t| direct::applies(t) && workspace.len() >= direct_data_slot_len(t));
    let slot_len = direct.as_ref().map_or(col_scratch_len(shape), direct_data_slot_len);
    let per = images_per_slot(shape, workspace.len(), slot_len);
    let (x_image, y_image) = image_lens(shape);
    let single = per >= shape.n;
    let task = |first: usize, images: usize, dx_run: &mut [f32], col: &mut [f32]| -> Result<()> {
        let dy_run = &dy[first * y_image..(first + images) * y_image];
        let images = dy_run.chunks_exact(y_image).zip(dx_run.chunks_exact_mut(x_image));
        if let Some(t) = &direct {
            let (flipped, scratch) = col.split_at_mut(shape.weight_len());
            flip_weight(shape, weight, flipped);
            for (dyi, dxi) in images {
                forward_image(t, dyi, flipped, None, Activation::Identity, dxi, scratch, single)?;
            }
            return Ok(());
        }
        for (dyi, dxi) in images {
            backward_data_image(shape, dyi, weight, dxi, col, single)?;
        }
        Ok(())
    };
    run_slots(0, shape.n, per, dx, x_image, workspace, slot_len, &task)
}

/// A backward-data slot on the direct path, for the [`transposed`] shape `t`: the flipped
/// weight and the direct forward's scratch.
fn direct_data_slot_len(t: &Conv2dShape) -> usize {
    t.weight_len() + direct::scratch_len(t)
}

/// The convolution whose forward is the backward to the input of `shape`, where that is a
/// correlation: stride 1, dilation 1 and `pad < k` on both axes. It reads `dy` as `c_out`
/// channels of `out_h x out_w`, padded by `k - 1 - pad`, and writes `c_in` channels of
/// `h x w`, with the weight [`flip_weight`] makes: `dx[ci, iy, ix] = Σ dy[co, iy + ki - pad',
/// ix + kj - pad'] · weight[co, ci, kh - 1 - ki, kw - 1 - kj]`.
pub(super) fn transposed(shape: &Conv2dShape) -> Option<Conv2dShape> {
    let unit = shape.stride_h == 1 && shape.stride_w == 1 && shape.dilation_h == 1 && shape.dilation_w == 1;
    (unit && shape.pad_h < shape.kh && shape.pad_w < shape.kw).then(|| Conv2dShape {
        c_in: shape.c_out,
        h: shape.out_h(),
        w: shape.out_w(),
        c_out: shape.c_in,
        pad_h: shape.kh - 1 - shape.pad_h,
        pad_w: shape.kw - 1 - shape.pad_w,
        ..*shape
    })
}

/// The weight of [`transposed`]`(shape)`, `flipped (c_in, c_out/groups, kh, kw)` **overwritten**
/// from `weight (c_out, c_in/groups, kh, kw)`: within each group, input and output channels
/// swapped and both kernel axes reversed.
pub(super) fn flip_weight(shape: &Conv2dShape, weight: &[f32], flipped: &mut [f32]) {
    let (cg, cog) = (shape.c_in / shape.groups, shape.c_out / shape.groups);
    let (kh, kw) = (shape.kh, shape.kw);
    let taps = kh * kw;
    // flipped[g·cg + ci, co, ki, kj] = weight[g·cog + co, ci, kh - 1 - ki, kw - 1 - kj].
    for (row, out) in flipped[..shape.weight_len()].chunks_exact_mut(taps).enumerate() {
        let (co, ci_all) = (row % cog, row / cog);
        let (g, ci) = (ci_all / cg, ci_all % cg);
        let source = &weight[((g * cog + co) * cg + ci) * taps..][..taps];
        for (value, &w) in out.iter_mut().zip(source.iter().rev()) {
            *value = w;
        }
    }
}

/// Backward-data of one image: `dy (c_out, P)` into `dx (c_in, h, w)`.
fn backward_data_image(
    shape: &Conv2dShape,
    dy: &[f32],
    weight: &[f32],
    dx: &mut [f32],
    col: &mut [f32],
    parallel: bool,
) -> Result<()> {
    let (cg, cog, k, p) = group_dims(shape);
    let x_group = cg * shape.h * shape.w;
    for g in 0..shape.groups {
        let wg = &weight[g * cog * k..(g + 1) * cog * k];
        let dyg = &dy[g * cog * p..(g + 1) * cog * p];
        let dxg = &mut dx[g * x_group..(g + 1) * x_group];
        // W_g is stored (cog, K); its transpose (K, cog) times dy_g (cog, P) is the column
        // gradient (K, P). Pointwise: that is dx_g itself.
        if shape.is_pointwise() {
            sgemm(Transpose::Yes, Transpose::No, k, p, cog, 1.0, wg, k, dyg, p, 0.0, dxg, p)?;
        } else {
            let col = &mut col[..k * p];
            sgemm(Transpose::Yes, Transpose::No, k, p, cog, 1.0, wg, k, dyg, p, 0.0, col, p)?;
            col2im_unchecked(shape, col, dxg, parallel);
        }
    }
    Ok(())
}

/// Convolution backward to the parameters: `dweight += Σ_images dy × im2col(x)ᵀ` and
/// `dbias += Σ_images Σ_positions dy`.
///
/// Shapes: `x (n, c_in, h, w)`, `dy (n, c_out, out_h, out_w)`,
/// `dweight (c_out, c_in/groups, kh, kw)` and `dbias (c_out)` (or `None`) are **accumulated**
/// (`+=`, as parameter gradients are: zero them once per step). `workspace` as for
/// [`conv2d_forward`]; with room for two or more slots of [`conv2d_workspace_len`]'s layout,
/// images run in parallel into per-slot partial sums added to `dweight`/`dbias` in slot order
/// (so the rounding depends on the pool size and workspace, not on scheduling).
/// `n = 0` leaves both untouched. Errors as [`conv2d_forward`].
pub fn conv2d_backward_weight(
    shape: &Conv2dShape,
    x: &[f32],
    dy: &[f32],
    dweight: &mut [f32],
    mut dbias: Option<&mut [f32]>,
    workspace: &mut [f32],
) -> Result<()> {
    shape.check()?;
    check_x(shape, "x", x.len())?;
    check_y(shape, "dy", dy.len())?;
    check_weight(shape, "dweight", dweight.len())?;
    if let Some(dbias) = dbias.as_deref() {
        check_bias(shape, "dbias", dbias.len())?;
    }
    check_workspace(shape, workspace.len())?;
    if shape.n == 0 {
        return Ok(());
    }
    if lanes::backward_applies(shape)
        && lanes::backward_weight(shape, x, dy, dweight, dbias.as_deref_mut(), workspace)?
    {
        return Ok(());
    }
    let slot_len = weight_slot_len(shape);
    let per = images_per_slot(shape, workspace.len(), slot_len);
    let (x_image, y_image) = image_lens(shape);
    let images = |first: usize, count: usize| {
        (&x[first * x_image..(first + count) * x_image], &dy[first * y_image..(first + count) * y_image])
    };
    if per >= shape.n {
        // One slot: accumulate straight into the caller's gradients.
        return backward_weight_run(shape, x, dy, dweight, dbias, workspace, true);
    }
    let (col_len, weight_len) = (col_scratch_len(shape), shape.weight_len());
    let with_bias = dbias.is_some();
    // Each slot zeroes its partial gradients, then accumulates its images into them.
    let task = |first: usize, count: usize, _: &mut [f32], slot: &mut [f32]| -> Result<()> {
        let (col, partial) = slot.split_at_mut(col_len);
        let (pw, pb) = partial.split_at_mut(weight_len);
        pw.fill(0.0);
        pb.fill(0.0);
        let (x_run, dy_run) = images(first, count);
        backward_weight_run(shape, x_run, dy_run, pw, with_bias.then_some(&mut *pb), col, false)
    };
    run_slots(0, shape.n, per, &mut [], 0, workspace, slot_len, &task)?;
    let partials = workspace.chunks_exact(slot_len).take(shape.n.div_ceil(per));
    add_slot_partials(partials.map(|slot| &slot[col_len..]), dweight, dbias);
    Ok(())
}

/// Backward-weight of a run of whole images `x`, `dy`, accumulating into `dweight` and
/// `dbias`: direct (see `direct.rs`) where it applies, else image by image through im2col.
fn backward_weight_run(
    shape: &Conv2dShape,
    x: &[f32],
    dy: &[f32],
    dweight: &mut [f32],
    mut dbias: Option<&mut [f32]>,
    col: &mut [f32],
    parallel: bool,
) -> Result<()> {
    let (x_image, y_image) = image_lens(shape);
    if direct::weight_gradient_applies(shape) {
        direct::backward_weight_run(shape, x, dy, dweight);
        if let Some(dbias) = dbias {
            for dyi in dy.chunks_exact(y_image) {
                add_bias_gradient(shape, dyi, dbias);
            }
        }
        return Ok(());
    }
    for (xi, dyi) in x.chunks_exact(x_image).zip(dy.chunks_exact(y_image)) {
        backward_weight_image(shape, xi, dyi, dweight, dbias.as_deref_mut(), col, parallel)?;
    }
    Ok(())
}

/// `dbias[c] += Σ_positions dy[c, ·]` for one image `dy (c_out, out_h·out_w)`.
pub(super) fn add_bias_gradient(shape: &Conv2dShape, dy: &[f32], dbias: &mut [f32]) {
    for (db, row) in dbias.iter_mut().zip(dy.chunks_exact(shape.col_cols())) {
        *db += lane_sum(row);
    }
}

/// Adds each slot's partial gradients (`dweight`'s length, then `dbias`'s, at the start of
/// each item) to `dweight` and `dbias`, in slot order: the rounding then depends on the slot
/// count, never on which thread finished first.
pub(super) fn add_slot_partials<'a>(
    partials: impl Iterator<Item = &'a [f32]>,
    dweight: &mut [f32],
    mut dbias: Option<&mut [f32]>,
) {
    for partial in partials {
        let (pw, pb) = partial.split_at(dweight.len());
        add_into(dweight, pw);
        if let Some(dbias) = dbias.as_deref_mut() {
            add_into(dbias, &pb[..dbias.len()]);
        }
    }
}

fn add_into(acc: &mut [f32], part: &[f32]) {
    for (a, &p) in acc.iter_mut().zip(part) {
        *a += p;
    }
}

/// Backward-weight of one image, accumulating into `dweight` and `dbias`.
fn backward_weight_image(
    shape: &Conv2dShape,
    x: &[f32],
    dy: &[f32],
    dweight: &mut [f32],
    dbias: Option<&mut [f32]>,
    col: &mut [f32],
    parallel: bool,
) -> Result<()> {
    let (cg, cog, k, p) = group_dims(shape);
    let x_group = cg * shape.h * shape.w;
    for g in 0..shape.groups {
        let xg = &x[g * x_group..(g + 1) * x_group];
        let cols: &[f32] = if shape.is_pointwise() {
            xg
        } else {
            im2col_unchecked(shape, xg, &mut col[..k * p], parallel);
            &col[..k * p]
        };
        let dyg = &dy[g * cog * p..(g + 1) * cog * p];
        let dwg = &mut dweight[g * cog * k..(g + 1) * cog * k];
        // dy_g (cog, P) times colᵀ (P, K), added to dW_g (cog, K).
        sgemm(Transpose::No, Transpose::Yes, cog, k, p, 1.0, dyg, p, cols, p, 1.0, dwg, k)?;
    }
    if let Some(dbias) = dbias {
        add_bias_gradient(shape, dy, dbias);
    }
    Ok(())
}

/// `Σ row` in 16 interleaved partial sums (so it vectorises), added up at the end: a fixed
/// order, so the same bits on every run.
fn lane_sum(row: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let mut chunks = row.chunks_exact(16);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}
