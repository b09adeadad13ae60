//! Ready-made models built from the layers: LeNet-5, AlexNet, VGG, ResNet and an
//! Inception-style network, each from a configuration (widths, depths, input size, classes),
//! with torchvision's parameter names for the standard sizes.

mod lenet5;
mod resnet;

pub use lenet5::lenet5;
pub use resnet::{basic_block, resnet, ResNetConfig, ResNetStem};
