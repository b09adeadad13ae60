//! Pooling layers over NCHW batches: [`MaxPool2d`], [`AvgPool2d`], [`GlobalAvgPool2d`]
//! (PyTorch's `nn.MaxPool2d`, `nn.AvgPool2d`, `nn.AdaptiveAvgPool2d(1)` + flatten).
//!
//! Shapes: x `(n, c, h, w)`, y `(n, c, out_h, out_w)` with
//! `out = floor((size + 2·pad - kernel) / stride) + 1` per axis (with `ceil_mode` the ceiling,
//! minus one when the last window would start in the right padding: PyTorch's rule); the
//! global pool gives `(n, c)`. No parameters; every number comes from `keel_kernels::pool`.

use keel_kernels::pool::{
    avgpool2d_backward, avgpool2d_forward, global_avgpool_backward, global_avgpool_forward,
    maxpool2d_backward, maxpool2d_forward, Pool2dShape,
};

use super::layer::{ensure_forward_ran, Layer, Mode};
use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// The window of a [`MaxPool2d`] or [`AvgPool2d`]: `[height, width]` pairs. The stride
/// defaults to the kernel size and the padding to 0, as in PyTorch; the padding may be at
/// most half the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolWindow {
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[stride_h, stride_w]`.
    pub stride: [usize; 2],
    /// Implicit padding `[pad_h, pad_w]` on each side (`<= kernel / 2`).
    pub padding: [usize; 2],
    /// Round the output size up instead of down.
    pub ceil_mode: bool,
}

impl PoolWindow {
    /// A `kernel x kernel` window with stride `kernel`, no padding, `ceil_mode` off.
    pub fn new(kernel: usize) -> Self {
        PoolWindow { kernel: [kernel; 2], stride: [kernel; 2], padding: [0; 2], ceil_mode: false }
    }

    /// The kernel shape of `input` for a layer called `layer`, if `input` is
    /// `(n >= 1, c >= 1, h, w)` with an image the window fits once padded.
    /// `layer` builds the name only on error, so a checked pass allocates nothing.
    fn shape_of(&self, layer: impl Fn() -> String, input: &Tensor) -> Result<Pool2dShape> {
        let error = |detail: String| LayerError::Shape {
            layer: layer(),
            expected: format!("(batch >= 1, channels >= 1, h, w){detail}"),
            actual: input.shape().to_vec(),
        };
        match *input.shape() {
            [n, c, h, w] if n >= 1 && c >= 1 => {
                let shape = Pool2dShape {
                    n,
                    c,
                    h,
                    w,
                    kh: self.kernel[0],
                    kw: self.kernel[1],
                    stride_h: self.stride[0],
                    stride_w: self.stride[1],
                    pad_h: self.padding[0],
                    pad_w: self.padding[1],
                    ceil_mode: self.ceil_mode,
                };
                shape.check().map_err(|e| {
                    let (k, p) = (self.kernel, self.padding);
                    error(format!(" with h + 2·{} >= {} and w + 2·{} >= {} ({e})", p[0], k[0], p[1], k[1]))
                })?;
                Ok(shape)
            }
            _ => Err(error(String::new())),
        }
    }

    /// `kh x kw, stride sh x sw, pad ph x pw` (and `, ceil` in ceil mode), for layer names.
    fn describe(&self) -> String {
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let ceil = if self.ceil_mode { ", ceil" } else { "" };
        format!("{}x{}, stride {}x{}, pad {}x{}{ceil}", k[0], k[1], s[0], s[1], p[0], p[1])
    }
}

/// The `(n, c, out_h, out_w)` output shape of `shape`.
fn out_dims(shape: &Pool2dShape) -> [usize; 4] {
    [shape.n, shape.c, shape.out_h(), shape.out_w()]
}

/// Checks that `grad_output` has the output shape `expected` of the layer `layer` names
/// (built only on error).
fn check_grad(layer: impl Fn() -> String, expected: &[usize], grad_output: &Tensor) -> Result<()> {
    if grad_output.shape() == expected {
        Ok(())
    } else {
        Err(LayerError::Shape {
            layer: format!("{} (gradient)", layer()),
            expected: format!("{expected:?}"),
            actual: grad_output.shape().to_vec(),
        })
    }
}

/// Max pooling (see the module docs). Forward records each window's argmax (its flat index
/// in the input plane, first of equal maxima); backward routes each output gradient to it.
///
/// # Shapes
/// - input `(n, c, h, w)`;
/// - output `(n, c, out_h, out_w)`, `out_h = ⌊(h + 2·pad_h - kh)/stride_h⌋ + 1` (the ceiling
///   with `ceil_mode`), `out_w` likewise.
///
/// ```
/// use keel_layers::{Layer, MaxPool2d, Mode, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut pool = MaxPool2d::new(2);
/// let x = Tensor::from_vec(&[1, 1, 4, 4], (0..16).map(|v| v as f32).collect())?;
/// pool.forward(&x, Mode::Train)?;
/// assert_eq!(pool.output().data(), &[5.0, 7.0, 13.0, 15.0]);
/// // Backward routes each gradient to its window's maximum.
/// pool.backward(&x, &Tensor::from_vec(&[1, 1, 2, 2], vec![1.0; 4])?)?;
/// assert_eq!(pool.grad_input().data()[5], 1.0);
/// assert_eq!(pool.grad_input().data().iter().sum::<f32>(), 4.0);
/// // 3x3 windows at stride 2 with padding 1 (ResNet's stem) halve the size.
/// let mut stem_pool = MaxPool2d::new(3).with_stride(2).with_padding(1);
/// stem_pool.forward(&Tensor::zeros(&[1, 2, 8, 8]), Mode::Eval)?;
/// assert_eq!(stem_pool.output().shape(), &[1, 2, 4, 4]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct MaxPool2d {
    window: PoolWindow,
    /// `(n, c, out_h, out_w)` argmax indices of the last forward.
    argmax: Vec<u32>,
    /// The input shape of the last forward, which `argmax` belongs to.
    last_shape: Option<Pool2dShape>,
    output: Tensor,
    grad_input: Tensor,
}

