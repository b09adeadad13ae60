//! Convolution forward, backward-data and backward-weight: the checked entry points, which
//! pick the images-in-lanes (`lanes/`), Winograd (`winograd/`), direct (`direct.rs`) or gathered (`gathered.rs`,
//! several images per GEMM on small planes) path where it applies and the workspace holds it,
//! and otherwise run im2col + GEMM as below.
//!
//! Per image and group `g` (`K = (c_in/groups)·kh·kw`, `P = out_h·out_w`, `W_g` the
//! `(c_out/groups, K)` rows of the weight, `col` the `(K, P)` im2col of the group's input):
//! - forward: `y_g = W_g × col (+ bias)`;
//! - backward-data: `dcol = W_gᵀ × dy_g`, then `dx_g = col2im(dcol)`;
//! - backward-weight: `dW_g += dy_g × colᵀ`, `dbias += Σ_p dy_g`.
//!
//! The forward and backward-weight unfold a column matrix of more than twice
//! `COLUMN_BAND_FLOATS` (1 MiB) in bands of output rows, each multiplied while it is in L2
//! (the sums of the weight gradient then run band by band).
//!
//! A pointwise convolution (1x1, stride 1, no padding) has `col = x_g` (`(c_in/groups, h·w)`
//! is already the column matrix), so it skips im2col/col2im and needs no column buffer.
//!
//! Threads: the batch is split into consecutive runs of images, one per workspace slot, run
//! in parallel (each slot owns a column buffer and, for backward-weight, a partial gradient).
//! Inside a slot the images run in order; a single slot instead lets im2col/col2im split
//! channels and leaves the GEMM its own threading. Slot count and split depend only on the
//! shape, the pool size and the workspace length, so results are deterministic for them.

use std::ops::Range;

use super::bias::add_bias_gradient;
use super::direct;
use super::gathered;
use super::im2col::{col2im_unchecked, im2col_band_unchecked};
use super::lanes;
use super::plan::{plan, ConvPass, ConvPath};
use super::shape::{check_bias, check_weight, check_x, check_y, Conv2dShape};
use super::slots::{add_slot_partials, images_per_slot, run_slots, wanted_slots};
use super::transposed::{direct_data_slot_len, flip_weight, transposed};
use super::tuning::COLUMN_BAND_FLOATS;
use super::winograd;
use crate::error::{check_min_len, Result};
use crate::gemm::{sgemm_fused_on, Activation, Bias, Epilogue, GemmShape, Transpose};
use crate::isa::{current_isa, Isa};

/// Scratch length for any of the three conv kernels on `shape`, sized for the current rayon
/// pool and instruction set (call it where you will run the kernels: inside the same pool,
/// under the same [`crate::isa::with_isa`]).
///
/// On one thread (or a batch too small to split) this is one column buffer of
/// `(c_in/groups)·kh·kw · out_h·out_w` floats (0 for a pointwise convolution). Otherwise it
/// is `min(n, threads)` slots, each a column buffer plus a partial weight and bias gradient
/// (`c_out·(c_in/groups)·kh·kw + c_out` floats), so that images run in parallel. Where the
/// direct or the images-in-lanes paths apply, it is at least what they need.
/// Kernels accept any workspace at least one column buffer long and use as many slots (and
/// the fastest path, see [`plan`](super::plan)) it holds. Returns a meaningless length for
/// a shape that fails [`Conv2dShape::check`] (the kernels reject it).
///
/// ```
/// use keel_kernels::conv::{conv2d_workspace_len, Conv2dShape};
///
/// let shape = Conv2dShape::new(1, 3, 8, 8, 4, 3, 3);
/// // At least one column buffer: (3·3·3, 6·6) floats.
/// assert!(conv2d_workspace_len(&shape) >= 27 * 36);
/// ```
pub fn conv2d_workspace_len(shape: &Conv2dShape) -> usize {
    let isa = current_isa();
    let slots = wanted_slots(shape);
    let direct_data =
        transposed(shape).filter(|t| direct::applies(t, isa)).map_or(0, |t| direct_data_slot_len(&t));
    let forward = if direct::applies(shape, isa) {
        direct::forward_slot_len(shape)
    } else if gathered::applies(shape) {
        gathered::slot_len(shape)
    } else {
        col_len(shape)
    };
    let per_image = if slots <= 1 {
        forward.max(direct_data)
    } else {
        slots.saturating_mul(weight_slot_len(shape).max(direct_data).max(forward))
    };
    per_image.max(lanes::workspace_len(shape, isa)).max(winograd::workspace_len(shape, isa))
}

