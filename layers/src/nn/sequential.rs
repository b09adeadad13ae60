//! `Sequential`: layers applied one after the other.

use std::sync::Arc;

use super::layer::{Layer, Mode, Param};
use crate::collective::Collective;
use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// What an empty chain shows as its output and input gradient.
static EMPTY: Tensor = Tensor::EMPTY;

/// A chain of layers: the output of each is the input of the next. Its parameters and
/// buffers are named `"<child>.<name>"`, where a child added by [`Sequential::push`] is named
/// by its index (`"0.weight"`, `"1.running_mean"`) and one added by
/// [`Sequential::push_named`] by its name (`"fc.weight"`), as PyTorch names the children of
/// `nn.Sequential(*layers)` and `nn.Sequential(OrderedDict(...))`.
///
/// With its input gradient off ([`Layer::set_input_grad`]), backward stops at the first layer
/// with a trainable (not frozen) parameter, and that layer skips its own input gradient: the
/// layers before it (a leading `Flatten`, say, or a frozen backbone) have nothing to learn.
///
/// # Shapes
/// Input: what the first layer takes; output: what the last gives.
///
/// ```
/// use keel_layers::{ActivationKind, Dense, Init, Layer, Mode, SeedableRng, Sequential, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut rng = StdRng::seed_from_u64(0);
/// let mut model = Sequential::new()
///     .push(Dense::new(4, 8, Init::He, &mut rng)?.with_activation(ActivationKind::Relu))
///     .push_named("fc", Dense::new(8, 3, Init::Xavier, &mut rng)?)?;
/// model.forward(&Tensor::zeros(&[5, 4]), Mode::Eval)?;
/// assert_eq!(model.output().shape(), &[5, 3]);
/// let mut names = Vec::new();
/// model.visit_params(&mut |name, _| names.push(name.to_string()));
/// assert_eq!(names, ["0.weight", "0.bias", "fc.weight", "fc.bias"]);
/// // A new head for two classes (transfer learning).
/// model.replace("fc", Dense::new(8, 2, Init::Xavier, &mut rng)?)?;
/// model.forward(&Tensor::zeros(&[5, 4]), Mode::Eval)?;
/// assert_eq!(model.output().shape(), &[5, 2]);
/// # Ok(())
/// # }
/// ```
pub struct Sequential {
    layers: Vec<Box<dyn Layer>>,
    /// The child names, one per layer: its index, or the name given to `push_named`.
    names: Vec<String>,
    /// Reused for the `"<index>.<name>"` parameter names, so visiting allocates nothing.
    name_buffer: String,
    /// Whether backward produces `∂loss/∂input` of the whole chain.
    input_grad: bool,
    /// The first layer with a trainable parameter (`layers.len()` when none has any).
    first_trainable: usize,
}

impl Default for Sequential {
    fn default() -> Self {
        Sequential {
            layers: Vec::new(),
            names: Vec::new(),
            name_buffer: String::new(),
            input_grad: true,
            first_trainable: 0,
        }
    }
}

impl Sequential {
    /// An empty chain.
    pub fn new() -> Self {
        Sequential::default()
    }

    /// Appends a layer, named by its index.
    pub fn push(mut self, layer: impl Layer + 'static) -> Self {
        self.names.push(self.layers.len().to_string());
        self.layers.push(Box::new(layer));
        self.route_input_grad();
        self
    }

    /// Appends a layer named `name`, so that its parameters are `"<name>.weight"`, ...
    /// (PyTorch's `add_module`). Errors ([`LayerError::Config`]) if `name` is empty, holds a
    /// `.`, is all digits (the names [`Sequential::push`] gives) or names another child.
    pub fn push_named(mut self, name: &str, layer: impl Layer + 'static) -> Result<Self> {
        let digits = name.bytes().all(|b| b.is_ascii_digit());
        if digits || name.contains('.') || self.names.iter().any(|taken| taken == name) {
            return Err(LayerError::Config {
                model: self.name(),
                expected: "a child name that is not empty, has no '.', is not all digits and is not taken"
                    .into(),
                actual: format!("{name:?}"),
            });
        }
        self.names.push(name.to_owned());
        self.layers.push(Box::new(layer));
        self.route_input_grad();
        Ok(self)
    }

