//! Saving and loading an optimizer's state beside the model's checkpoint, so that training
//! resumes with the same bits as if it had not stopped.
//!
//! The file is safetensors: each state tensor under `"<parameter name>.<state name>"`
//! (`"fc.weight.exp_avg"`, `"0.bias.momentum_buffer"`, with PyTorch's state names, see
//! [`OptimizerState`]) as little-endian `F32`, and the optimizer's kind, step count and
//! learning rate in the header's metadata (`"optimizer"`, `"step"`, `"learning_rate"`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{SafeTensors, TensorView};

use super::checkpoint::{check_view, checkpoint_error, read_f32, write_atomically};
use crate::error::{LayerError, Result};
use crate::nn::Layer;
use crate::optim::{Optimizer, OptimizerState};
use crate::tensor::Tensor;

/// Writes the state of `optimizer`, which trains `model`, to `path` (created or replaced),
/// atomically as [`crate::save_safetensors`] does. Save the model with
/// [`crate::save_safetensors`] at the same step to resume from both.
///
/// Errors ([`LayerError::Checkpoint`]) if the file cannot be written, or the optimizer holds
/// state for more parameters than `model` has.
///
/// ```
/// use keel_layers::kernels::optim::AdamConfig;
/// use keel_layers::{load_optimizer_state, save_optimizer_state, Adam, Dense, Init, Layer, Mode, Optimizer, Tensor};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let mut model = Dense::new(3, 2, Init::He, &mut rng).unwrap();
/// let mut adam = Adam::new(AdamConfig::default()).unwrap();
/// let x = Tensor::from_vec(&[1, 3], vec![1.0, 2.0, 3.0]).unwrap();
/// model.forward(&x, Mode::Train).unwrap();
/// model.backward(&x, &Tensor::from_vec(&[1, 2], vec![1.0, -1.0]).unwrap()).unwrap();
/// adam.step(&mut model).unwrap();
///
/// let path = std::env::temp_dir().join(format!("keel_doc_adam_{}.safetensors", std::process::id()));
/// save_optimizer_state(&mut model, &adam, &path).unwrap();
/// let mut resumed = Adam::new(AdamConfig::default()).unwrap();
/// load_optimizer_state(&mut model, &mut resumed, &path).unwrap();
/// assert_eq!(resumed.state(), adam.state());
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn save_optimizer_state(
    model: &mut dyn Layer,
    optimizer: &dyn Optimizer,
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    let state = optimizer.state();
    let mut names = Vec::new();
    model.visit_params(&mut |name, _| names.push(name.to_owned()));
    if state.params.len() > names.len() {
        return Err(checkpoint_error(
            path,
            format!(
                "the optimizer holds state for {} parameters, the model has {}",
                state.params.len(),
                names.len()
            ),
        ));
    }
    let tensors: Vec<(String, Tensor)> = names
        .iter()
        .zip(state.params)
        .flat_map(|(param, named)| {
            named.into_iter().map(move |(slot, tensor)| (format!("{param}.{slot}"), tensor))
        })
        .collect();
    let metadata = HashMap::from([
        (KIND.to_owned(), state.kind),
        (STEP.to_owned(), state.step.to_string()),
        // `Display` of an f64 is the shortest text that parses back to the same value.
        (LEARNING_RATE.to_owned(), state.learning_rate.to_string()),
    ]);
    write_atomically(path, &tensors, Some(metadata))
}

/// Reads the state saved by [`save_optimizer_state`] at `path` into `optimizer`, which
/// trains `model`: every state tensor must belong to a parameter of `model` (by name) and
/// have its shape, either every parameter has state or none (a file saved before the first
/// step), and the state must fit the optimizer's kind and options.
///
/// Errors ([`LayerError::Checkpoint`] for the file and its match with the model,
/// [`LayerError::Config`] for the optimizer's kind and options); on error the optimizer is
/// left as it was. The example of [`save_optimizer_state`] loads its file back.
pub fn load_optimizer_state(
    model: &mut dyn Layer,
    optimizer: &mut dyn Optimizer,
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| checkpoint_error(path, e.to_string()))?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| checkpoint_error(path, e.to_string()))?;
    let (_, header) =
        SafeTensors::read_metadata(&bytes).map_err(|e| checkpoint_error(path, e.to_string()))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let field = |key: &str| {
        metadata.get(key).ok_or_else(|| checkpoint_error(path, format!("no {key:?} in the metadata")))
    };
    let kind = field(KIND)?.clone();
    let step = field(STEP)?.parse::<u64>().map_err(|e| checkpoint_error(path, format!("step: {e}")))?;
    let learning_rate = field(LEARNING_RATE)?
        .parse::<f64>()
        .map_err(|e| checkpoint_error(path, format!("learning_rate: {e}")))?;

    // The file's tensors by parameter name, then state name.
    let mut by_param: BTreeMap<String, Vec<(String, TensorView<'_>)>> = BTreeMap::new();
    for (name, view) in file.tensors() {
        let Some((param, slot)) = name.rsplit_once('.') else {
            return Err(checkpoint_error(path, format!("tensor {name} is not named <parameter>.<state>")));
        };
        by_param.entry(param.to_owned()).or_default().push((slot.to_owned(), view));
    }
    let mut params = Vec::new();
    let mut first_error = None;
    model.visit_params(&mut |name, param| {
        let Some(views) = by_param.remove(name) else {
            params.push(Vec::new());
            return;
        };
        let mut named = Vec::new();
        for (slot, view) in views {
            let mut tensor = Tensor::zeros(param.value.shape());
            match check_view(&view, &format!("{name}.{slot}"), &param.value) {
                Ok(()) => read_f32(&view, tensor.data_mut()),
                Err(detail) => {
                    first_error.get_or_insert(detail);
                }
            }
            named.push((slot, tensor));
        }
        params.push(named);
    });
    if let Some(detail) = first_error {
        return Err(checkpoint_error(path, detail));
    }
    if let Some((param, _)) = by_param.into_iter().next() {
        return Err(checkpoint_error(
            path,
            format!("state for {param}, which is not a parameter of the model"),
        ));
    }
    let with_state = params.iter().filter(|named| !named.is_empty()).count();
    if with_state == 0 {
        params.clear();
    } else if with_state < params.len() {
        let mut names = Vec::new();
        model.visit_params(&mut |name, _| names.push(name.to_owned()));
        let missing =
            params.iter().position(Vec::is_empty).map(|index| names[index].clone()).unwrap_or_default();
        return Err(checkpoint_error(
            path,
            format!("no state for parameter {missing}, while others have state"),
        ));
    }
    optimizer.load_state(OptimizerState { kind, step, learning_rate, params }).map_err(|error| match error {
        LayerError::Config { model, expected, actual } => LayerError::Config {
            model: format!("{model} optimizer (from {})", path.display()),
            expected,
            actual,
        },
        other => other,
    })
}

/// Metadata keys.
const KIND: &str = "optimizer";
const STEP: &str = "step";
const LEARNING_RATE: &str = "learning_rate";
