//! `Conv2d`: 2-D convolution over NCHW batches (PyTorch's `nn.Conv2d`).
//!
//! Shapes: x `(n, c_in, h, w)`, weight `(c_out, c_in/groups, kh, kw)` named `"weight"`,
//! optional bias `(c_out)` named `"bias"`, y `(n, c_out, out_h, out_w)` with
//! `out_h = floor((h + 2·pad_h - dilation_h·(kh-1) - 1)/stride_h) + 1` (same for `w`).
//! With a fused activation (`Conv2dConfig::with_activation`) the output is `f(conv + bias)`
//! (ReLU and leaky ReLU applied by the kernel before it stores each tile, sigmoid and tanh in
//! place after), and backward multiplies by `f'` (from the output) first.
//! Every number comes from `keel_kernels::conv` (whichever path its plan picks: images in
//! lanes, Winograd, direct loops or im2col + GEMM); the layer owns the
//! kernels' scratch and resizes it in place, so a step on a fixed batch shape allocates
//! nothing.

use keel_kernels::conv::{
    conv2d_backward_data, conv2d_backward_weight, conv2d_forward_fused, conv2d_workspace_len, Conv2dShape,
};
use rand::rngs::StdRng;

use super::activation::{grad_before_activation, ActivationKind};
use super::init::Init;
use super::layer::{ensure_forward_ran, Layer, Mode, Param};
use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// The hyper-parameters of a [`Conv2d`]: `[height, width]` pairs for the kernel, stride,
/// padding and dilation (PyTorch's defaults: stride 1, padding 0, dilation 1, one group,
/// with a bias). Build one with [`Conv2dConfig::new`] and the `with_*` setters, or set the
/// fields directly for different values per axis.
///
/// ```
/// use keel_layers::{Conv2d, Conv2dConfig, Init, Layer, Mode, SeedableRng, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut rng = StdRng::seed_from_u64(0);
/// // 3 -> 8 channels, 3x3, stride 2, padding 1: a 32x32 image becomes 16x16.
/// let config = Conv2dConfig::new(3, 8, 3).with_stride(2).with_padding(1);
/// let mut conv = Conv2d::new(config, Init::He, &mut rng)?;
/// conv.forward(&Tensor::zeros(&[2, 3, 32, 32]), Mode::Eval)?;
/// assert_eq!(conv.output().shape(), &[2, 8, 16, 16]);
/// // A 1x3 kernel padded along the width only: the fields are per axis.
/// let row = Conv2dConfig { kernel: [1, 3], padding: [0, 1], ..Conv2dConfig::new(3, 4, 1) };
/// let mut conv = Conv2d::new(row, Init::He, &mut rng)?;
/// conv.forward(&Tensor::zeros(&[1, 3, 5, 7]), Mode::Eval)?;
/// assert_eq!(conv.output().shape(), &[1, 4, 5, 7]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conv2dConfig {
    /// Input channels `c_in`.
    pub in_channels: usize,
    /// Output channels `c_out`.
    pub out_channels: usize,
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[stride_h, stride_w]`.
    pub stride: [usize; 2],
    /// Zero padding `[pad_h, pad_w]` on each side.
    pub padding: [usize; 2],
    /// Distance between kernel taps `[dilation_h, dilation_w]`.
    pub dilation: [usize; 2],
    /// Channel groups; divides both channel counts.
    pub groups: usize,
    /// Whether the layer adds a learned bias per output channel.
    pub bias: bool,
    /// An activation fused into the output, if any.
    pub activation: Option<ActivationKind>,
}

impl Conv2dConfig {
    /// A `kernel x kernel` convolution from `in_channels` to `out_channels`, stride 1, no
    /// padding, no dilation, one group, with a bias.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        Conv2dConfig {
            in_channels,
            out_channels,
            kernel: [kernel; 2],
            stride: [1; 2],
            padding: [0; 2],
            dilation: [1; 2],
            groups: 1,
            bias: true,
            activation: None,
        }
    }

    /// The same configuration with stride `stride` along both axes.
    pub fn with_stride(self, stride: usize) -> Self {
        Conv2dConfig { stride: [stride; 2], ..self }
    }

    /// The same configuration with padding `padding` on all four sides.
    pub fn with_padding(self, padding: usize) -> Self {
        Conv2dConfig { padding: [padding; 2], ..self }
    }

    /// The same configuration with dilation `dilation` along both axes.
    pub fn with_dilation(self, dilation: usize) -> Self {
        Conv2dConfig { dilation: [dilation; 2], ..self }
    }

    /// The same configuration with `groups` channel groups.
    pub fn with_groups(self, groups: usize) -> Self {
        Conv2dConfig { groups, ..self }
    }

    /// The same configuration with `activation` fused into the output.
    pub fn with_activation(self, activation: ActivationKind) -> Self {
        Conv2dConfig { activation: Some(activation), ..self }
    }

    /// The same configuration with (`true`) or without a bias.
    pub fn with_bias(self, bias: bool) -> Self {
        Conv2dConfig { bias, ..self }
    }

    /// The kernel shape for a batch `(n, c_in, h, w)` (channels from the configuration).
    fn shape(&self, n: usize, h: usize, w: usize) -> Conv2dShape {
        Conv2dShape {
            n,
            c_in: self.in_channels,
            h,
            w,
            c_out: self.out_channels,
            kh: self.kernel[0],
            kw: self.kernel[1],
            stride_h: self.stride[0],
            stride_w: self.stride[1],
            pad_h: self.padding[0],
            pad_w: self.padding[1],
            dilation_h: self.dilation[0],
            dilation_w: self.dilation[1],
            groups: self.groups,
        }
    }

    /// The extent `dilation·(k-1) + 1` of the dilated kernel along axis `axis`.
    fn window(&self, axis: usize) -> usize {
        self.kernel[axis].saturating_sub(1).saturating_mul(self.dilation[axis]).saturating_add(1)
    }
}

/// A 2-D convolution layer (see the module docs).
///
/// # Shapes
/// - input `(n, c_in, h, w)`, `n >= 1`;
/// - output `(n, c_out, out_h, out_w)` with
///   `out_h = ⌊(h + 2·pad_h - dilation_h·(kh - 1) - 1)/stride_h⌋ + 1` (`out_w` likewise);
/// - parameters `"weight"` `(c_out, c_in/groups, kh, kw)`, `"bias"` `(c_out)` (unless
///   [`Conv2dConfig::with_bias`]`(false)`).
///
/// ```
/// use keel_layers::{Conv2d, Conv2dConfig, Init, Layer, Mode, SeedableRng, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut rng = StdRng::seed_from_u64(0);
/// let mut conv = Conv2d::new(Conv2dConfig::new(1, 1, 2).with_bias(false), Init::He, &mut rng)?;
/// conv.weight.value.data_mut().fill(1.0); // each output sums a 2x2 window
/// let x = Tensor::from_vec(&[1, 1, 3, 3], (0..9).map(|v| v as f32).collect())?;
/// conv.forward(&x, Mode::Eval)?;
/// assert_eq!(conv.output().shape(), &[1, 1, 2, 2]);
/// assert_eq!(conv.output().data(), &[8.0, 12.0, 20.0, 24.0]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Conv2d {
    config: Conv2dConfig,
    /// `(c_out, c_in/groups, kh, kw)`.
    pub weight: Param,
    /// `(c_out)`, when the configuration has a bias.
    pub bias: Option<Param>,
    /// Scratch of the conv kernels, [`conv2d_workspace_len`] long for the last batch shape.
    workspace: Vec<f32>,
    output: Tensor,
    grad_input: Tensor,
    /// `∂loss/∂(conv + bias)` when an activation is fused.
    grad_pre_activation: Tensor,
    /// Whether backward computes `grad_input` ([`Layer::set_input_grad`]).
    input_grad: bool,
}

