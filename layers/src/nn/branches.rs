//! `Branches`: several layers run on the same input, their outputs merged by a sum
//! (residual blocks) or by concatenation on channels (Inception blocks).
//!
//! Forward runs every branch on the input `x` and merges:
//! - [`Merge::Add`]: `y = f(Σ_b branch_b(x))`, every branch giving the same shape;
//! - [`Merge::Concat`]: `y = f([branch_0(x), branch_1(x), ...])` along dimension 1 (the
//!   channels of NCHW), the branches agreeing on every other dimension;
//!
//! with `f` an optional activation applied after the merge (the ReLU that ends a residual
//! block). An identity branch ([`Branches::identity`]) passes `x` itself: the shortcut of a
//! residual block whose shape does not change.
//!
//! Backward takes `dz = dy·f'` and gives each branch its part of it (all of `dz` for a sum,
//! its own channels for a concatenation); the input gradient is the sum of the branches'
//! input gradients, since every branch read the same `x`.

use std::sync::Arc;

use keel_kernels::activation::{add_forward, add_inplace, add_relu_forward};

use super::activation::{grad_before_activation, ActivationKind};
use super::layer::{check_backward_shapes, ensure_forward_ran, Layer, Mode, Param};
use super::sequential::prefixed;
use crate::collective::Collective;
use crate::error::{LayerError, Result};
use crate::tensor::Tensor;

/// How [`Branches`] merges the outputs of its branches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// Element-wise sum; every branch gives the same shape.
    Add,
    /// Concatenation along dimension 1 (channels), in branch order; the branches agree on
    /// every other dimension.
    Concat,
}

/// One branch: a layer, or the identity (`None`), under the name its parameters take.
struct Branch {
    name: String,
    layer: Option<Box<dyn Layer>>,
}

/// Parallel branches on one input, merged (see the module docs).
///
/// # Shapes
/// Input: any shape every branch accepts, e.g. `(n, c, h, w)`. Output: the common branch
/// output shape for [`Merge::Add`]; for [`Merge::Concat`], `(n, Σ c_b, ...)` where branch `b`
/// gives `(n, c_b, ...)`.
///
/// Parameters and buffers are named `"<branch>.<name>"`; a branch named `""` adds no prefix,
/// so that a residual block's main path keeps the names of its layers (`"conv1.weight"`, as in
/// torchvision's `BasicBlock`, whose shortcut is `"downsample.0.weight"`).
///
/// ```
/// use keel_layers::{Branches, Dense, Init, Layer, Merge, Mode, SeedableRng, StdRng, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let mut rng = StdRng::seed_from_u64(0);
/// let x = Tensor::from_vec(&[1, 2], vec![1.0, 2.0])?;
/// // A residual connection y = f(x) + x, with f all zeros here so that y = x.
/// let f = Dense::new(2, 2, Init::Zeros, &mut rng)?;
/// let mut residual = Branches::new(Merge::Add).branch("f", f)?.identity();
/// residual.forward(&x, Mode::Eval)?;
/// assert_eq!(residual.output(), &x);
/// // Two heads side by side, concatenated: 3 + 4 features.
/// let mut heads = Branches::new(Merge::Concat)
///     .branch("a", Dense::new(2, 3, Init::He, &mut rng)?)?
///     .branch("b", Dense::new(2, 4, Init::He, &mut rng)?)?;
/// heads.forward(&x, Mode::Eval)?;
/// assert_eq!(heads.output().shape(), &[1, 7]);
/// # Ok(())
/// # }
/// ```
pub struct Branches {
    merge: Merge,
    activation: Option<ActivationKind>,
    branches: Vec<Branch>,
    output: Tensor,
    grad_input: Tensor,
    /// `dy·f'` when an activation follows the merge.
    grad_merged: Tensor,
    /// The channels of the merged gradient that one branch of a concatenation produced.
    grad_branch: Tensor,
    /// The merged output shape, reused so a forward allocates nothing.
    merged_shape: Vec<usize>,
    /// Reused for the prefixed parameter names, so visiting allocates nothing.
    name_buffer: String,
    /// Whether backward produces `∂loss/∂input`.
    input_grad: bool,
}