impl MaxPool2d {
    /// A `kernel x kernel` max pool with stride `kernel`, no padding.
    pub fn new(kernel: usize) -> Self {
        MaxPool2d::with_window(PoolWindow::new(kernel))
    }

    /// A max pool over `window`.
    pub fn with_window(window: PoolWindow) -> Self {
        MaxPool2d {
            window,
            argmax: Vec::new(),
            last_shape: None,
            output: Tensor::default(),
            grad_input: Tensor::default(),
        }
    }

    /// The same layer with stride `stride` along both axes.
    pub fn with_stride(self, stride: usize) -> Self {
        MaxPool2d::with_window(PoolWindow { stride: [stride; 2], ..self.window })
    }

    /// The same layer with padding `padding` on all four sides.
    pub fn with_padding(self, padding: usize) -> Self {
        MaxPool2d::with_window(PoolWindow { padding: [padding; 2], ..self.window })
    }

    /// The same layer with `ceil_mode` set.
    pub fn with_ceil_mode(self, ceil_mode: bool) -> Self {
        MaxPool2d::with_window(PoolWindow { ceil_mode, ..self.window })
    }

    /// The pooling window.
    pub fn window(&self) -> &PoolWindow {
        &self.window
    }
}

impl Layer for MaxPool2d {
    fn name(&self) -> String {
        format!("maxpool2d({})", self.window.describe())
    }

    fn forward(&mut self, input: &Tensor, _mode: Mode) -> Result<()> {
        let shape = self.window.shape_of(|| self.name(), input)?;
        self.output.resize(&out_dims(&shape));
        self.argmax.resize(self.output.len(), 0);
        maxpool2d_forward(&shape, input.data(), self.output.data_mut(), &mut self.argmax)?;
        self.last_shape = Some(shape);
        Ok(())
    }

    fn backward(&mut self, input: &Tensor, grad_output: &Tensor) -> Result<()> {
        ensure_forward_ran(&self.output, || self.name())?;
        let shape = self.window.shape_of(|| self.name(), input)?;
        if self.last_shape != Some(shape) {
            return Err(LayerError::State(format!(
                "{}: backward needs a forward on an input of shape {:?} first",
                self.name(),
                input.shape()
            )));
        }
        check_grad(|| self.name(), &out_dims(&shape), grad_output)?;
        self.grad_input.resize(input.shape());
        maxpool2d_backward(&shape, grad_output.data(), &self.argmax, self.grad_input.data_mut())?;
        Ok(())
    }

    fn output(&self) -> &Tensor {
        &self.output
    }

    fn grad_input(&self) -> &Tensor {
        &self.grad_input
    }
}

/// Average pooling (see the module docs). With `count_include_pad` (the default, as in
/// PyTorch) a window's divisor counts its padded positions (up to the padded input's edge);
/// without it, only the input elements it covers.
///
/// # Shapes
/// As [`MaxPool2d`]: `(n, c, h, w)` → `(n, c, out_h, out_w)`.
///
/// ```
/// use keel_layers::{AvgPool2d, Layer, Mode, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut pool = AvgPool2d::new(2);
/// let x = Tensor::from_vec(&[1, 1, 4, 4], (0..16).map(|v| v as f32).collect())?;
/// pool.forward(&x, Mode::Eval)?;
/// assert_eq!(pool.output().data(), &[2.5, 4.5, 10.5, 12.5]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AvgPool2d {
    window: PoolWindow,
    count_include_pad: bool,
    output: Tensor,
    grad_input: Tensor,
}

impl AvgPool2d {
    /// A `kernel x kernel` average pool with stride `kernel`, no padding, counting padding.
    pub fn new(kernel: usize) -> Self {
        AvgPool2d::with_window(PoolWindow::new(kernel))
    }

