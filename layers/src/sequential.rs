//! `Sequential`: layers applied one after the other.

use crate::error::{LayerError, Result};
use crate::layer::{Layer, Mode, Param};
use crate::tensor::Tensor;

/// What an empty chain shows as its output and input gradient.
static EMPTY: Tensor = Tensor::EMPTY;

/// A chain of layers: the output of each is the input of the next. Its parameters and
/// buffers are named `"<index>.<name>"` (`"0.weight"`, `"1.running_mean"`), as PyTorch
/// names them.
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Layer>>,
    /// Reused for the `"<index>.<name>"` parameter names, so visiting allocates nothing.
    name_buffer: String,
}

impl Sequential {
    /// An empty chain.
    pub fn new() -> Self {
        Sequential::default()
    }

    /// Appends a layer.
    pub fn push(mut self, layer: impl Layer + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    fn check_not_empty(&self) -> Result<()> {
        if self.layers.is_empty() {
            Err(LayerError::State("sequential: no layers".into()))
        } else {
            Ok(())
        }
    }
}

impl Layer for Sequential {
    fn name(&self) -> String {
        let names: Vec<String> = self.layers.iter().map(|layer| layer.name()).collect();
        format!("sequential[{}]", names.join(", "))
    }

    fn forward(&mut self, input: &Tensor, mode: Mode) -> Result<()> {
        self.check_not_empty()?;
        for index in 0..self.layers.len() {
            let (done, rest) = self.layers.split_at_mut(index);
            let layer_input = done.last().map_or(input, |previous| previous.output());
            rest[0].forward(layer_input, mode)?;
        }
        Ok(())
    }

    fn backward(&mut self, input: &Tensor, grad_output: &Tensor) -> Result<()> {
        self.check_not_empty()?;
        for index in (0..self.layers.len()).rev() {
            let (done, rest) = self.layers.split_at_mut(index);
            let (current, after) = rest.split_at_mut(1);
            let layer_input = done.last().map_or(input, |previous| previous.output());
            let layer_grad = after.first().map_or(grad_output, |next| next.grad_input());
            current[0].backward(layer_input, layer_grad)?;
        }
        Ok(())
    }

    fn output(&self) -> &Tensor {
        self.layers.last().map_or(&EMPTY, |layer| layer.output())
    }

    fn grad_input(&self) -> &Tensor {
        self.layers.first().map_or(&EMPTY, |layer| layer.grad_input())
    }

    fn visit_params(&mut self, visit: &mut dyn FnMut(&str, &mut Param)) {
        let name = &mut self.name_buffer;
        for (index, layer) in self.layers.iter_mut().enumerate() {
            layer.visit_params(&mut |param_name, param| visit(prefixed(name, index, param_name), param));
        }
    }

    fn visit_buffers(&mut self, visit: &mut dyn FnMut(&str, &mut Tensor)) {
        let name = &mut self.name_buffer;
        for (index, layer) in self.layers.iter_mut().enumerate() {
            layer.visit_buffers(&mut |buffer_name, buffer| visit(prefixed(name, index, buffer_name), buffer));
        }
    }
}

/// `"<index>.<name>"` written into `buffer` (reused, so visiting allocates nothing once warm).
fn prefixed<'a>(buffer: &'a mut String, index: usize, name: &str) -> &'a str {
    use std::fmt::Write;
    buffer.clear();
    // Writing to a String cannot fail.
    let _ = write!(buffer, "{index}.{name}");
    buffer
}