    /// The child names, in order: indices for [`Sequential::push`], the given names for
    /// [`Sequential::push_named`].
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Tells each layer whether its input gradient is needed: by the layer before it when
    /// that one (or any earlier one) has a trainable parameter, and by the caller for the
    /// whole chain. Backward calls it again, as parameters may be frozen or unfrozen between
    /// steps ([`crate::freeze`]).
    fn route_input_grad(&mut self) {
        let mut trainable = false;
        let mut first_trainable = None;
        for (index, layer) in self.layers.iter_mut().enumerate() {
            layer.set_input_grad(self.input_grad || trainable);
            layer.visit_params(&mut |_, param| trainable |= !param.frozen);
            if trainable && first_trainable.is_none() {
                first_trainable = Some(index);
            }
        }
        self.first_trainable = first_trainable.unwrap_or(self.layers.len());
    }

    /// Puts `layer` in place of the child named `name` (an index such as `"9"`, or a name
    /// given to [`Sequential::push_named`]) and returns the one it replaces: a new head for
    /// transfer learning. Errors ([`LayerError::Config`]) if no child has that name.
    pub fn replace(&mut self, name: &str, layer: impl Layer + 'static) -> Result<Box<dyn Layer>> {
        let Some(index) = self.names.iter().position(|child| child == name) else {
            return Err(LayerError::Config {
                model: self.name(),
                expected: format!("the name of a child, one of {:?}", self.names),
                actual: format!("{name:?}"),
            });
        };
        let old = std::mem::replace(&mut self.layers[index], Box::new(layer));
        self.route_input_grad();
        Ok(old)
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// [`Layer::backward`], calling `done(index, layer)` after each layer's backward, from
    /// the last layer down (its parameter gradients are then final): what lets a
    /// data-parallel wrapper send them while earlier layers are still differentiated.
    pub(crate) fn backward_each(
        &mut self,
        input: &Tensor,
        grad_output: &Tensor,
        mut done: impl FnMut(usize, &mut dyn Layer) -> Result<()>,
    ) -> Result<()> {
        self.check_not_empty()?;
        self.route_input_grad();
        // Without an input gradient, the layers before the first trainable one have no work.
        let first = if self.input_grad { 0 } else { self.first_trainable };
        for index in (first..self.layers.len()).rev() {
            let (finished, rest) = self.layers.split_at_mut(index);
            let (current, after) = rest.split_at_mut(1);
            let layer_input = finished.last().map_or(input, |previous| previous.output());
            let layer_grad = after.first().map_or(grad_output, |next| next.grad_input());
            current[0].backward(layer_input, layer_grad)?;
            done(index, current[0].as_mut())?;
        }
        Ok(())
    }

    /// The layers, in order (for a wrapper that needs each one's parameters).
    #[cfg(feature = "mpi")]
    pub(crate) fn layers_mut(&mut self) -> &mut [Box<dyn Layer>] {
        &mut self.layers
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
        self.backward_each(input, grad_output, |_, _| Ok(()))
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

    fn set_batch_offset(&mut self, rows: usize) {
        self.layers.iter_mut().for_each(|layer| layer.set_batch_offset(rows));
    }

    fn synchronize_batch_norm(&mut self, group: &Arc<dyn Collective>) {
        self.layers.iter_mut().for_each(|layer| layer.synchronize_batch_norm(group));
    }

    fn visit_params(&mut self, visit: &mut dyn FnMut(&str, &mut Param)) {
        let buffer = &mut self.name_buffer;
        for (child, layer) in self.names.iter().zip(&mut self.layers) {
            layer.visit_params(&mut |param_name, param| visit(prefixed(buffer, child, param_name), param));
        }
    }

    fn visit_buffers(&mut self, visit: &mut dyn FnMut(&str, &mut Tensor)) {
        let buffer = &mut self.name_buffer;
        for (child, layer) in self.names.iter().zip(&mut self.layers) {
            layer.visit_buffers(&mut |tensor_name, tensor| {
                visit(prefixed(buffer, child, tensor_name), tensor)
            });
        }
    }
}

/// `"<child>.<name>"` written into `buffer` (reused, so visiting allocates nothing once warm).
pub(crate) fn prefixed<'a>(buffer: &'a mut String, child: &str, name: &str) -> &'a str {
    buffer.clear();
    buffer.push_str(child);
    buffer.push('.');
    buffer.push_str(name);
    buffer
}
