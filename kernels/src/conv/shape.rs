//! The geometry of a 2-D convolution and the checks every conv kernel runs first.

use crate::error::{check_len, shape_error, Result};

/// The shape of a 2-D convolution over an NCHW batch (PyTorch's `Conv2d` semantics).
///
/// - input `x`: `(n, c_in, h, w)`;
/// - weight: `(c_out, c_in/groups, kh, kw)`, bias: `(c_out)`;
/// - output `y`: `(n, c_out, out_h, out_w)` with
///   `out_h = floor((h + 2·pad_h - dilation_h·(kh-1) - 1) / stride_h) + 1` (same for `w`).
///
/// Output channel `o` of group `g = o / (c_out/groups)` sees input channels
/// `g·(c_in/groups) .. (g+1)·(c_in/groups)`. Build one with [`Conv2dShape::new`] and the
/// `with_*` setters (or fill the fields), then [`check`](Conv2dShape::check) it; every kernel
/// checks it again. `n = 0` is valid (every kernel is then a no-op); every other size must
/// be at least 1.
///
/// ```
/// use keel_kernels::conv::Conv2dShape;
///
/// // 16 filters of 3x3 over a batch of 8 RGB 32x32 images, stride 2, padding 1.
/// let shape = Conv2dShape::new(8, 3, 32, 32, 16, 3, 3).with_stride(2).with_pad(1);
/// assert!(shape.check().is_ok());
/// // out = floor((32 + 2·1 - 1·(3 - 1) - 1) / 2) + 1 = 16.
/// assert_eq!((shape.out_h(), shape.out_w()), (16, 16));
/// assert_eq!(shape.x_len(), 8 * 3 * 32 * 32); // x (n, c_in, h, w)
/// assert_eq!(shape.weight_len(), 16 * 3 * 3 * 3); // weight (c_out, c_in, kh, kw)
/// assert_eq!(shape.y_len(), 8 * 16 * 16 * 16); // y (n, c_out, out_h, out_w)
/// // Groups must divide both channel counts.
/// assert!(shape.with_groups(2).check().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dShape {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Zero rows added above and below the input.
    pub pad_h: usize,
    /// Zero columns added left and right of the input.
    pub pad_w: usize,
    /// Vertical distance between kernel taps (1 = dense kernel).
    pub dilation_h: usize,
    /// Horizontal distance between kernel taps.
    pub dilation_w: usize,
    /// Channel groups: divides both `c_in` and `c_out`.
    pub groups: usize,
}

impl Conv2dShape {
    /// A `kh x kw` convolution of `(n, c_in, h, w)` into `c_out` channels with stride 1,
    /// no padding, no dilation and one group.
    pub fn new(n: usize, c_in: usize, h: usize, w: usize, c_out: usize, kh: usize, kw: usize) -> Self {
        Self {
            n,
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            stride_h: 1,
            stride_w: 1,
            pad_h: 0,
            pad_w: 0,
            dilation_h: 1,
            dilation_w: 1,
            groups: 1,
        }
    }

    /// The same shape with stride `stride` along both axes.
    pub fn with_stride(self, stride: usize) -> Self {
        Self { stride_h: stride, stride_w: stride, ..self }
    }

    /// The same shape with padding `pad` on all four sides.
    pub fn with_pad(self, pad: usize) -> Self {
        Self { pad_h: pad, pad_w: pad, ..self }
    }

    /// The same shape with dilation `dilation` along both axes.
    pub fn with_dilation(self, dilation: usize) -> Self {
        Self { dilation_h: dilation, dilation_w: dilation, ..self }
    }

    /// The same shape with `groups` channel groups.
    pub fn with_groups(self, groups: usize) -> Self {
        Self { groups, ..self }
    }

