//! Small output planes: the column matrices of several images side by side, so that one GEMM
//! has `N = images·P` columns instead of `P`.
//!
//! A plane of `P = out_h·out_w` outputs below [`GATHER_MAX_POSITIONS`] (ResNet's last stage:
//! 7x7 = 49) makes a per-image GEMM `(c_out, K) × (K, P)` whose few columns fill the
//! microkernel's tiles badly and repack `W` for little work. Here a run of `g` images (see
//! [`images_per_gemm`]) is unfolded into one `(K, g·P)` matrix, image `i` in columns
//! `i·P..(i + 1)·P`:
//! - forward: `Y_g = W × [col_0 | … | col_{g-1}] (+ bias)` into `(c_out, g·P)`, then each
//!   image's columns copied to its `y_i (c_out, P)`;
//! - backward-data: `[dcol_0 | … ] = Wᵀ × [dy_0 | … ]`, then `dx_i = col2im(dcol_i)`.
//!
//! The copies move `(K + c_out)·P` floats per image against `c_out·K·P` multiply-adds. One
//! group only (`groups = 1`), not pointwise (a pointwise convolution's columns are its input).
//! A slot holds the gathered columns `(K, g·P)`, one image's columns `(K, P)` and the
//! gathered outputs `(c_out, g·P)`.

use super::im2col::{col2im_unchecked, im2col_unchecked};
use super::shape::Conv2dShape;
use super::slots::wanted_slots;
use super::tuning::{GATHER_COLUMNS, GATHER_MAX_POSITIONS};
use crate::error::Result;
use crate::gemm::{sgemm_fused_on, Activation, Bias, Epilogue, GemmShape, Transpose};
use crate::isa::Isa;

/// Whether the forward and backward-data of `shape` gather images: one group, not pointwise,
/// at least two images, and planes of fewer than [`GATHER_MAX_POSITIONS`] outputs.
pub(super) fn applies(shape: &Conv2dShape) -> bool {
    shape.groups == 1 && !shape.is_pointwise() && shape.n >= 2 && shape.col_cols() < GATHER_MAX_POSITIONS
}

/// Images per GEMM: enough for [`GATHER_COLUMNS`] columns, at most one slot's share of the
/// batch (so every thread's slot gets images).
pub(super) fn images_per_gemm(shape: &Conv2dShape) -> usize {
    let wanted = GATHER_COLUMNS.div_ceil(shape.col_cols().max(1));
    wanted.min(shape.n.div_ceil(wanted_slots(shape))).max(1)
}

/// Floats of one slot: gathered columns, one image's columns, gathered outputs.
pub(super) fn slot_len(shape: &Conv2dShape) -> usize {
    let (k, p, g) = (shape.col_rows(), shape.col_cols(), images_per_gemm(shape));
    let gathered = g.saturating_mul(p);
    k.saturating_mul(gathered)
        .saturating_add(k.saturating_mul(p))
        .saturating_add(shape.c_out.saturating_mul(gathered))
}

/// The three parts of a slot for `images` gathered images: columns `(K, images·P)`, one
/// image's columns `(K, P)`, outputs `(c_out, images·P)`.
fn split_slot<'a>(shape: &Conv2dShape, images: usize, slot: &'a mut [f32]) -> [&'a mut [f32]; 3] {
    let (k, p) = (shape.col_rows(), shape.col_cols());
    let (cols, rest) = slot.split_at_mut(k * images * p);
    let (one, rest) = rest.split_at_mut(k * p);
    [cols, one, &mut rest[..shape.c_out * images * p]]
}

/// Forward of a run of whole images `x (images, c_in, h, w)` into `y (images, c_out, P)`,
/// [`images_per_gemm`] images per GEMM, with `slot` of [`slot_len`] floats; im2col may split
/// channels across threads when `parallel`.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward_run(
    isa: Isa,
    shape: &Conv2dShape,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
    y: &mut [f32],
    slot: &mut [f32],
    parallel: bool,
) -> Result<()> {
    let (k, p, per) = (shape.col_rows(), shape.col_cols(), images_per_gemm(shape));
    let (x_image, y_image) = (shape.c_in * shape.h * shape.w, shape.c_out * p);
    let epilogue = Epilogue { bias: bias.map_or(Bias::None, Bias::PerRow), activation };
    for (xs, ys) in x.chunks(per * x_image).zip(y.chunks_mut(per * y_image)) {
        let images = xs.len() / x_image;
        let [cols, one, out] = split_slot(shape, images, slot);
        let width = images * p;
        for (i, xi) in xs.chunks_exact(x_image).enumerate() {
            im2col_unchecked(isa, shape, xi, one, parallel);
            for (row, src) in cols.chunks_exact_mut(width).zip(one.chunks_exact(p)) {
                row[i * p..(i + 1) * p].copy_from_slice(src);
            }
        }
        sgemm_fused_on(isa, &GemmShape::new(shape.c_out, width, k), 1.0, weight, cols, 0.0, out, &epilogue)?;
        for (i, yi) in ys.chunks_exact_mut(y_image).enumerate() {
            for (dst, row) in yi.chunks_exact_mut(p).zip(out.chunks_exact(width)) {
                dst.copy_from_slice(&row[i * p..(i + 1) * p]);
            }
        }
    }
    Ok(())
}

/// Backward-data of a run of whole images: `dy (images, c_out, P)` into
/// `dx (images, c_in, h, w)` (overwritten), [`images_per_gemm`] images per GEMM, with `slot`
/// of [`slot_len`] floats; col2im may split channels across threads when `parallel`.
pub(super) fn backward_data_run(
    isa: Isa,
    shape: &Conv2dShape,
    dy: &[f32],
    weight: &[f32],
    dx: &mut [f32],
    slot: &mut [f32],
    parallel: bool,
) -> Result<()> {
    let (k, p, per) = (shape.col_rows(), shape.col_cols(), images_per_gemm(shape));
    let (x_image, y_image) = (shape.c_in * shape.h * shape.w, shape.c_out * p);
    for (dys, dxs) in dy.chunks(per * y_image).zip(dx.chunks_mut(per * x_image)) {
        let images = dys.len() / y_image;
        let [dcols, one, gathered] = split_slot(shape, images, slot);
        let width = images * p;
        for (i, dyi) in dys.chunks_exact(y_image).enumerate() {
            for (row, src) in gathered.chunks_exact_mut(width).zip(dyi.chunks_exact(p)) {
                row[i * p..(i + 1) * p].copy_from_slice(src);
            }
        }
        // W is stored (c_out, K); its transpose (K, c_out) times the gathered dy (c_out, g·P).
        let gemm = GemmShape::new(k, width, shape.c_out).transposed(Transpose::Yes, Transpose::No);
        sgemm_fused_on(isa, &gemm, 1.0, weight, gathered, 0.0, dcols, &Epilogue::NONE)?;
        for (i, dxi) in dxs.chunks_exact_mut(x_image).enumerate() {
            for (dst, row) in one.chunks_exact_mut(p).zip(dcols.chunks_exact(width)) {
                dst.copy_from_slice(&row[i * p..(i + 1) * p]);
            }
            col2im_unchecked(isa, shape, one, dxi, parallel);
        }
    }
    Ok(())
}
