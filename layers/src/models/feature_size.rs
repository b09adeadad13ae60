//! The side of a square feature map through convolutions and pools, from the kernels' own
//! output-size rules, so a model can size its classifier for the configured input.

use keel_kernels::conv::Conv2dShape;
use keel_kernels::pool::Pool2dShape;

use crate::error::{LayerError, Result};

/// A square feature map's side, followed through a model's layers; the first layer that
/// does not fit makes an error naming the model and its input size.
pub(super) struct FeatureSize {
    model: &'static str,
    input: usize,
    side: usize,
}

impl FeatureSize {
    /// A `side x side` input of `model`.
    pub(super) fn new(model: &'static str, side: usize) -> Self {
        FeatureSize { model, input: side, side }
    }

    /// After a `kernel x kernel` convolution with `stride` and `pad`.
    pub(super) fn conv(&mut self, kernel: usize, stride: usize, pad: usize) -> Result<()> {
        let shape =
            Conv2dShape::new(1, 1, self.side, self.side, 1, kernel, kernel).with_stride(stride).with_pad(pad);
        shape.check().map_err(|_| self.too_small(&format!("a {kernel}x{kernel} convolution")))?;
        self.side = shape.out_h();
        Ok(())
    }

    /// After a `kernel x kernel` pool with `stride` and `pad`.
    pub(super) fn pool(&mut self, kernel: usize, stride: usize, pad: usize) -> Result<()> {
        let shape = Pool2dShape::square(1, 1, self.side, self.side, kernel, stride, pad);
        shape.check().map_err(|_| self.too_small(&format!("a {kernel}x{kernel} pool")))?;
        self.side = shape.out_h();
        Ok(())
    }

    /// The side after the layers so far.
    pub(super) fn side(&self) -> usize {
        self.side
    }

    fn too_small(&self, layer: &str) -> LayerError {
        LayerError::Config {
            model: self.model.into(),
            expected: format!("an input size that {layer} fits (its input is {} wide there)", self.side),
            actual: format!("input size {}", self.input),
        }
    }
}