/// The column buffer of one image (none for pointwise convolutions).
fn col_len(shape: &Conv2dShape) -> usize {
    if shape.is_pointwise() {
        0
    } else {
        shape.col_len()
    }
}

/// A backward-weight slot: column buffer, partial `dweight`, partial `dbias`.
fn weight_slot_len(shape: &Conv2dShape) -> usize {
    col_len(shape).saturating_add(shape.weight_len()).saturating_add(shape.c_out)
}

fn check_workspace(shape: &Conv2dShape, len: usize) -> Result<()> {
    let (rows, cols) = (shape.col_rows(), shape.col_cols());
    check_min_len(
        || {
            format!(
                "workspace (at least one column buffer (c_in/groups·kh·kw, out_h·out_w) = ({rows}, {cols}))"
            )
        },
        col_len(shape),
        len,
    )
}

/// Convolution forward: `y = conv(x, weight) + bias`.
///
/// Shapes (see [`Conv2dShape`]): `x (n, c_in, h, w)`, `weight (c_out, c_in/groups, kh, kw)`,
/// `bias (c_out)` or `None`, `y (n, c_out, out_h, out_w)` **overwritten** (never read).
/// `workspace`: scratch (contents ignored) of at least one column buffer, none for a pointwise
/// convolution; with room for more, runs of images go to parallel slots, one buffer each
/// (see [`conv2d_workspace_len`]); the path is [`plan`](super::plan)'s for
/// [`ConvPass::Forward`](super::ConvPass::Forward). `n = 0` is a no-op. Errors if the shape
/// fails its check or a slice length does not match.
///
/// ```
/// use keel_kernels::conv::{conv2d_forward, conv2d_workspace_len, Conv2dShape};
/// # fn main() -> keel_kernels::Result<()> {
///
/// // One 3x3 image, one channel, a 2x2 kernel of ones: each output sums a window.
/// let shape = Conv2dShape::new(1, 1, 3, 3, 1, 2, 2);
/// let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
/// let mut y = [0.0; 4];
/// let mut workspace = vec![0.0; conv2d_workspace_len(&shape)];
/// conv2d_forward(&shape, &x, &[1.0; 4], Some(&[0.5]), &mut y, &mut workspace)?;
/// assert_eq!(y, [12.5, 16.5, 24.5, 28.5]);
/// # Ok(())
/// # }
/// ```
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
/// [`conv2d_forward`] (`y (n, c_out, out_h, out_w)` **overwritten**); a leaky-ReLU slope
/// must be finite.
///
/// ```
/// use keel_kernels::conv::{conv2d_forward_fused, conv2d_workspace_len, Conv2dShape};
/// use keel_kernels::gemm::Activation;
/// # fn main() -> keel_kernels::Result<()> {
/// // x (1, 1, 3, 3), weight (1, 1, 2, 2) of ones, bias (1): y (1, 1, 2, 2) = relu(sums - 20).
/// let shape = Conv2dShape::new(1, 1, 3, 3, 1, 2, 2);
/// let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
/// let mut y = [0.0; 4];
/// let mut workspace = vec![0.0; conv2d_workspace_len(&shape)];
/// conv2d_forward_fused(&shape, &x, &[1.0; 4], Some(&[-20.0]), Activation::Relu, &mut y, &mut workspace)?;
/// // Window sums 12, 16, 24, 28, minus 20, then ReLU.
/// assert_eq!(y, [0.0, 0.0, 4.0, 8.0]);
/// # Ok(())
/// # }
/// ```
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
    if shape.n == 0 {
        return Ok(());
    }
    let isa = current_isa();
    let path = plan(shape, ConvPass::Forward, isa, workspace.len());
    if path == ConvPath::ImagesInLanes {
        return lanes::forward(isa, shape, x, weight, bias, activation, y, workspace);
    }
    if path == ConvPath::Winograd {
        return winograd::forward(isa, shape, x, weight, bias, activation, y, workspace);
    }
    let slot_len = match path {
        ConvPath::Direct => direct::forward_slot_len(shape),
        ConvPath::Gathered => gathered::slot_len(shape),
        _ => col_len(shape),
    };
    let per = images_per_slot(shape, workspace.len(), slot_len);
    let (x_image, y_image) = image_lens(shape);
    let image = PerImage { isa, path, parallel: per >= shape.n };
    let task = |first: usize, images: usize, y_run: &mut [f32], col: &mut [f32]| -> Result<()> {
        let x_run = &x[first * x_image..(first + images) * x_image];
        if path == ConvPath::Gathered {
            return gathered::forward_run(
                isa,
                shape,
                x_run,
                weight,
                bias,
                activation,
                y_run,
                col,
                image.parallel,
            );
        }
        for (xi, yi) in x_run.chunks_exact(x_image).zip(y_run.chunks_exact_mut(y_image)) {
            image.forward(shape, xi, weight, bias, activation, yi, col)?;
        }
        Ok(())
    };
    run_slots(0, shape.n, per, y, y_image, workspace, slot_len, &task)
}