impl Conv2d {
    /// A layer with weights drawn by `init` (fan-in `(c_in/groups)·kh·kw`, fan-out
    /// `c_out·kh·kw`) and zero biases. Errors ([`LayerError::Argument`], naming the field) if
    /// a channel count, kernel size, stride or dilation is 0 or `groups` does not divide both
    /// channel counts.
    pub fn new(config: Conv2dConfig, init: Init, rng: &mut StdRng) -> Result<Self> {
        // The smallest input the kernel fits checks every hyper-parameter at once.
        config
            .shape(1, config.window(0), config.window(1))
            .check()
            .map_err(|e| LayerError::argument("conv2d", e))?;
        let [kh, kw] = config.kernel;
        let (c_in_group, c_out) = (config.in_channels / config.groups, config.out_channels);
        let mut weight = Tensor::zeros(&[c_out, c_in_group, kh, kw]);
        init.fill(weight.data_mut(), c_in_group * kh * kw, c_out * kh * kw, rng);
        Ok(Conv2d {
            config,
            weight: Param::new(weight),
            bias: config.bias.then(|| Param::new(Tensor::zeros(&[c_out]))),
            workspace: Vec::new(),
            output: Tensor::default(),
            grad_input: Tensor::default(),
            grad_pre_activation: Tensor::default(),
            input_grad: true,
        })
    }

    /// The configuration the layer was built with.
    pub fn config(&self) -> &Conv2dConfig {
        &self.config
    }

