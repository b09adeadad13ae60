//! AlexNet (Krizhevsky et al., 2012) as torchvision defines it.

use rand::rngs::StdRng;
use rand::RngExt;

use super::feature_size::FeatureSize;
use crate::error::Result;
use crate::nn::{
    Activation, ActivationKind, Conv2d, Conv2dConfig, Dense, Dropout, Flatten, Init, MaxPool2d, Sequential,
};

/// The layout of an [`alexnet`]: five convolution widths, the hidden width of the classifier,
/// its dropout, the input and the classes.
#[derive(Debug, Clone, PartialEq)]
pub struct AlexNetConfig {
    /// Input channels (3 for RGB).
    pub in_channels: usize,
    /// The side of the square input images (224 for ImageNet; at least 63).
    pub input_size: usize,
    /// Output channels of the five convolutions (11x11 stride 4, 5x5, then three 3x3).
    pub widths: [usize; 5],
    /// Width of the two hidden dense layers.
    pub hidden: usize,
    /// Drop probability before each hidden dense layer.
    pub dropout: f32,
    /// Output logits.
    pub classes: usize,
}

impl AlexNetConfig {
    /// torchvision's `alexnet(num_classes=classes)` on 224x224 RGB images: widths
    /// 64/192/384/256/256, hidden 4096, dropout 0.5.
    pub fn imagenet(classes: usize) -> Self {
        AlexNetConfig {
            in_channels: 3,
            input_size: 224,
            widths: [64, 192, 384, 256, 256],
            hidden: 4096,
            dropout: 0.5,
            classes,
        }
    }
}

/// AlexNet, with torchvision's module indices (each ReLU its own layer):
///
/// | name | layers | output (224x224) |
/// |---|---|---|
/// | `features.0`-`2` | conv 11x11 stride 4 pad 2, ReLU, max pool 3 stride 2 | `(n, w0, 27, 27)` |
/// | `features.3`-`5` | conv 5x5 pad 2, ReLU, max pool 3 stride 2 | `(n, w1, 13, 13)` |
/// | `features.6`-`11` | three convs 3x3 pad 1, each with a ReLU | `(n, w4, 13, 13)` |
/// | `features.12` | max pool 3 stride 2 | `(n, w4, 6, 6)` |
/// | `flatten` | | `(n, w4·6·6)` |
/// | `classifier.0`-`6` | dropout, dense, ReLU, dropout, dense, ReLU, dense | `(n, classes)` |
///
/// torchvision's `avgpool` (`AdaptiveAvgPool2d((6, 6))`, no parameters) is the identity at
/// 224x224 and is left out: here the first dense layer's width follows the input size
/// instead. With [`AlexNetConfig::imagenet`] the parameter names and shapes are
/// torchvision's (`features.0.weight` `(64, 3, 11, 11)`, ..., `classifier.6.bias`
/// `(classes)`). Convolutions are drawn by He init, dense layers by Xavier init; the dropout
/// masks are seeded from `rng`.
///
/// # Shapes
/// `(n, in_channels, input_size, input_size)` → `(n, classes)`.
///
/// Errors ([`LayerError::Config`](crate::LayerError::Config)) if the input is too small for
/// the layers (below 63), and ([`LayerError::Kernel`](crate::LayerError::Kernel)) if a
/// width is 0.
///
/// ```
/// use keel_layers::{alexnet, AlexNetConfig, Layer, Mode, SeedableRng, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// // AlexNet's layers at a smaller width, on the smallest image they take (63x63).
/// let config =
///     AlexNetConfig { input_size: 63, widths: [4, 8, 8, 8, 8], hidden: 16, ..AlexNetConfig::imagenet(5) };
/// let mut model = alexnet(&config, &mut StdRng::seed_from_u64(0))?;
/// model.forward(&Tensor::zeros(&[1, 3, 63, 63]), Mode::Eval)?;
/// assert_eq!(model.output().shape(), &[1, 5]);
/// assert!(alexnet(&AlexNetConfig { input_size: 62, ..config }, &mut StdRng::seed_from_u64(0)).is_err());
/// # Ok(())
/// # }
/// ```
pub fn alexnet(config: &AlexNetConfig, rng: &mut StdRng) -> Result<Sequential> {
    let [w0, w1, w2, w3, w4] = config.widths;
    let relu = || Activation::new(ActivationKind::Relu);
    let pool = || MaxPool2d::new(3).with_stride(2);
    let mut side = FeatureSize::new("alexnet", config.input_size);
    side.conv(11, 4, 2)?;
    side.pool(3, 2, 0)?;
    side.conv(5, 1, 2)?;
    side.pool(3, 2, 0)?;
    side.pool(3, 2, 0)?;
    let last = side.side();
    let conv = |c_in, c_out, kernel, pad, rng: &mut StdRng| {
        Conv2d::new(Conv2dConfig::new(c_in, c_out, kernel).with_padding(pad), Init::He, rng)
    };
    let features = Sequential::new()
        .push(Conv2d::new(
            Conv2dConfig::new(config.in_channels, w0, 11).with_stride(4).with_padding(2),
            Init::He,
            rng,
        )?)
        .push(relu())
        .push(pool())
        .push(conv(w0, w1, 5, 2, rng)?)
        .push(relu())
        .push(pool())
        .push(conv(w1, w2, 3, 1, rng)?)
        .push(relu())
        .push(conv(w2, w3, 3, 1, rng)?)
        .push(relu())
        .push(conv(w3, w4, 3, 1, rng)?)
        .push(relu())
        .push(pool());
    let classifier = Sequential::new()
        .push(Dropout::new(config.dropout, rng.random())?)
        .push(Dense::new(w4 * last * last, config.hidden, Init::Xavier, rng)?)
        .push(relu())
        .push(Dropout::new(config.dropout, rng.random())?)
        .push(Dense::new(config.hidden, config.hidden, Init::Xavier, rng)?)
        .push(relu())
        .push(Dense::new(config.hidden, config.classes, Init::Xavier, rng)?);
    Sequential::new()
        .push_named("features", features)?
        .push_named("flatten", Flatten::new())?
        .push_named("classifier", classifier)
}
