//! Inception (GoogLeNet, Szegedy et al., 2014): blocks of parallel 1x1, 3x3, 5x5 and pooling
//! branches concatenated on channels, and a network of them, as torchvision defines it
//! (without the auxiliary classifiers).

use rand::rngs::StdRng;
use rand::RngExt;

use crate::error::{LayerError, Result};
use crate::nn::{
    Activation, ActivationKind, BatchNorm, Branches, Conv2d, Conv2dConfig, Dense, Dropout, GlobalAvgPool2d,
    Init, MaxPool2d, Merge, Sequential,
};

/// The output channels of each branch of an [`inception_block`] (the arguments of
/// torchvision's `Inception`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InceptionWidths {
    /// Branch 1: the 1x1 convolution.
    pub ch1x1: usize,
    /// Branch 2: the 1x1 reduction before the 3x3 convolution.
    pub ch3x3_reduce: usize,
    /// Branch 2: the 3x3 convolution.
    pub ch3x3: usize,
    /// Branch 3: the 1x1 reduction before the large convolution.
    pub ch5x5_reduce: usize,
    /// Branch 3: the large (5x5 in the paper) convolution.
    pub ch5x5: usize,
    /// Branch 4: the 1x1 projection after the 3x3 max pool.
    pub pool_proj: usize,
}

impl InceptionWidths {
    /// The widths in torchvision's argument order `(ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5,
    /// pool_proj)`.
    pub const fn new(widths: [usize; 6]) -> Self {
        let [ch1x1, ch3x3_reduce, ch3x3, ch5x5_reduce, ch5x5, pool_proj] = widths;
        InceptionWidths { ch1x1, ch3x3_reduce, ch3x3, ch5x5_reduce, ch5x5, pool_proj }
    }

    /// The channels of the concatenated output.
    pub fn out_channels(&self) -> usize {
        self.ch1x1 + self.ch3x3 + self.ch5x5 + self.pool_proj
    }
}

/// torchvision's `BasicConv2d`: a convolution without bias (`conv`), batch norm with
/// `eps = 0.001` (`bn`), ReLU; `kernel x kernel` with padding `kernel / 2` (the size kept at
/// stride 1) and stride `stride`.
fn conv_bn_relu(
    c_in: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    rng: &mut StdRng,
) -> Result<Sequential> {
    let config =
        Conv2dConfig::new(c_in, c_out, kernel).with_stride(stride).with_padding(kernel / 2).with_bias(false);
    let mut bn = BatchNorm::new_2d(c_out);
    bn.eps = 1e-3;
    Sequential::new()
        .push_named("conv", Conv2d::new(config, Init::He, rng)?)?
        .push_named("bn", bn)?
        .push_named("relu", Activation::new(ActivationKind::Relu))
}

/// An Inception block: four branches on the same input, concatenated on channels
/// ([`Branches`] with [`Merge::Concat`]), each convolution followed by batch norm and ReLU
/// (torchvision's `BasicConv2d`):
///
/// | branch | layers |
/// |---|---|
/// | `branch1` | 1x1 → `ch1x1` |
/// | `branch2` | 1x1 → `ch3x3_reduce`, 3x3 → `ch3x3` |
/// | `branch3` | 1x1 → `ch5x5_reduce`, `large_kernel` x `large_kernel` → `ch5x5` |
/// | `branch4` | 3x3 max pool (stride 1, padding 1), 1x1 → `pool_proj` |
///
/// `large_kernel` is 5 in the paper; torchvision's GoogLeNet uses 3 (a known bug it keeps
/// for its weights). Names as torchvision's: `branch1.conv.weight`, `branch1.bn.*`,
/// `branch2.0.conv.weight`, `branch2.1.bn.running_var`, `branch4.1.conv.weight`, ...
///
/// # Shapes
/// `(n, in_channels, h, w)` → `(n, widths.out_channels(), h, w)`.
///
/// Errors ([`LayerError::Config`]) if `large_kernel` is even (its padding could not keep the
/// size), and ([`LayerError::Kernel`]) if a width is 0.
///
/// ```
/// use keel_layers::{inception_block, InceptionWidths, Layer, Mode, SeedableRng, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let widths = InceptionWidths::new([2, 2, 4, 2, 4, 2]); // 2 + 4 + 4 + 2 channels out
/// let mut block = inception_block(3, &widths, 5, &mut StdRng::seed_from_u64(0))?;
/// block.forward(&Tensor::zeros(&[1, 3, 6, 6]), Mode::Eval)?;
/// assert_eq!(block.output().shape(), &[1, widths.out_channels(), 6, 6]);
/// assert_eq!(widths.out_channels(), 12);
/// # Ok(())
/// # }
/// ```
pub fn inception_block(
    in_channels: usize,
    widths: &InceptionWidths,
    large_kernel: usize,
    rng: &mut StdRng,
) -> Result<Branches> {
    if large_kernel.is_multiple_of(2) {
        return Err(LayerError::Config {
            model: "inception block".into(),
            expected: "an odd large kernel (padded to keep the size)".into(),
            actual: format!("{large_kernel}"),
        });
    }
    let w = widths;
    let branch2 = Sequential::new()
        .push(conv_bn_relu(in_channels, w.ch3x3_reduce, 1, 1, rng)?)
        .push(conv_bn_relu(w.ch3x3_reduce, w.ch3x3, 3, 1, rng)?);
    let branch3 = Sequential::new()
        .push(conv_bn_relu(in_channels, w.ch5x5_reduce, 1, 1, rng)?)
        .push(conv_bn_relu(w.ch5x5_reduce, w.ch5x5, large_kernel, 1, rng)?);
    let branch4 = Sequential::new()
        .push(MaxPool2d::new(3).with_stride(1).with_padding(1).with_ceil_mode(true))
        .push(conv_bn_relu(in_channels, w.pool_proj, 1, 1, rng)?);
    Branches::new(Merge::Concat)
        .branch("branch1", conv_bn_relu(in_channels, w.ch1x1, 1, 1, rng)?)?
        .branch("branch2", branch2)?
        .branch("branch3", branch3)?
        .branch("branch4", branch4)
}