impl Branches {
    /// No branches yet, merged by `merge`, with no activation after the merge.
    pub fn new(merge: Merge) -> Self {
        Branches {
            merge,
            activation: None,
            branches: Vec::new(),
            output: Tensor::default(),
            grad_input: Tensor::default(),
            grad_merged: Tensor::default(),
            grad_branch: Tensor::default(),
            merged_shape: Vec::new(),
            name_buffer: String::new(),
            input_grad: true,
        }
    }

    /// The same branches with `activation` applied after the merge.
    pub fn with_activation(self, activation: ActivationKind) -> Self {
        Branches { activation: Some(activation), ..self }
    }

    /// Adds the branch `layer`, whose parameters are named `"<name>.<param>"` (or `"<param>"`
    /// when `name` is empty). Errors ([`LayerError::Config`]) if `name` holds a `.` or names
    /// another branch, or if a parameter or buffer name would then appear twice.
    pub fn branch(mut self, name: &str, mut layer: impl Layer + 'static) -> Result<Self> {
        self.check_name(name)?;
        let mut taken = self.tensor_names();
        let mut clash = None;
        let mut record = |tensor: &str| {
            let full = if name.is_empty() { tensor.to_owned() } else { format!("{name}.{tensor}") };
            if taken.contains(&full) {
                clash.get_or_insert(full);
            } else {
                taken.push(full);
            }
        };
        layer.visit_params(&mut |tensor, _| record(tensor));
        layer.visit_buffers(&mut |tensor, _| record(tensor));
        if let Some(clash) = clash {
            return Err(self.config_error("parameter and buffer names that no other branch has", clash));
        }
        layer.set_input_grad(self.input_grad);
        self.branches.push(Branch { name: name.to_owned(), layer: Some(Box::new(layer)) });
        Ok(self)
    }

    /// Adds an identity branch (the shortcut of a residual block): it passes the input on,
    /// and has no parameters.
    pub fn identity(mut self) -> Self {
        self.branches.push(Branch { name: String::new(), layer: None });
        self
    }

    fn check_not_empty(&self) -> Result<()> {
        if self.branches.is_empty() {
            Err(LayerError::State("branches: no branches".into()))
        } else {
            Ok(())
        }
    }

    /// A name for a new branch must be unique among the named branches and hold no `.`.
    fn check_name(&self, name: &str) -> Result<()> {
        let taken = !name.is_empty() && self.branches.iter().any(|branch| branch.name == name);
        if taken || name.contains('.') {
            return Err(self.config_error("a branch name with no '.' that no other branch has", name.into()));
        }
        Ok(())
    }

    /// Every parameter and buffer name, prefixed as visiting gives them.
    fn tensor_names(&mut self) -> Vec<String> {
        let mut names = Vec::new();
        self.visit_params(&mut |name, _| names.push(name.to_owned()));
        self.visit_buffers(&mut |name, _| names.push(name.to_owned()));
        names
    }

    fn config_error(&self, expected: &str, actual: String) -> LayerError {
        LayerError::Config { model: self.name(), expected: expected.into(), actual: format!("{actual:?}") }
    }

    /// The output of branch `index` for `input`.
    fn branch_output<'a>(&'a self, index: usize, input: &'a Tensor) -> &'a Tensor {
        self.branches[index].layer.as_ref().map_or(input, |layer| layer.output())
    }

    /// Writes the merged shape of the branches' outputs into `shape`, or errors naming the
    /// branch that disagrees.
    fn merge_shapes(&self, input: &Tensor, shape: &mut Vec<usize>) -> Result<()> {
        let first = self.branch_output(0, input).shape();
        shape.clear();
        shape.extend_from_slice(first);
        for index in 1..self.branches.len() {
            let other = self.branch_output(index, input).shape();
            let agrees = match self.merge {
                Merge::Add => other == first,
                Merge::Concat => {
                    other.len() == first.len()
                        && other.len() >= 2
                        && other[0] == first[0]
                        && other[2..] == first[2..]
                }
            };
            if !agrees {
                let expected = match self.merge {
                    Merge::Add => format!("{first:?}, the output shape of branch 0"),
                    Merge::Concat => {
                        format!("{first:?} (branch 0's output) in every dimension but 1")
                    }
                };
                return Err(LayerError::Shape {
                    layer: format!("{} (output of branch {index})", self.name()),
                    expected,
                    actual: other.to_vec(),
                });
            }
            if self.merge == Merge::Concat {
                shape[1] += other[1];
            }
        }
        Ok(())
    }
}