    /// An average pool over `window`, counting padding.
    pub fn with_window(window: PoolWindow) -> Self {
        AvgPool2d {
            window,
            count_include_pad: true,
            output: Tensor::default(),
            grad_input: Tensor::default(),
        }
    }

    /// The same layer with stride `stride` along both axes.
    pub fn with_stride(self, stride: usize) -> Self {
        AvgPool2d { window: PoolWindow { stride: [stride; 2], ..self.window }, ..self }
    }

    /// The same layer with padding `padding` on all four sides.
    pub fn with_padding(self, padding: usize) -> Self {
        AvgPool2d { window: PoolWindow { padding: [padding; 2], ..self.window }, ..self }
    }

    /// The same layer with `ceil_mode` set.
    pub fn with_ceil_mode(self, ceil_mode: bool) -> Self {
        AvgPool2d { window: PoolWindow { ceil_mode, ..self.window }, ..self }
    }

    /// The same layer with `count_include_pad` set.
    pub fn with_count_include_pad(self, count_include_pad: bool) -> Self {
        AvgPool2d { count_include_pad, ..self }
    }

    /// The pooling window.
    pub fn window(&self) -> &PoolWindow {
        &self.window
    }
}

impl Layer for AvgPool2d {
    fn name(&self) -> String {
        let exclude = if self.count_include_pad { "" } else { ", exclude pad" };
        format!("avgpool2d({}{exclude})", self.window.describe())
    }

    fn forward(&mut self, input: &Tensor, _mode: Mode) -> Result<()> {
        let shape = self.window.shape_of(|| self.name(), input)?;
        self.output.resize(&out_dims(&shape));
        avgpool2d_forward(&shape, self.count_include_pad, input.data(), self.output.data_mut())?;
        Ok(())
    }

    fn backward(&mut self, input: &Tensor, grad_output: &Tensor) -> Result<()> {
        ensure_forward_ran(&self.output, || self.name())?;
        let shape = self.window.shape_of(|| self.name(), input)?;
        check_grad(|| self.name(), &out_dims(&shape), grad_output)?;
        self.grad_input.resize(input.shape());
        avgpool2d_backward(&shape, self.count_include_pad, grad_output.data(), self.grad_input.data_mut())?;
        Ok(())
    }

    fn output(&self) -> &Tensor {
        &self.output
    }

    fn grad_input(&self) -> &Tensor {
        &self.grad_input
    }
}

/// Global average pooling: `(n, c, h, w) → (n, c)`, the mean of each plane (PyTorch's
/// `AdaptiveAvgPool2d(1)` followed by `Flatten`).
///
/// # Shapes
/// - input `(n, c, h, w)`;
/// - output `(n, c)`.
///
/// ```
/// use keel_layers::{GlobalAvgPool2d, Layer, Mode, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut pool = GlobalAvgPool2d::new();
/// // Two 2x2 channels: 0, 1, 2, 3 and 4, 5, 6, 7.
/// let x = Tensor::from_vec(&[1, 2, 2, 2], (0..8).map(|v| v as f32).collect())?;
/// pool.forward(&x, Mode::Eval)?;
/// assert_eq!(pool.output().shape(), &[1, 2]);
/// assert_eq!(pool.output().data(), &[1.5, 5.5]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct GlobalAvgPool2d {
    output: Tensor,
    grad_input: Tensor,
}

impl GlobalAvgPool2d {
    /// The layer.
    pub fn new() -> Self {
        GlobalAvgPool2d::default()
    }

    /// `(n, c, h, w)` of `input`, if it is 4-D with no zero dimension.
    fn dims_of(&self, input: &Tensor) -> Result<[usize; 4]> {
        match *input.shape() {
            [n, c, h, w] if n >= 1 && c >= 1 && h >= 1 && w >= 1 => Ok([n, c, h, w]),
            _ => Err(LayerError::Shape {
                layer: self.name(),
                expected: "(batch >= 1, channels >= 1, h >= 1, w >= 1)".into(),
                actual: input.shape().to_vec(),
            }),
        }
    }
}

impl Layer for GlobalAvgPool2d {
    fn name(&self) -> String {
        "global_avgpool2d".into()
    }

    fn forward(&mut self, input: &Tensor, _mode: Mode) -> Result<()> {
        let [n, c, h, w] = self.dims_of(input)?;
        self.output.resize(&[n, c]);
        global_avgpool_forward(n, c, h, w, input.data(), self.output.data_mut())?;
        Ok(())
    }

    fn backward(&mut self, input: &Tensor, grad_output: &Tensor) -> Result<()> {
        ensure_forward_ran(&self.output, || self.name())?;
        let [n, c, h, w] = self.dims_of(input)?;
        check_grad(|| self.name(), &[n, c], grad_output)?;
        self.grad_input.resize(input.shape());
        global_avgpool_backward(n, c, h, w, grad_output.data(), self.grad_input.data_mut())?;
        Ok(())
    }

    fn output(&self) -> &Tensor {
        &self.output
    }

    fn grad_input(&self) -> &Tensor {
        &self.grad_input
    }
}
