//! Ready-made models built from the layers: LeNet-5, AlexNet, VGG, ResNet and an
//! Inception network, each from a configuration (widths, depths, input size, classes), with
//! torchvision's parameter names for the standard sizes.

mod alexnet;
mod feature_size;
mod inception;
mod lenet5;
mod resnet;
mod vgg;

pub use alexnet::{alexnet, AlexNetConfig};
pub use inception::{inception, inception_block, InceptionConfig, InceptionStem, InceptionWidths};
pub use lenet5::{lenet5, lenet5_bn};
pub use resnet::{basic_block, resnet, ResNetConfig, ResNetStem};
pub use vgg::{vgg, VggConfig};
