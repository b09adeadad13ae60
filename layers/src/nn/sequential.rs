//! `Sequential`: layers applied one after the other.

use super::layer::{Layer, Mode, Param};
use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// What an empty chain shows as its output and input gradient.
static EMPTY: Tensor = Tensor::EMPTY;

/// A chain of layers: the output of each is the input of the next. Its parameters and
/// buffers are named `"<index>.<name>"` (`"0.weight"`, `"1.running_mean"`), as PyTorch
/// names them.
///
/// With its input gradient off ([`Layer::set_input_grad`]), backward stops at the first layer
/// with parameters, and that layer skips its own input gradient: the layers before it
/// (a leading `Flatten`, say) have nothing to learn.
pub struct Sequential {
    layers: Vec<Box<dyn Layer>>,
    /// Reused for the `"<index>.<name>"` parameter names, so visiting allocates nothing.
    name_buffer: String,
    /// Whether backward produces `∂loss/∂input` of the whole chain.
    input_grad: bool,
    /// The first layer with parameters (`layers.len()` when none has any).
    first_trainable: usize,
}

impl Default for Sequential {
    fn default() -> Self {
        Sequential { layers: Vec::new(), name_buffer: String::new(), input_grad: true, first_trainable: 0 }
    }
}

impl Sequential {
    /// An empty chain.
    pub fn new() -> Self {
        Sequential::default()
    }

    /// Appends a layer.
    pub fn push(mut self, layer: impl Layer + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self.route_input_grad();
        self
    }

    /// Tells each layer whether its input gradient is needed: by the layer before it when
    /// that one (or any earlier one) has parameters, and by the caller for the whole chain.
    fn route_input_grad(&mut self) {
        let mut params = 0usize;
        let mut first_trainable = None;
        for (index, layer) in self.layers.iter_mut().enumerate() {
            layer.set_input_grad(self.input_grad || params > 0);
            layer.visit_params(&mut |_, _| params += 1);
            if params > 0 && first_trainable.is_none() {
                first_trainable = Some(index);
            }
        }
        self.first_trainable = first_trainable.unwrap_or(self.layers.len());
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
        // Without an input gradient, the layers before the first trainable one have no work.
        let first = if self.input_grad { 0 } else { self.first_trainable };
        for index in (first..self.layers.len()).rev() {
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
        match self.layers.first() {
            Some(layer) if self.input_grad => layer.grad_input(),
            _ => &EMPTY,
        }
    }

    fn set_input_grad(&mut self, needed: bool) {
        self.input_grad = needed;
        self.route_input_grad();
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