/// The first layers of an [`InceptionConfig`], before the Inception blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InceptionStem {
    /// GoogLeNet's: `conv1` 7x7 stride 2 → 64, `maxpool1`, `conv2` 1x1 → 64, `conv3` 3x3 →
    /// 192, `maxpool2` (3x3 stride 2 pools; a 224x224 image becomes 28x28).
    GoogLeNet,
    /// For small images: `conv1` 3x3 → `width`, the size kept.
    Small {
        /// The output channels.
        width: usize,
    },
}

/// The layout of an [`inception`] network: the stem, stages of Inception blocks (a 3x3
/// stride 2 max pool between stages), the large kernel of every block, the dropout before
/// the classifier and the classes.
#[derive(Debug, Clone, PartialEq)]
pub struct InceptionConfig {
    /// Input channels (3 for RGB, 1 for digits).
    pub in_channels: usize,
    /// The stem.
    pub stem: InceptionStem,
    /// The blocks of each stage; stage `s` holds blocks `inception{s+3}a`, `b`, ...
    pub stages: Vec<Vec<InceptionWidths>>,
    /// The kernel of each block's third branch (see [`inception_block`]).
    pub large_kernel: usize,
    /// Drop probability before the classifier.
    pub dropout: f32,
    /// Output logits.
    pub classes: usize,
}

impl InceptionConfig {
    /// torchvision's `googlenet(num_classes=classes, aux_logits=False)`: the GoogLeNet stem,
    /// blocks 3a-3b, 4a-4e, 5a-5b, large kernel 3 (torchvision's), dropout 0.2.
    pub fn googlenet(classes: usize) -> Self {
        let w = InceptionWidths::new;
        InceptionConfig {
            in_channels: 3,
            stem: InceptionStem::GoogLeNet,
            stages: vec![
                vec![w([64, 96, 128, 16, 32, 32]), w([128, 128, 192, 32, 96, 64])],
                vec![
                    w([192, 96, 208, 16, 48, 64]),
                    w([160, 112, 224, 24, 64, 64]),
                    w([128, 128, 256, 24, 64, 64]),
                    w([112, 144, 288, 32, 64, 64]),
                    w([256, 160, 320, 32, 128, 128]),
                ],
                vec![w([256, 160, 320, 32, 128, 128]), w([384, 192, 384, 48, 128, 128])],
            ],
            large_kernel: 3,
            dropout: 0.2,
            classes,
        }
    }

    /// A small Inception network for 28x28 grey digits and 10 classes: a 3x3 stem of 24
    /// channels, one block at 28x28 (→ 64 channels), two at 14x14 (→ 128), 5x5 large kernels,
    /// dropout 0.2.
    pub fn small_mnist() -> Self {
        let w = InceptionWidths::new;
        InceptionConfig {
            in_channels: 1,
            stem: InceptionStem::Small { width: 24 },
            stages: vec![
                vec![w([16, 16, 24, 8, 16, 8])],
                vec![w([32, 32, 48, 8, 24, 24]), w([32, 32, 48, 8, 24, 24])],
            ],
            large_kernel: 5,
            dropout: 0.2,
            classes: 10,
        }
    }
}

