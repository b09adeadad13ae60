//! Saving and loading a model's parameters and buffers as a safetensors file.
//!
//! Every tensor goes under the stable name [`Layer::visit_params`] and
//! [`Layer::visit_buffers`] give it (`"0.weight"`, `"1.running_mean"`, ...), as little-endian
//! `F32` with its shape: the layout of a PyTorch `state_dict` saved with
//! `safetensors.torch.save_file`, so the same `nn.Sequential` in PyTorch reads the file
//! (PyTorch's batch norm also counts `num_batches_tracked`, which keel does not keep: load
//! there with `strict=False` when the model has batch norm).

use std::collections::BTreeSet;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{LayerError, Result};
use crate::nn::Layer;
use crate::tensor::Tensor;

fn checkpoint_error(path: &Path, detail: impl Into<String>) -> LayerError {
    LayerError::Checkpoint { path: path.display().to_string(), detail: detail.into() }
}

/// Writes every parameter and buffer of `model` to `path` (created or replaced).
///
/// Errors ([`LayerError::Checkpoint`]) if the file cannot be written.
pub fn save_safetensors(model: &mut dyn Layer, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    // Names, shapes and little-endian bytes, in the model's order (names are unique).
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut record = |name: &str, tensor: &Tensor| {
        let bytes = tensor.data().iter().flat_map(|v| v.to_le_bytes()).collect();
        tensors.push((name.to_owned(), tensor.shape().to_vec(), bytes));
    };
    model.visit_params(&mut |name, param| record(name, &param.value));
    model.visit_buffers(&mut |name, buffer| record(name, buffer));
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|view| (name.as_str(), view))
                .map_err(|e| checkpoint_error(path, format!("tensor {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize_to_file(views, None, path).map_err(|e| checkpoint_error(path, e.to_string()))
}

/// Reads `path` into the parameters and buffers of `model`, which must match it exactly (as
/// PyTorch's strict `load_state_dict`): every tensor of the model present, as `F32` with the
/// same shape, and no other tensor in the file. The gradients and optimizer state are left
/// as they are.
///
/// Errors ([`LayerError::Checkpoint`]) name the first missing, unexpected, mistyped or
/// misshapen tensor, or the I/O or format failure; on error the model may be partly loaded.
pub fn load_safetensors(model: &mut dyn Layer, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| checkpoint_error(path, e.to_string()))?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| checkpoint_error(path, e.to_string()))?;
    let mut unused: BTreeSet<String> = file.names().into_iter().map(str::to_owned).collect();
    let mut first_error = None;
    let mut load = |name: &str, tensor: &mut Tensor| {
        if first_error.is_some() {
            return;
        }
        unused.remove(name);
        if let Err(detail) = read_tensor(&file, name, tensor) {
            first_error = Some(checkpoint_error(path, detail));
        }
    };
    model.visit_params(&mut |name, param| load(name, &mut param.value));
    model.visit_buffers(&mut |name, buffer| load(name, buffer));
    if let Some(error) = first_error {
        return Err(error);
    }
    match unused.first() {
        Some(name) => Err(checkpoint_error(path, format!("tensor {name} is not in the model"))),
        None => Ok(()),
    }
}

/// Copies tensor `name` of `file` into `tensor`, if it is there as `F32` of the same shape.
fn read_tensor(file: &SafeTensors, name: &str, tensor: &mut Tensor) -> core::result::Result<(), String> {
    let view = file.tensor(name).map_err(|_| format!("tensor {name} of the model is missing"))?;
    if view.dtype() != Dtype::F32 {
        return Err(format!("tensor {name}: expected F32, got {:?}", view.dtype()));
    }
    if view.shape() != tensor.shape() {
        return Err(format!("tensor {name}: expected shape {:?}, got {:?}", tensor.shape(), view.shape()));
    }
    for (value, bytes) in tensor.data_mut().iter_mut().zip(view.data().chunks_exact(4)) {
        *value = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    Ok(())
}