/// What `branch` returns as its input's gradient for an output gradient `merged`: its
/// layer's input gradient, or `merged` itself for the identity.
fn branch_contribution<'a>(branch: &'a Branch, merged: &'a Tensor) -> &'a Tensor {
    branch.layer.as_ref().map_or(merged, |layer| layer.grad_input())
}

/// `(outer, width)` of a tensor concatenated on dimension 1: `outer` = the size of dimension
/// 0, `width` = the values of one sample (dimension 1 and all after it).
fn concat_blocks(shape: &[usize]) -> (usize, usize) {
    let outer = shape.first().copied().unwrap_or(0);
    let width = shape.iter().skip(1).product();
    (outer, width)
}

impl Layer for Branches {
    fn name(&self) -> String {
        let names: Vec<String> =
            self.branches.iter().map(|b| b.layer.as_ref().map_or("identity".into(), |l| l.name())).collect();
        let merge = match self.merge {
            Merge::Add => "add",
            Merge::Concat => "concat",
        };
        let activation = self.activation.map_or(String::new(), |a| format!(", {}", a.name()));
        format!("branches({merge}{activation})[{}]", names.join(", "))
    }

    fn forward(&mut self, input: &Tensor, mode: Mode) -> Result<()> {
        self.check_not_empty()?;
        for branch in &mut self.branches {
            if let Some(layer) = &mut branch.layer {
                layer.forward(input, mode)?;
            }
        }
        let mut shape = std::mem::take(&mut self.merged_shape);
        let merged = self.merge_shapes(input, &mut shape);
        self.merged_shape = shape;
        merged?;
        let shape = &self.merged_shape;
        let mut output = std::mem::take(&mut self.output);
        output.resize(shape);
        let fused_relu = self.merge == Merge::Add
            && self.branches.len() == 2
            && self.activation == Some(ActivationKind::Relu);
        match self.merge {
            Merge::Add if self.branches.len() == 1 => {
                output.data_mut().copy_from_slice(self.branch_output(0, input).data());
            }
            Merge::Add => {
                // The first two in one pass, with a ReLU after them when it ends the block.
                let (first, second) =
                    (self.branch_output(0, input).data(), self.branch_output(1, input).data());
                if fused_relu {
                    add_relu_forward(first, second, output.data_mut())?;
                } else {
                    add_forward(first, second, output.data_mut())?;
                }
                for index in 2..self.branches.len() {
                    add_inplace(output.data_mut(), self.branch_output(index, input).data())?;
                }
            }
            Merge::Concat => {
                // Sample by sample, each branch's channels follow the previous branch's.
                let (outer, width) = concat_blocks(shape);
                let mut offset = 0;
                for index in 0..self.branches.len() {
                    let part = self.branch_output(index, input);
                    let (_, part_width) = concat_blocks(part.shape());
                    for sample in 0..outer {
                        let to = sample * width + offset;
                        output.data_mut()[to..to + part_width]
                            .copy_from_slice(&part.data()[sample * part_width..(sample + 1) * part_width]);
                    }
                    offset += part_width;
                }
            }
        }
        if let Some(activation) = self.activation.filter(|_| !fused_relu) {
            activation.forward_inplace(output.data_mut())?;
        }
        self.output = output;
        Ok(())
    }

