//! VGG (Simonyan and Zisserman, 2014) as torchvision defines it: VGG-11 and VGG-16 for
//! 224x224 images, and a small variant for 28x28 digits.

use rand::rngs::StdRng;
use rand::RngExt;

use super::feature_size::FeatureSize;
use crate::error::{LayerError, Result};
use crate::nn::{
    Activation, ActivationKind, Conv2d, Conv2dConfig, Dense, Dropout, Flatten, Init, MaxPool2d, Sequential,
};

/// The layout of a [`vgg`]: per stage a number of 3x3 convolutions and their width, each
/// stage ending in a 2x2 max pool; then the classifier's hidden width and dropout.
#[derive(Debug, Clone, PartialEq)]
pub struct VggConfig {
    /// Input channels (3 for RGB, 1 for digits).
    pub in_channels: usize,
    /// The side of the square input images (224 for ImageNet); halved by each stage.
    pub input_size: usize,
    /// `(convolutions, width)` of each stage.
    pub stages: Vec<(usize, usize)>,
    /// Width of the two hidden dense layers.
    pub hidden: usize,
    /// Drop probability after each hidden dense layer.
    pub dropout: f32,
    /// Output logits.
    pub classes: usize,
}

impl VggConfig {
    /// torchvision's `vgg11(num_classes=classes)` (configuration "A") on 224x224 RGB images:
    /// 1, 1, 2, 2, 2 convolutions of widths 64/128/256/512/512, hidden 4096, dropout 0.5.
    pub fn vgg11(classes: usize) -> Self {
        VggConfig {
            in_channels: 3,
            input_size: 224,
            stages: vec![(1, 64), (1, 128), (2, 256), (2, 512), (2, 512)],
            hidden: 4096,
            dropout: 0.5,
            classes,
        }
    }

    /// torchvision's `vgg16(num_classes=classes)` (configuration "D"): as VGG-11 with 2, 2,
    /// 3, 3, 3 convolutions.
    pub fn vgg16(classes: usize) -> Self {
        VggConfig {
            stages: vec![(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)],
            ..VggConfig::vgg11(classes)
        }
    }

    /// A small VGG for 28x28 grey digits and 10 classes: 1, 1, 2 convolutions of widths
    /// 16/32/64 (28 → 14 → 7 → 3), hidden 128, dropout 0.5.
    pub fn small_mnist() -> Self {
        VggConfig {
            in_channels: 1,
            input_size: 28,
            stages: vec![(1, 16), (1, 32), (2, 64)],
            hidden: 128,
            dropout: 0.5,
            classes: 10,
        }
    }
}

/// VGG, with torchvision's module indices (each ReLU its own layer):
///
/// | name | layers | output (VGG-16, 224x224) |
/// |---|---|---|
/// | `features.*` | per stage: (conv 3x3 pad 1, ReLU) × convolutions, max pool 2 | `(n, 512, 7, 7)` |
/// | `flatten` | | `(n, 25088)` |
/// | `classifier.0`-`6` | dense, ReLU, dropout, dense, ReLU, dropout, dense | `(n, classes)` |
///
/// torchvision's `avgpool` (`AdaptiveAvgPool2d((7, 7))`, no parameters) is the identity at
/// 224x224 and is left out: here the first dense layer's width follows the input size
/// instead. With [`VggConfig::vgg11`] and [`VggConfig::vgg16`] the parameter names and shapes
/// are torchvision's (`features.0.weight` `(64, 3, 3, 3)`, ..., `classifier.6.bias`
/// `(classes)`). Convolutions are drawn by He init, dense layers by Xavier init; the dropout
/// masks are seeded from `rng`.
///
/// # Shapes
/// `(n, in_channels, input_size, input_size)` → `(n, classes)`.
///
/// Errors ([`LayerError::Config`]) if there is no stage, a stage has no convolution, or the
/// input is too small for the pools (below `2^stages`); ([`LayerError::Kernel`]) if a width
/// is 0.
///
/// ```
/// use keel_layers::{vgg, Layer, Mode, SeedableRng, StdRng, Tensor, VggConfig};
/// # fn main() -> keel_layers::Result<()> {
/// // Two stages of one convolution (4, then 8 channels) on 8x8 grey images: 8 -> 4 -> 2.
/// let stages = vec![(1, 4), (1, 8)];
/// let config = VggConfig { in_channels: 1, input_size: 8, stages, hidden: 16, dropout: 0.5, classes: 3 };
/// let mut model = vgg(&config, &mut StdRng::seed_from_u64(0))?;
/// model.forward(&Tensor::zeros(&[2, 1, 8, 8]), Mode::Eval)?;
/// assert_eq!(model.output().shape(), &[2, 3]);
/// let mut shapes = Vec::new();
/// model.visit_params(&mut |name, param| shapes.push((name.to_string(), param.value.shape().to_vec())));
/// assert_eq!(shapes[4], ("classifier.0.weight".to_string(), vec![16, 8 * 2 * 2]));
/// # Ok(())
/// # }
/// ```
pub fn vgg(config: &VggConfig, rng: &mut StdRng) -> Result<Sequential> {
    if config.stages.is_empty() || config.stages.iter().any(|&(convs, _)| convs == 0) {
        return Err(LayerError::Config {
            model: "vgg".into(),
            expected: "at least one stage, each with at least one convolution".into(),
            actual: format!("stages {:?}", config.stages),
        });
    }
    let relu = || Activation::new(ActivationKind::Relu);
    let mut side = FeatureSize::new("vgg", config.input_size);
    let mut features = Sequential::new();
    let mut channels = config.in_channels;
    for &(convs, width) in &config.stages {
        for _ in 0..convs {
            let conv = Conv2dConfig::new(channels, width, 3).with_padding(1);
            features = features.push(Conv2d::new(conv, Init::He, rng)?).push(relu());
            channels = width;
        }
        features = features.push(MaxPool2d::new(2));
        side.pool(2, 2, 0)?;
    }
    let last = side.side();
    let classifier = Sequential::new()
        .push(Dense::new(channels * last * last, config.hidden, Init::Xavier, rng)?)
        .push(relu())
        .push(Dropout::new(config.dropout, rng.random())?)
        .push(Dense::new(config.hidden, config.hidden, Init::Xavier, rng)?)
        .push(relu())
        .push(Dropout::new(config.dropout, rng.random())?)
        .push(Dense::new(config.hidden, config.classes, Init::Xavier, rng)?);
    Sequential::new()
        .push_named("features", features)?
        .push_named("flatten", Flatten::new())?
        .push_named("classifier", classifier)
}
