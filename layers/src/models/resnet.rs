//! ResNet (He et al., 2015) with torchvision's basic residual block: ResNet-18 and -34 for
//! 224x224 images under torchvision's parameter names, and small variants for 28x28 digits.

use rand::rngs::StdRng;

use crate::error::{LayerError, Result};
use crate::nn::{
    Activation, ActivationKind, BatchNorm, Branches, Conv2d, Conv2dConfig, Dense, GlobalAvgPool2d, Init,
    MaxPool2d, Merge, Sequential,
};

/// torchvision's `BasicBlock`: `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`, built
/// as [`Branches`] merged by a sum with a ReLU after it.
///
/// `conv1` is 3x3 with stride `stride` and padding 1, `conv2` 3x3 with padding 1, both
/// without bias (batch norm follows). The shortcut is the identity when the shape does not
/// change (`stride == 1` and `in_channels == out_channels`), else the projection
/// `downsample` = 1x1 convolution with stride `stride` (no bias), then batch norm.
///
/// Names, as torchvision's: `conv1.weight`, `bn1.{weight, bias, running_mean, running_var}`,
/// `conv2.weight`, `bn2.*` and, with a projection, `downsample.0.weight`, `downsample.1.*`.
/// Convolution weights are drawn by He init.
///
/// # Shapes
/// `(n, in_channels, h, w)` → `(n, out_channels, ⌊(h-1)/stride⌋+1, ⌊(w-1)/stride⌋+1)`.
///
/// Errors ([`LayerError::Kernel`]) if a channel count or the stride is 0.
///
/// ```
/// use keel_layers::{basic_block, Layer, Mode, SeedableRng, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// // 4 -> 8 channels at stride 2: the shortcut is a projection.
/// let mut block = basic_block(4, 8, 2, &mut StdRng::seed_from_u64(0))?;
/// block.forward(&Tensor::zeros(&[1, 4, 9, 9]), Mode::Eval)?;
/// assert_eq!(block.output().shape(), &[1, 8, 5, 5]);
/// let mut names = Vec::new();
/// block.visit_params(&mut |name, _| names.push(name.to_string()));
/// assert!(names.iter().any(|name| name == "downsample.0.weight"));
/// # Ok(())
/// # }
/// ```
pub fn basic_block(
    in_channels: usize,
    out_channels: usize,
    stride: usize,
    rng: &mut StdRng,
) -> Result<Branches> {
    let conv3x3 = |c_in, c_out, stride| Conv2dConfig::new(c_in, c_out, 3).with_stride(stride).with_padding(1);
    let main = Sequential::new()
        .push_named(
            "conv1",
            Conv2d::new(conv3x3(in_channels, out_channels, stride).with_bias(false), Init::He, rng)?,
        )?
        .push_named("bn1", BatchNorm::new_2d(out_channels))?
        .push_named("relu", Activation::new(ActivationKind::Relu))?
        .push_named(
            "conv2",
            Conv2d::new(conv3x3(out_channels, out_channels, 1).with_bias(false), Init::He, rng)?,
        )?
        .push_named("bn2", BatchNorm::new_2d(out_channels))?;
    let block = Branches::new(Merge::Add).with_activation(ActivationKind::Relu).branch("", main)?;
    if stride == 1 && in_channels == out_channels {
        return Ok(block.identity());
    }
    let projection = Conv2dConfig::new(in_channels, out_channels, 1).with_stride(stride).with_bias(false);
    let downsample =
        Sequential::new().push(Conv2d::new(projection, Init::He, rng)?).push(BatchNorm::new_2d(out_channels));
    block.branch("downsample", downsample)
}

/// The first layers of a [`ResNetConfig`], before the residual stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResNetStem {
    /// ImageNet's: `conv1` 7x7 stride 2 padding 3, `bn1`, ReLU, `maxpool` 3x3 stride 2
    /// padding 1 (a 224x224 image becomes 56x56).
    ImageNet,
    /// For small images (28x28 digits, 32x32 CIFAR): `conv1` 3x3 stride 1 padding 1, `bn1`,
    /// ReLU, no pooling.
    Small,
}

/// The layout of a [`resnet`]: the stem, and per stage a width (channels) and a depth
/// (basic blocks). Stage `i` is named `layer{i+1}`; the first keeps the stem's resolution,
/// each later one halves it (stride 2 in its first block).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResNetConfig {
    /// Input channels (3 for RGB, 1 for digits).
    pub in_channels: usize,
    /// The stem; its width is the first stage's.
    pub stem: ResNetStem,
    /// Channels of each stage.
    pub widths: Vec<usize>,
    /// Basic blocks in each stage (as many entries as `widths`).
    pub depths: Vec<usize>,
    /// Output logits.
    pub classes: usize,
}

impl ResNetConfig {
    /// torchvision's `resnet18(num_classes=classes)`: RGB, ImageNet stem, widths
    /// 64/128/256/512, 2 blocks per stage.
    pub fn resnet18(classes: usize) -> Self {
        ResNetConfig {
            in_channels: 3,
            stem: ResNetStem::ImageNet,
            widths: vec![64, 128, 256, 512],
            depths: vec![2, 2, 2, 2],
            classes,
        }
    }