/// An Inception network (GoogLeNet without its auxiliary classifiers), named as torchvision
/// names it:
///
/// | name | layers | output (GoogLeNet, 224x224) |
/// |---|---|---|
/// | `conv1` ... `maxpool2` | the stem ([`InceptionStem`]) | `(n, 192, 28, 28)` |
/// | `inception3a`, ... | the first stage's blocks | `(n, 480, 28, 28)` |
/// | `maxpool3` | 3x3 stride 2 (ceil mode) | `(n, 480, 14, 14)` |
/// | `inception4a`, ..., `maxpool4`, `inception5a`, ... | the later stages | `(n, 1024, 7, 7)` |
/// | `avgpool` | global average pool | `(n, 1024)` |
/// | `dropout`, `fc` | dropout, dense → classes | `(n, classes)` |
///
/// With [`InceptionConfig::googlenet`] the parameters and buffers have the names and shapes
/// of torchvision's `googlenet(aux_logits=False, init_weights=True)` except
/// `*.num_batches_tracked`; torchvision's `maxpool4` is 2x2, which at 224x224 gives the same
/// 7x7 as the 3x3 used here. Convolutions are drawn by He init, the classifier by Xavier init;
/// the dropout mask is seeded from `rng`.
///
/// # Shapes
/// `(n, in_channels, h, w)` → `(n, classes)` for any image the stem and pools fit (global
/// pooling makes the classifier independent of the size).
///
/// Errors ([`LayerError::Config`]) if there is no stage, a stage has no block or more than
/// 26, `classes` is 0 or the large kernel is even, and ([`LayerError::Kernel`]) if a width is 0.
///
/// ```
/// use keel_layers::{inception, InceptionConfig, InceptionStem, InceptionWidths, Layer, Mode};
/// use keel_layers::{SeedableRng, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// // A 4-channel stem and one stage of one block, for grey images and 3 classes.
/// let config = InceptionConfig {
///     in_channels: 1,
///     stem: InceptionStem::Small { width: 4 },
///     stages: vec![vec![InceptionWidths::new([2, 2, 4, 2, 4, 2])]],
///     large_kernel: 3,
///     dropout: 0.2,
///     classes: 3,
/// };
/// let mut model = inception(&config, &mut StdRng::seed_from_u64(0))?;
/// model.forward(&Tensor::zeros(&[2, 1, 8, 8]), Mode::Eval)?;
/// assert_eq!(model.output().shape(), &[2, 3]);
/// # Ok(())
/// # }
/// ```
pub fn inception(config: &InceptionConfig, rng: &mut StdRng) -> Result<Sequential> {
    if config.stages.is_empty()
        || config.stages.iter().any(|blocks| blocks.is_empty() || blocks.len() > 26)
        || config.classes == 0
    {
        return Err(LayerError::Config {
            model: "inception".into(),
            expected: "at least one stage, each with 1 to 26 blocks (lettered a to z), and classes > 0"
                .into(),
            actual: format!(
                "{} stages of {:?} blocks, {} classes",
                config.stages.len(),
                config.stages.iter().map(Vec::len).collect::<Vec<_>>(),
                config.classes
            ),
        });
    }
    let pool = || MaxPool2d::new(3).with_stride(2).with_ceil_mode(true);
    let (mut model, mut channels) = match config.stem {
        InceptionStem::GoogLeNet => {
            let model = Sequential::new()
                .push_named("conv1", conv_bn_relu(config.in_channels, 64, 7, 2, rng)?)?
                .push_named("maxpool1", pool())?
                .push_named("conv2", conv_bn_relu(64, 64, 1, 1, rng)?)?
                .push_named("conv3", conv_bn_relu(64, 192, 3, 1, rng)?)?
                .push_named("maxpool2", pool())?;
            (model, 192)
        }
        InceptionStem::Small { width } => (
            Sequential::new().push_named("conv1", conv_bn_relu(config.in_channels, width, 3, 1, rng)?)?,
            width,
        ),
    };
    for (stage, blocks) in config.stages.iter().enumerate() {
        if stage > 0 {
            model = model.push_named(&format!("maxpool{}", stage + 2), pool())?;
        }
        for (index, widths) in blocks.iter().enumerate() {
            // Blocks are lettered a, b, c, ... within a stage (at most 26, checked above).
            let letter = char::from(b'a' + index as u8);
            let name = format!("inception{}{letter}", stage + 3);
            model = model.push_named(&name, inception_block(channels, widths, config.large_kernel, rng)?)?;
            channels = widths.out_channels();
        }
    }
    model
        .push_named("avgpool", GlobalAvgPool2d::new())?
        .push_named("dropout", Dropout::new(config.dropout, rng.random())?)?
        .push_named("fc", Dense::new(channels, config.classes, Init::Xavier, rng)?)
}