/// How each image of a per-image pass runs: on `isa`, on `path` (direct, pointwise or
/// im2col + GEMM), and whether im2col/col2im may split channels across threads (when the
/// images are not already run in parallel).
#[derive(Clone, Copy)]
struct PerImage {
    isa: Isa,
    path: ConvPath,
    parallel: bool,
}

impl PerImage {
    /// Forward of one image `x (c_in, h, w)` into `y (c_out, P)`.
    #[allow(clippy::too_many_arguments)]
    fn forward(
        self,
        shape: &Conv2dShape,
        x: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
        activation: Activation,
        y: &mut [f32],
        col: &mut [f32],
    ) -> Result<()> {
        let (cg, cog, k, p) = group_dims(shape);
        let x_group = cg * shape.h * shape.w;
        for g in 0..shape.groups {
            let xg = &x[g * x_group..(g + 1) * x_group];
            let wg = &weight[g * cog * k..(g + 1) * cog * k];
            let yg = &mut y[g * cog * p..(g + 1) * cog * p];
            let bias_g = bias.map(|b| &b[g * cog..(g + 1) * cog]);
            if self.path == ConvPath::Direct {
                direct::forward_group(shape, self.isa, xg, wg, bias_g, activation, yg, col);
                continue;
            }
            // The bias (one per output channel, a row of y) and the activation go in the
            // GEMM's epilogue, while each tile is in registers.
            let epilogue = Epilogue { bias: bias_g.map_or(Bias::None, Bias::PerRow), activation };
            self.bands(shape, xg, col, |rows, cols| {
                let positions = rows.len() * shape.out_w();
                let gemm = GemmShape::new(cog, positions, k).with_ld(k, positions, p);
                let y_band = &mut yg[rows.start * shape.out_w()..];
                sgemm_fused_on(self.isa, &gemm, 1.0, wg, cols, 0.0, y_band, &epilogue)
            })?;
        }
        Ok(())
    }

    /// Runs `product(rows, cols)` for each band of output rows `rows` of one group's input
    /// `xg`, `cols` the band's column matrix `(K, rows.len()·out_w)`: one band of all rows,
    /// `xg` itself, for a pointwise convolution; else bands of about [`COLUMN_BAND_FLOATS`]
    /// unfolded by im2col into `col` just before their product, which finds them in L2 (the
    /// column matrix of a whole large image would not stay there).
    fn bands(
        self,
        shape: &Conv2dShape,
        xg: &[f32],
        col: &mut [f32],
        mut product: impl FnMut(Range<usize>, &[f32]) -> Result<()>,
    ) -> Result<()> {
        let out_h = shape.out_h();
        if shape.is_pointwise() {
            return product(0..out_h, xg);
        }
        // Bands of equal height, as few as keep each within the budget; a matrix up to twice
        // the budget stays whole (halving its product's width costs more than L2 misses).
        let col_len = shape.col_len();
        let bands = if col_len <= 2 * COLUMN_BAND_FLOATS { 1 } else { col_len.div_ceil(COLUMN_BAND_FLOATS) };
        let band = out_h.div_ceil(bands.min(out_h));
        for oy0 in (0..out_h).step_by(band) {
            let rows = oy0..out_h.min(oy0 + band);
            let cols = &mut col[..shape.col_rows() * rows.len() * shape.out_w()];
            im2col_band_unchecked(self.isa, shape, xg, rows.clone(), cols, self.parallel);
            product(rows, cols)?;
        }
        Ok(())
    }