    /// Checks that the shape describes a convolution: strides, dilations, kernel sizes,
    /// channels, `h`, `w` and `groups` at least 1; `groups` dividing `c_in` and `c_out`; the
    /// dilated window `dilation·(k-1) + 1` no larger than the padded input `size + 2·pad`
    /// along each axis; and every buffer length representable in `usize`.
    pub fn check(&self) -> Result<()> {
        let positive = [
            ("c_in", self.c_in),
            ("h", self.h),
            ("w", self.w),
            ("c_out", self.c_out),
            ("kh", self.kh),
            ("kw", self.kw),
            ("stride_h", self.stride_h),
            ("stride_w", self.stride_w),
            ("dilation_h", self.dilation_h),
            ("dilation_w", self.dilation_w),
            ("groups", self.groups),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(shape_error(name, format!("{name} >= 1"), value));
            }
        }
        if !self.c_in.is_multiple_of(self.groups) || !self.c_out.is_multiple_of(self.groups) {
            return Err(shape_error(
                "groups",
                format!("a divisor of c_in = {} and c_out = {}", self.c_in, self.c_out),
                self.groups,
            ));
        }
        let axes = [
            ("kh", "h", self.h, self.kh, self.pad_h, self.dilation_h),
            ("kw", "w", self.w, self.kw, self.pad_w, self.dilation_w),
        ];
        for (kname, sname, size, k, pad, dilation) in axes {
            let padded = pad.checked_mul(2).and_then(|p| p.checked_add(size));
            let window = (k - 1).checked_mul(dilation).and_then(|s| s.checked_add(1));
            let fits = matches!((padded, window), (Some(p), Some(win)) if win <= p);
            if !fits {
                let show = |v: Option<usize>| v.map_or_else(|| "overflow".to_string(), |v| v.to_string());
                return Err(shape_error(
                    kname,
                    format!("a dilated window dilation·({kname}-1)+1 <= {sname} + 2·pad = {}", show(padded)),
                    format!("{kname} = {k} (dilation {dilation}, window {})", show(window)),
                ));
            }
        }
        let lens = [
            self.checked_product(&[self.n, self.c_in, self.h, self.w]),
            self.checked_product(&[self.n, self.c_out, self.out_h(), self.out_w()]),
            self.checked_product(&[self.c_out, self.c_in / self.groups, self.kh, self.kw]),
            self.checked_product(&[self.c_in / self.groups, self.kh, self.kw, self.out_h(), self.out_w()]),
        ];
        if lens.iter().any(Option::is_none) {
            return Err(shape_error("shape", "buffer lengths that fit in usize", format!("{self:?}")));
        }
        Ok(())
    }

    fn checked_product(&self, dims: &[usize]) -> Option<usize> {
        dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }

    /// Output height `floor((h + 2·pad_h - dilation_h·(kh-1) - 1) / stride_h) + 1`, or 0 when
    /// the shape does not pass [`check`](Self::check) along this axis.
    pub fn out_h(&self) -> usize {
        out_size(self.h, self.kh, self.stride_h, self.pad_h, self.dilation_h)
    }

    /// Output width, as [`out_h`](Self::out_h).
    pub fn out_w(&self) -> usize {
        out_size(self.w, self.kw, self.stride_w, self.pad_w, self.dilation_w)
    }

    /// Length of `x` (and `dx`): `n·c_in·h·w`.
    pub fn x_len(&self) -> usize {
        saturating_product(&[self.n, self.c_in, self.h, self.w])
    }

    /// Length of `y` (and `dy`): `n·c_out·out_h·out_w`.
    pub fn y_len(&self) -> usize {
        saturating_product(&[self.n, self.c_out, self.out_h(), self.out_w()])
    }

    /// Length of the weight (and `dweight`): `c_out·(c_in/groups)·kh·kw`.
    pub fn weight_len(&self) -> usize {
        saturating_product(&[self.c_out, self.c_in / self.groups.max(1), self.kh, self.kw])
    }

    /// Rows of the column matrix of one group: `(c_in/groups)·kh·kw`, the inner dimension
    /// of the forward GEMM.
    pub fn col_rows(&self) -> usize {
        saturating_product(&[self.c_in / self.groups.max(1), self.kh, self.kw])
    }

    /// Columns of the column matrix: `out_h·out_w`, one per output position.
    pub fn col_cols(&self) -> usize {
        saturating_product(&[self.out_h(), self.out_w()])
    }

    /// Length of the column matrix of one group of one image: `col_rows·col_cols`.
    pub fn col_len(&self) -> usize {
        self.col_rows().saturating_mul(self.col_cols())
    }

    /// The padded input plane `(h + 2·pad_h, w + 2·pad_w)`, saturating (asked of any shape
    /// when sizing workspaces).
    pub(super) fn padded_dims(&self) -> (usize, usize) {
        let padded = |size: usize, pad: usize| size.saturating_add(pad.saturating_mul(2));
        (padded(self.h, self.pad_h), padded(self.w, self.pad_w))
    }

    /// Whether this is a 1x1 convolution with stride 1 and no padding, whose column matrix
    /// is the input itself: such convolutions skip im2col and go straight to GEMM.
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.stride_h == 1
            && self.stride_w == 1
            && self.pad_h == 0
            && self.pad_w == 0
    }

    /// Multiply-adds of one forward pass: `n·c_out·out_h·out_w·(c_in/groups)·kh·kw`
    /// (a FLOP count is twice this).
    pub fn muladds(&self) -> usize {
        saturating_product(&[self.n, self.c_out, self.col_cols(), self.col_rows()])
    }
}

fn out_size(size: usize, k: usize, stride: usize, pad: usize, dilation: usize) -> usize {
    let padded = pad.saturating_mul(2).saturating_add(size);
    let window = k.saturating_sub(1).saturating_mul(dilation).saturating_add(1);
    if k == 0 || stride == 0 || dilation == 0 || window > padded {
        0
    } else {
        (padded - window) / stride + 1
    }
}

pub(super) fn saturating_product(dims: &[usize]) -> usize {
    dims.iter().fold(1usize, |acc, &d| acc.saturating_mul(d))
}

/// Checks `x` or `dx`: `(n, c_in, h, w)`.
pub(super) fn check_x(shape: &Conv2dShape, name: &str, len: usize) -> Result<()> {
    let Conv2dShape { n, c_in, h, w, .. } = *shape;
    check_len(|| format!("{name} (n, c_in, h, w) = ({n}, {c_in}, {h}, {w})"), shape.x_len(), len)
}

/// Checks `y` or `dy`: `(n, c_out, out_h, out_w)`.
pub(super) fn check_y(shape: &Conv2dShape, name: &str, len: usize) -> Result<()> {
    let (n, c_out, out_h, out_w) = (shape.n, shape.c_out, shape.out_h(), shape.out_w());
    check_len(
        || format!("{name} (n, c_out, out_h, out_w) = ({n}, {c_out}, {out_h}, {out_w})"),
        shape.y_len(),
        len,
    )
}

/// Checks `weight` or `dweight`: `(c_out, c_in/groups, kh, kw)`.
pub(super) fn check_weight(shape: &Conv2dShape, name: &str, len: usize) -> Result<()> {
    let (c_out, cg, kh, kw) = (shape.c_out, shape.c_in / shape.groups, shape.kh, shape.kw);
    check_len(
        || format!("{name} (c_out, c_in/groups, kh, kw) = ({c_out}, {cg}, {kh}, {kw})"),
        shape.weight_len(),
        len,
    )
}

/// Checks `bias` or `dbias`: `(c_out)`.
pub(super) fn check_bias(shape: &Conv2dShape, name: &str, len: usize) -> Result<()> {
    check_len(|| format!("{name} (c_out) = ({})", shape.c_out), shape.c_out, len)
}