    /// torchvision's `resnet34(num_classes=classes)`: as ResNet-18 with 3, 4, 6, 3 blocks.
    pub fn resnet34(classes: usize) -> Self {
        ResNetConfig { depths: vec![3, 4, 6, 3], ..ResNetConfig::resnet18(classes) }
    }

    /// A small ResNet for 28x28 grey digits and 10 classes: the small stem, widths 16/32/64,
    /// 2 blocks per stage (8 convolutions deep plus the stem; 28x28 → 7x7 before pooling).
    pub fn small_mnist() -> Self {
        ResNetConfig {
            in_channels: 1,
            stem: ResNetStem::Small,
            widths: vec![16, 32, 64],
            depths: vec![2, 2, 2],
            classes: 10,
        }
    }
}

/// A ResNet of basic blocks ([`basic_block`]), as torchvision builds it:
///
/// | name | layer | output (ImageNet stem, 224x224) |
/// |---|---|---|
/// | `conv1`, `bn1`, `relu` | stem convolution (no bias), batch norm, ReLU | `(n, w0, 112, 112)` |
/// | `maxpool` | 3x3 stride 2 padding 1 (ImageNet stem only) | `(n, w0, 56, 56)` |
/// | `layer1` ... `layerS` | stage `i`: `depths[i]` blocks `layer{i+1}.{j}` | `(n, w_last, 7, 7)` |
/// | `avgpool` | global average pool | `(n, w_last)` |
/// | `fc` | dense `w_last → classes` | `(n, classes)` |
///
/// With [`ResNetConfig::resnet18`] the parameters and buffers have the names and shapes of
/// torchvision's `resnet18().state_dict()` except `*.num_batches_tracked` (keel's batch norm
/// uses a fixed momentum and does not count batches), so its `state_dict`, saved as
/// safetensors, loads as is (the counters are accepted and ignored: see
/// [`load_safetensors`](crate::load_safetensors)).
///
/// # Shapes
/// `(n, in_channels, h, w)` → `(n, classes)` for any image the stem and strides fit (global
/// pooling makes the classifier independent of the size).
///
/// Errors ([`LayerError::Config`]) if `widths` and `depths` differ in length, are empty, or
/// hold a 0, or if `classes` or `in_channels` is 0.
///
/// ```
/// use keel_layers::{resnet, Layer, Mode, ResNetConfig, ResNetStem, SeedableRng, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// // Two stages of one block (4, then 8 channels) for grey images and 3 classes.
/// let config = ResNetConfig {
///     in_channels: 1,
///     stem: ResNetStem::Small,
///     widths: vec![4, 8],
///     depths: vec![1, 1],
///     classes: 3,
/// };
/// let mut model = resnet(&config, &mut StdRng::seed_from_u64(0))?;
/// model.forward(&Tensor::zeros(&[2, 1, 12, 12]), Mode::Eval)?;
/// assert_eq!(model.output().shape(), &[2, 3]);
/// let mut names = Vec::new();
/// model.visit_params(&mut |name, _| names.push(name.to_string()));
/// assert_eq!((names[0].as_str(), names.last().unwrap().as_str()), ("conv1.weight", "fc.bias"));
/// // ResNet-18's layout, under torchvision's names.
/// assert_eq!(ResNetConfig::resnet18(1000).depths, [2, 2, 2, 2]);
/// # Ok(())
/// # }
/// ```
pub fn resnet(config: &ResNetConfig, rng: &mut StdRng) -> Result<Sequential> {
    let valid = !config.widths.is_empty()
        && config.widths.len() == config.depths.len()
        && config.widths.iter().chain(&config.depths).all(|&v| v > 0)
        && config.classes > 0
        && config.in_channels > 0;
    if !valid {
        return Err(LayerError::Config {
            model: "resnet".into(),
            expected: "as many widths as depths (at least one), none 0, and classes, in_channels > 0".into(),
            actual: format!("{config:?}"),
        });
    }
    let stem_width = config.widths[0];
    let stem = match config.stem {
        ResNetStem::ImageNet => {
            Conv2dConfig::new(config.in_channels, stem_width, 7).with_stride(2).with_padding(3)
        }
        ResNetStem::Small => Conv2dConfig::new(config.in_channels, stem_width, 3).with_padding(1),
    };
    let mut model = Sequential::new()
        .push_named("conv1", Conv2d::new(stem.with_bias(false), Init::He, rng)?)?
        .push_named("bn1", BatchNorm::new_2d(stem_width))?
        .push_named("relu", Activation::new(ActivationKind::Relu))?;
    if config.stem == ResNetStem::ImageNet {
        model = model.push_named("maxpool", MaxPool2d::new(3).with_stride(2).with_padding(1))?;
    }
    let mut channels = stem_width;
    for (stage, (&width, &depth)) in config.widths.iter().zip(&config.depths).enumerate() {
        let stride = if stage == 0 { 1 } else { 2 };
        let mut layer = Sequential::new().push(basic_block(channels, width, stride, rng)?);
        for _ in 1..depth {
            layer = layer.push(basic_block(width, width, 1, rng)?);
        }
        model = model.push_named(&format!("layer{}", stage + 1), layer)?;
        channels = width;
    }
    model
        .push_named("avgpool", GlobalAvgPool2d::new())?
        .push_named("fc", Dense::new(channels, config.classes, Init::Xavier, rng)?)
}