    /// Backward-data of one image: `dy (c_out, P)` into `dx (c_in, h, w)`, by GEMM (and
    /// col2im unless pointwise).
    fn backward_data(
        self,
        shape: &Conv2dShape,
        dy: &[f32],
        weight: &[f32],
        dx: &mut [f32],
        col: &mut [f32],
    ) -> Result<()> {
        let (cg, cog, k, p) = group_dims(shape);
        let x_group = cg * shape.h * shape.w;
        // W_g is stored (cog, K); its transpose (K, cog) times dy_g (cog, P) is the column
        // gradient (K, P). Pointwise: that is dx_g itself.
        let gemm = GemmShape::new(k, p, cog).transposed(Transpose::Yes, Transpose::No);
        for g in 0..shape.groups {
            let wg = &weight[g * cog * k..(g + 1) * cog * k];
            let dyg = &dy[g * cog * p..(g + 1) * cog * p];
            let dxg = &mut dx[g * x_group..(g + 1) * x_group];
            if shape.is_pointwise() {
                sgemm_fused_on(self.isa, &gemm, 1.0, wg, dyg, 0.0, dxg, &Epilogue::NONE)?;
            } else {
                let col = &mut col[..k * p];
                sgemm_fused_on(self.isa, &gemm, 1.0, wg, dyg, 0.0, col, &Epilogue::NONE)?;
                col2im_unchecked(self.isa, shape, col, dxg, self.parallel);
            }
        }
        Ok(())
    }