    /// The kernel shape of `input`, if it is `(n >= 1, c_in, h, w)` with an image the dilated
    /// kernel fits once padded; a shape error naming the layer otherwise.
    fn shape_of(&self, input: &Tensor) -> Result<Conv2dShape> {
        let c = &self.config;
        let error = |detail: String| LayerError::Shape {
            layer: self.name(),
            expected: format!("(batch >= 1, {}, h, w){detail}", c.in_channels),
            actual: input.shape().to_vec(),
        };
        match *input.shape() {
            [n, c_in, h, w] if n >= 1 && c_in == c.in_channels => {
                let shape = c.shape(n, h, w);
                shape.check().map_err(|e| {
                    error(format!(
                        " with h + 2·{} >= {} and w + 2·{} >= {} ({e})",
                        c.padding[0],
                        c.window(0),
                        c.padding[1],
                        c.window(1)
                    ))
                })?;
                Ok(shape)
            }
            _ => Err(error(String::new())),
        }
    }

    /// Sizes the kernel scratch for `shape` on the current rayon pool (no allocation once it
    /// has held that many floats).
    fn reserve_workspace(&mut self, shape: &Conv2dShape) {
        self.workspace.resize(conv2d_workspace_len(shape), 0.0);
    }
}

impl Layer for Conv2d {
    fn name(&self) -> String {
        let c = &self.config;
        let mut name = format!(
            "conv2d({} -> {}, {}x{}, stride {}x{}, pad {}x{}",
            c.in_channels,
            c.out_channels,
            c.kernel[0],
            c.kernel[1],
            c.stride[0],
            c.stride[1],
            c.padding[0],
            c.padding[1]
        );
        if c.dilation != [1, 1] {
            name += &format!(", dilation {}x{}", c.dilation[0], c.dilation[1]);
        }
        if c.groups != 1 {
            name += &format!(", groups {}", c.groups);
        }
        if !c.bias {
            name += ", no bias";
        }
        if let Some(activation) = c.activation {
            name += &format!(", {}", activation.name());
        }
        name + ")"
    }

    fn forward(&mut self, input: &Tensor, _mode: Mode) -> Result<()> {
        let shape = self.shape_of(input)?;
        self.reserve_workspace(&shape);
        self.output.resize(&[shape.n, shape.c_out, shape.out_h(), shape.out_w()]);
        let (fused, after) = ActivationKind::split_for_epilogue(self.config.activation);
        conv2d_forward_fused(
            &shape,
            input.data(),
            self.weight.value.data(),
            self.bias.as_ref().map(|b| b.value.data()),
            fused,
            self.output.data_mut(),
            &mut self.workspace,
        )?;
        if let Some(activation) = after {
            activation.forward_inplace(self.output.data_mut())?;
        }
        Ok(())
    }

    fn backward(&mut self, input: &Tensor, grad_output: &Tensor) -> Result<()> {
        ensure_forward_ran(&self.output, || self.name())?;
        let shape = self.shape_of(input)?;
        let out_shape = [shape.n, shape.c_out, shape.out_h(), shape.out_w()];
        if grad_output.shape() != out_shape {
            return Err(LayerError::Shape {
                layer: format!("{} (gradient)", self.name()),
                expected: format!("{out_shape:?}"),
                actual: grad_output.shape().to_vec(),
            });
        }
        self.reserve_workspace(&shape);
        let dy = grad_before_activation(
            self.config.activation,
            &self.output,
            grad_output,
            &mut self.grad_pre_activation,
        )?;
        // dW += Σ dy·im2col(x)ᵀ, db += Σ dy (accumulated, as parameter gradients are), unless
        // every parameter is frozen (one kernel computes both).
        let frozen = self.weight.frozen && self.bias.as_ref().is_none_or(|b| b.frozen);
        if !frozen {
            conv2d_backward_weight(
                &shape,
                input.data(),
                dy,
                self.weight.grad.data_mut(),
                self.bias.as_mut().map(|b| b.grad.data_mut()),
                &mut self.workspace,
            )?;
        }
        if !self.input_grad {
            self.grad_input.resize(&[0]);
            return Ok(());
        }
        // dx = col2im(Wᵀ·dy) (overwritten).
        self.grad_input.resize(input.shape());
        conv2d_backward_data(
            &shape,
            dy,
            self.weight.value.data(),
            self.grad_input.data_mut(),
            &mut self.workspace,
        )?;
        Ok(())
    }

    fn output(&self) -> &Tensor {
        &self.output
    }

    fn grad_input(&self) -> &Tensor {
        &self.grad_input
    }

    fn set_input_grad(&mut self, needed: bool) {
        self.input_grad = needed;
    }

    fn visit_params(&mut self, visit: &mut dyn FnMut(&str, &mut Param)) {
        visit("weight", &mut self.weight);
        if let Some(bias) = &mut self.bias {
            visit("bias", bias);
        }
    }
}