    fn backward(&mut self, input: &Tensor, grad_output: &Tensor) -> Result<()> {
        ensure_forward_ran(&self.output, || self.name())?;
        self.check_not_empty()?;
        check_backward_shapes(|| self.name(), self.output.shape(), grad_output, None)?;
        grad_before_activation(self.activation, &self.output, grad_output, &mut self.grad_merged)?;
        // `dz`, the gradient of the merged (pre-activation) output.
        let merged = if self.activation.is_some() { &self.grad_merged } else { grad_output };
        let mut grad_input = std::mem::take(&mut self.grad_input);
        grad_input.resize(if self.input_grad { input.shape() } else { &[0] });
        if self.merge == Merge::Add && self.branches.len() >= 2 {
            // Every branch gets `dz`; the input's gradient is the sum of what they return,
            // the first two added in one pass once both are done.
            for layer in self.branches.iter_mut().filter_map(|branch| branch.layer.as_mut()) {
                layer.backward(input, merged)?;
            }
            if self.input_grad {
                let contribution = |index: usize| branch_contribution(&self.branches[index], merged);
                let (first, second) = (contribution(0), contribution(1));
                add_forward(first.data(), second.data(), grad_input.data_mut())?;
                for index in 2..self.branches.len() {
                    add_inplace(grad_input.data_mut(), contribution(index).data())?;
                }
            }
            self.grad_input = grad_input;
            return Ok(());
        }
        let (outer, width) = concat_blocks(merged.shape());
        let mut offset = 0;
        for (index, branch) in self.branches.iter_mut().enumerate() {
            // The part of `dz` this branch's output received.
            let branch_grad = match self.merge {
                Merge::Add => merged,
                Merge::Concat => {
                    let shape = branch.layer.as_ref().map_or(input.shape(), |layer| layer.output().shape());
                    let (_, part_width) = concat_blocks(shape);
                    self.grad_branch.resize(shape);
                    for sample in 0..outer {
                        let from = sample * width + offset;
                        self.grad_branch.data_mut()[sample * part_width..(sample + 1) * part_width]
                            .copy_from_slice(&merged.data()[from..from + part_width]);
                    }
                    offset += part_width;
                    &self.grad_branch
                }
            };
            // What this branch adds to the input gradient.
            let contribution = match &mut branch.layer {
                Some(layer) => {
                    layer.backward(input, branch_grad)?;
                    layer.grad_input()
                }
                None => branch_grad,
            };
            if self.input_grad {
                if index == 0 {
                    grad_input.data_mut().copy_from_slice(contribution.data());
                } else {
                    add_inplace(grad_input.data_mut(), contribution.data())?;
                }
            }
        }
        self.grad_input = grad_input;
        Ok(())
    }

    fn output(&self) -> &Tensor {
        &self.output
    }

    fn grad_input(&self) -> &Tensor {
        &self.grad_input
    }

    fn set_input_grad(&mut self, needed: bool) {
        self.input_grad = needed;
        for layer in self.branches.iter_mut().filter_map(|branch| branch.layer.as_mut()) {
            layer.set_input_grad(needed);
        }
    }

    fn set_batch_offset(&mut self, rows: usize) {
        for layer in self.branches.iter_mut().filter_map(|branch| branch.layer.as_mut()) {
            layer.set_batch_offset(rows);
        }
    }

    fn synchronize_batch_norm(&mut self, group: &Arc<dyn Collective>) {
        for layer in self.branches.iter_mut().filter_map(|branch| branch.layer.as_mut()) {
            layer.synchronize_batch_norm(group);
        }
    }

    fn visit_params(&mut self, visit: &mut dyn FnMut(&str, &mut Param)) {
        let buffer = &mut self.name_buffer;
        for branch in &mut self.branches {
            let Some(layer) = &mut branch.layer else { continue };
            if branch.name.is_empty() {
                layer.visit_params(visit);
            } else {
                layer.visit_params(&mut |name, param| visit(prefixed(buffer, &branch.name, name), param));
            }
        }
    }

    fn visit_buffers(&mut self, visit: &mut dyn FnMut(&str, &mut Tensor)) {
        let buffer = &mut self.name_buffer;
        for branch in &mut self.branches {
            let Some(layer) = &mut branch.layer else { continue };
            if branch.name.is_empty() {
                layer.visit_buffers(visit);
            } else {
                layer.visit_buffers(&mut |name, tensor| visit(prefixed(buffer, &branch.name, name), tensor));
            }
        }
    }
}