    /// Backward-weight of a run of whole images `x`, `dy`, accumulating into `dweight` and
    /// `dbias`: direct (see `direct.rs`) or image by image through im2col + GEMM.
    fn backward_weight(
        self,
        shape: &Conv2dShape,
        x: &[f32],
        dy: &[f32],
        dweight: &mut [f32],
        dbias: Option<&mut [f32]>,
        col: &mut [f32],
    ) -> Result<()> {
        let (x_image, y_image) = image_lens(shape);
        if self.path == ConvPath::Direct {
            direct::backward_weight_run(shape, x, dy, dweight);
        } else {
            let (cg, cog, k, p) = group_dims(shape);
            let x_group = cg * shape.h * shape.w;
            // dy_g (cog, P) times colᵀ (P, K), added to dW_g (cog, K), band by band.
            for (xi, dyi) in x.chunks_exact(x_image).zip(dy.chunks_exact(y_image)) {
                for g in 0..shape.groups {
                    let dyg = &dyi[g * cog * p..(g + 1) * cog * p];
                    let dwg = &mut dweight[g * cog * k..(g + 1) * cog * k];
                    self.bands(shape, &xi[g * x_group..(g + 1) * x_group], col, |rows, cols| {
                        let positions = rows.len() * shape.out_w();
                        let gemm = GemmShape::new(cog, k, positions)
                            .transposed(Transpose::No, Transpose::Yes)
                            .with_ld(p, positions, k);
                        let dy_band = &dyg[rows.start * shape.out_w()..];
                        sgemm_fused_on(self.isa, &gemm, 1.0, dy_band, cols, 1.0, dwg, &Epilogue::NONE)
                    })?;
                }
            }
        }
        if let Some(dbias) = dbias {
            for dyi in dy.chunks_exact(y_image) {
                add_bias_gradient(shape, dyi, dbias);
            }
        }
        Ok(())
    }
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
///
/// ```
/// use keel_kernels::conv::{conv2d_backward_data, conv2d_workspace_len, Conv2dShape};
/// # fn main() -> keel_kernels::Result<()> {
/// // x (1, 1, 3, 3), weight (1, 1, 2, 2) of ones, dy (1, 1, 2, 2) of ones: each input
/// // position gets 1 from every window that covers it.
/// let shape = Conv2dShape::new(1, 1, 3, 3, 1, 2, 2);
/// let mut dx = [f32::NAN; 9]; // overwritten, never read
/// let mut workspace = vec![0.0; conv2d_workspace_len(&shape)];
/// conv2d_backward_data(&shape, &[1.0; 4], &[1.0; 4], &mut dx, &mut workspace)?;
/// assert_eq!(dx, [1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]);
/// # Ok(())
/// # }
/// ```
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
    if shape.n == 0 {
        return Ok(());
    }
    let isa = current_isa();
    let path = plan(shape, ConvPass::BackwardData, isa, workspace.len());
    if path == ConvPath::ImagesInLanes {
        return lanes::backward_data(isa, shape, dy, weight, dx, workspace);
    }
    if path == ConvPath::Winograd {
        return winograd::backward_data(isa, shape, dy, weight, dx, workspace);
    }
    // On the direct path the backward is the direct forward of the transposed shape with the
    // flipped weight (no column matrix to write and read back, as GEMM + col2im has).
    let direct = transposed(shape).filter(|_| path == ConvPath::Direct);
    let slot_len = match &direct {
        Some(t) => direct_data_slot_len(t),
        None if path == ConvPath::Gathered => gathered::slot_len(shape),
        None => col_len(shape),
    };
    let per = images_per_slot(shape, workspace.len(), slot_len);
    let (x_image, y_image) = image_lens(shape);
    let image = PerImage { isa, path, parallel: per >= shape.n };
    let task = |first: usize, images: usize, dx_run: &mut [f32], col: &mut [f32]| -> Result<()> {
        let dy_run = &dy[first * y_image..(first + images) * y_image];
        if path == ConvPath::Gathered {
            return gathered::backward_data_run(isa, shape, dy_run, weight, dx_run, col, image.parallel);
        }
        let images = dy_run.chunks_exact(y_image).zip(dx_run.chunks_exact_mut(x_image));
        if let Some(t) = &direct {
            let (flipped, scratch) = col.split_at_mut(shape.weight_len());
            flip_weight(shape, weight, flipped);
            for (dyi, dxi) in images {
                image.forward(t, dyi, flipped, None, Activation::Identity, dxi, scratch)?;
            }
            return Ok(());
        }
        for (dyi, dxi) in images {
            image.backward_data(shape, dyi, weight, dxi, col)?;
        }
        Ok(())
    };
    run_slots(0, shape.n, per, dx, x_image, workspace, slot_len, &task)
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
///
/// ```
/// use keel_kernels::conv::{conv2d_backward_weight, conv2d_workspace_len, Conv2dShape};
/// # fn main() -> keel_kernels::Result<()> {
/// // x (1, 1, 3, 3), dy (1, 1, 2, 2) of ones: dweight (1, 1, 2, 2) gets, per tap, the sum of
/// // the inputs that tap sees; dbias (1) the sum of dy. Both are accumulated.
/// let shape = Conv2dShape::new(1, 1, 3, 3, 1, 2, 2);
/// let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
/// let (mut dweight, mut dbias) = ([1.0; 4], [0.5]);
/// let mut workspace = vec![0.0; conv2d_workspace_len(&shape)];
/// conv2d_backward_weight(&shape, &x, &[1.0; 4], &mut dweight, Some(&mut dbias), &mut workspace)?;
/// assert_eq!(dweight, [1.0 + 12.0, 1.0 + 16.0, 1.0 + 24.0, 1.0 + 28.0]);
/// assert_eq!(dbias, [0.5 + 4.0]);
/// # Ok(())
/// # }
/// ```
pub fn conv2d_backward_weight(
    shape: &Conv2dShape,
    x: &[f32],
    dy: &[f32],
    dweight: &mut [f32],
    dbias: Option<&mut [f32]>,
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
    let isa = current_isa();
    let path = plan(shape, ConvPass::BackwardWeight, isa, workspace.len());
    if path == ConvPath::ImagesInLanes {
        return lanes::backward_weight(isa, shape, x, dy, dweight, dbias, workspace);
    }
    if path == ConvPath::Winograd {
        return winograd::backward_weight(isa, shape, x, dy, dweight, dbias, workspace);
    }
    let slot_len = weight_slot_len(shape);
    let per = images_per_slot(shape, workspace.len(), slot_len);
    if per >= shape.n {
        // One slot: accumulate straight into the caller's gradients.
        let image = PerImage { isa, path, parallel: true };
        return image.backward_weight(shape, x, dy, dweight, dbias, workspace);
    }
    let (x_image, y_image) = image_lens(shape);
    let (col_len, weight_len) = (col_len(shape), shape.weight_len());
    let with_bias = dbias.is_some();
    let image = PerImage { isa, path, parallel: false };
    // Each slot zeroes its partial gradients, then accumulates its images into them.
    let task = |first: usize, count: usize, _: &mut [f32], slot: &mut [f32]| -> Result<()> {
        let (col, partial) = slot.split_at_mut(col_len);
        let (pw, pb) = partial.split_at_mut(weight_len);
        pw.fill(0.0);
        pb.fill(0.0);
        let x_run = &x[first * x_image..(first + count) * x_image];
        let dy_run = &dy[first * y_image..(first + count) * y_image];
        image.backward_weight(shape, x_run, dy_run, pw, with_bias.then_some(&mut *pb), col)
    };
    run_slots(0, shape.n, per, &mut [], 0, workspace, slot_len, &task)?;
    let partials = workspace.chunks_exact(slot_len).take(shape.n.div_ceil(per));
    add_slot_partials(partials.map(|slot| &slot[col_len..]), dweight, dbias);
    Ok(())
}
