//! Saving and loading a model's parameters and buffers as a safetensors file.
//!
//! Every tensor goes under the stable name [`Layer::visit_params`] and
//! [`Layer::visit_buffers`] give it (`"0.weight"`, `"1.running_mean"`, ...), as little-endian
//! `F32` with its shape: the layout of a PyTorch `state_dict` saved with
//! `safetensors.torch.save_file`, so the same model in PyTorch reads the file.
//!
//! PyTorch's batch norm also keeps `num_batches_tracked`, a count of training batches (an
//! `I64` scalar in its `state_dict`) that keel does not keep: only a batch norm built with
//! `momentum=None` reads it, and keel's momentum is a number. Both ways load strictly still:
//! - a keel file (without the counters) loads into the PyTorch twin with
//!   `load_state_dict(safetensors.torch.load_file(path), strict=True)`: a `state_dict`
//!   without version metadata, as any read from safetensors, counts as one written before
//!   PyTorch had the counter, and its batch norms keep their own count
//!   (`_NormBase._load_from_state_dict`);
//! - a PyTorch file (with them) loads into the keel model: a file tensor
//!   `<p>num_batches_tracked` that is an `I64` scalar, beside the model's batch-norm buffer
//!   `<p>running_mean`, is accepted and ignored (neither loaded nor unexpected).
//!
//! `tests/fixtures/pytorch/` (at the repository's root) holds both kinds of file and the
//! script that makes and checks them.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{LayerError, Result};
use crate::nn::Layer;
use crate::tensor::Tensor;

pub(crate) fn checkpoint_error(path: &Path, detail: impl Into<String>) -> LayerError {
    LayerError::Checkpoint { path: path.display().to_string(), detail: detail.into() }
}

/// Writes every parameter and buffer of `model` to `path` (created or replaced), atomically:
/// the file is written beside `path` under a temporary name, then renamed over it, so a
/// failed save leaves any previous file at `path` as it was (and no temporary file behind).
///
/// The file has no `num_batches_tracked` (keel does not count batches); PyTorch's
/// `load_state_dict(safetensors.torch.load_file(path), strict=True)` accepts it without them
/// (a state_dict without version metadata keeps its batch norms' own counts).
///
/// Errors ([`LayerError::Checkpoint`]) if the file cannot be written.
///
/// ```
/// use keel_layers::{load_safetensors, save_safetensors, Dense, Init, SeedableRng, StdRng};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let path = std::env::temp_dir().join(format!("dense-{}.safetensors", std::process::id()));
/// let mut trained = Dense::new(3, 2, Init::He, &mut StdRng::seed_from_u64(1))?;
/// save_safetensors(&mut trained, &path)?;
///
/// let mut restored = Dense::new(3, 2, Init::He, &mut StdRng::seed_from_u64(2))?;
/// load_safetensors(&mut restored, &path)?;
/// assert_eq!(restored.weight.value, trained.weight.value);
/// // Another shape does not load, and leaves the model as it was.
/// let mut wider = Dense::new(3, 4, Init::Zeros, &mut StdRng::seed_from_u64(3))?;
/// assert!(load_safetensors(&mut wider, &path).is_err());
/// assert!(wider.weight.value.data().iter().all(|&w| w == 0.0));
/// # std::fs::remove_file(&path)?;
/// # Ok(())
/// # }
/// ```
pub fn save_safetensors(model: &mut dyn Layer, path: impl AsRef<Path>) -> Result<()> {
    // Names and tensors, in the model's order (names are unique).
    let mut tensors: Vec<(String, Tensor)> = Vec::new();
    model.visit_params(&mut |name, param| tensors.push((name.to_owned(), param.value.clone())));
    model.visit_buffers(&mut |name, buffer| tensors.push((name.to_owned(), buffer.clone())));
    write_atomically(path.as_ref(), &tensors, None)
}

/// Writes `tensors` (name, values) as little-endian `F32` with `metadata` to a safetensors
/// file at `path`, atomically: the file is written beside `path` under a temporary name,
/// then renamed over it, so a failed write leaves any previous file at `path` as it was (and
/// no temporary file behind).
pub(crate) fn write_atomically(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, tensor)| tensor.data().iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, tensor), bytes)| {
            TensorView::new(Dtype::F32, tensor.shape().to_vec(), bytes)
                .map(|view| (name.as_str(), view))
                .map_err(|e| checkpoint_error(path, format!("tensor {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let file_name = path.file_name().ok_or_else(|| checkpoint_error(path, "the path names no file"))?;
    let mut temporary_name = file_name.to_os_string();
    temporary_name.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(temporary_name);
    let written = safetensors::serialize_to_file(views, metadata, &temporary)
        .map_err(|e| e.to_string())
        .and_then(|()| std::fs::rename(&temporary, path).map_err(|e| e.to_string()));
    written.map_err(|detail| {
        // The temporary file may not exist (a failed create): nothing to report then.
        let _ = std::fs::remove_file(&temporary);
        checkpoint_error(path, detail)
    })
}

/// Which tensors of a file go where: options of [`load_safetensors_with`].
///
/// By default (`LoadOptions::default()`) the load is **strict** (every tensor of the model
/// found in the file, and every tensor of the file used), and a model tensor named `n` is
/// read from the file's tensor `n`. A name map reads it from another name, or skips it.
///
/// ```
/// use keel_layers::LoadOptions;
///
/// // A backbone saved on its own ("0.weight", ...) into the "features." part of a model.
/// let options = LoadOptions::default().model_prefix("features.").non_strict();
/// assert_eq!(options.file_name("features.0.weight").as_deref(), Some("0.weight"));
/// assert_eq!(options.file_name("classifier.0.weight"), None);
/// ```
pub struct LoadOptions {
    strict: bool,
    map: NameMap,
}

/// From a model tensor's name to the file tensor it is read from (`None`: not read).
type NameMap = Box<dyn Fn(&str) -> Option<String>>;

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { strict: true, map: Box::new(|name| Some(name.to_owned())) }
    }
}

impl LoadOptions {
    /// Loads what matches and reports the rest ([`LoadReport`]) instead of failing on a
    /// missing or unexpected tensor (a tensor of the wrong type or shape is still an error).
    pub fn non_strict(self) -> Self {
        LoadOptions { strict: false, ..self }
    }

    /// Reads the model tensor `n` from the file tensor `map(n)`, or skips it when `map`
    /// gives `None` (it then counts neither as loaded nor as missing).
    pub fn name_map(self, map: impl Fn(&str) -> Option<String> + 'static) -> Self {
        LoadOptions { map: Box::new(map), ..self }
    }

    /// Loads only the model tensors whose names start with `prefix`, each from the file
    /// tensor named without it: a sub-model's file (a backbone) into a bigger model.
    pub fn model_prefix(self, prefix: &str) -> Self {
        let prefix = prefix.to_owned();
        self.name_map(move |name| name.strip_prefix(prefix.as_str()).map(str::to_owned))
    }

    /// Reads every model tensor `n` from the file tensor `prefix + n`: a sub-model from the
    /// file of a bigger model (a backbone out of a whole classifier).
    pub fn file_prefix(self, prefix: &str) -> Self {
        let prefix = prefix.to_owned();
        self.name_map(move |name| Some(format!("{prefix}{name}")))
    }

    /// The file tensor the model tensor `model_name` is read from, if any.
    pub fn file_name(&self, model_name: &str) -> Option<String> {
        (self.map)(model_name)
    }
}

/// What a [`load_safetensors_with`] did: model tensor names (as the model calls them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Model tensors read from the file.
    pub loaded: Vec<String>,
    /// Model tensors the name map sent to the file that the file does not have (left as
    /// they were; only a non-strict load gets this far with any).
    pub missing: Vec<String>,
    /// File tensors no model tensor was read from (file names), but for PyTorch's batch-norm
    /// counters beside the model's batch norms, which are accepted and ignored.
    pub unexpected: Vec<String>,
}

/// Reads `path` into the parameters and buffers of `model`, which must match it exactly (as
/// PyTorch's strict `load_state_dict`): every tensor of the model present, as `F32` with the
/// same shape, and no other tensor in the file but PyTorch's batch-norm counters: a file tensor
/// `<p>num_batches_tracked` that is an `I64` scalar, beside the model's batch-norm buffer
/// `<p>running_mean`, is accepted and ignored (keel's batch norm does not count batches; in
/// PyTorch only a batch norm with `momentum=None` reads the count). The gradients and optimizer state are left
/// as they are. The example of [`save_safetensors`] loads its file back.
///
/// Errors ([`LayerError::Checkpoint`]) name the first missing, unexpected, mistyped or
/// misshapen tensor, or the I/O or format failure; on error the model is left exactly as it
/// was (nothing is written to it unless the whole load succeeds).
pub fn load_safetensors(model: &mut dyn Layer, path: impl AsRef<Path>) -> Result<()> {
    load_safetensors_with(model, path, &LoadOptions::default()).map(|_| ())
}

/// [`load_safetensors`] with [`LoadOptions`]: a name map or prefix, and a non-strict mode
/// that loads what matches and returns what was missing and unexpected.
///
/// Errors as [`load_safetensors`] (a missing or unexpected tensor only when strict); on
/// error nothing is written to the model.
///
/// ```
/// use keel_layers::{load_safetensors_with, save_safetensors, Dense, Init, Layer, LoadOptions};
/// use keel_layers::{SeedableRng, Sequential, StdRng};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut rng = StdRng::seed_from_u64(0);
/// let path = std::env::temp_dir().join(format!("backbone-{}.safetensors", std::process::id()));
/// let mut backbone = Dense::new(4, 8, Init::He, &mut rng)?;
/// save_safetensors(&mut backbone, &path)?; // "weight", "bias"
/// // The saved layer as child "0" of a model with a new head "1".
/// let mut model = Sequential::new()
///     .push(Dense::new(4, 8, Init::He, &mut rng)?)
///     .push(Dense::new(8, 3, Init::He, &mut rng)?);
/// let report = load_safetensors_with(&mut model, &path, &LoadOptions::default().model_prefix("0."))?;
/// assert_eq!(report.loaded, ["0.weight", "0.bias"]);
/// model.visit_params(&mut |name, param| {
///     if name == "0.weight" {
///         assert_eq!(param.value, backbone.weight.value);
///     }
/// });
/// # std::fs::remove_file(&path)?;
/// # Ok(())
/// # }
/// ```
pub fn load_safetensors_with(
    model: &mut dyn Layer,
    path: impl AsRef<Path>,
    options: &LoadOptions,
) -> Result<LoadReport> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| checkpoint_error(path, e.to_string()))?;
    let file =
        SafeTensors::deserialize(&bytes).map_err(|e| checkpoint_error(path, unreadable(&bytes, &e)))?;
    let mut unused: BTreeSet<String> = file.names().into_iter().map(str::to_owned).collect();
    // First pass: check every mapped tensor, write nothing.
    let mut report = LoadReport::default();
    let mut first_error = None;
    let mut check = |name: &str, tensor: &Tensor| {
        let Some(file_name) = options.file_name(name) else { return };
        match file.tensor(&file_name) {
            Err(_) => report.missing.push(name.to_owned()),
            Ok(view) => {
                unused.remove(&file_name);
                match check_view(&view, &file_name, tensor) {
                    Ok(()) => report.loaded.push(name.to_owned()),
                    Err(detail) => {
                        first_error.get_or_insert(detail);
                    }
                }
            }
        }
    };
    model.visit_params(&mut |name, param| check(name, &param.value));
    model.visit_buffers(&mut |name, buffer| check(name, buffer));
    // PyTorch's batch counter beside a batch norm's running mean: accepted, not read.
    model.visit_buffers(&mut |name, _| {
        let Some(file_name) = is_running_mean(name).then(|| options.file_name(name)).flatten() else {
            return;
        };
        let Some(file_prefix) = file_name.strip_suffix("running_mean") else { return };
        let counter = format!("{file_prefix}num_batches_tracked");
        let Ok(view) = file.tensor(&counter) else { return };
        if view.dtype() == Dtype::I64 && view.shape().is_empty() {
            unused.remove(&counter);
        } else {
            first_error.get_or_insert(format!(
                "tensor {counter}: expected PyTorch's batch counter, an I64 scalar, got {:?} of shape {:?}",
                view.dtype(),
                view.shape()
            ));
        }
    });
    report.unexpected = unused.into_iter().collect();
    if let Some(detail) = first_error {
        return Err(checkpoint_error(path, detail));
    }
    if options.strict {
        if let Some(name) = report.missing.first() {
            let file_name = options.file_name(name).unwrap_or_default();
            return Err(checkpoint_error(path, format!("tensor {file_name} of the model is missing")));
        }
        if let Some(name) = report.unexpected.first() {
            return Err(checkpoint_error(path, format!("tensor {name} is not in the model")));
        }
    }
    // Second pass: every tensor checked, copy them in.
    let copy = |name: &str, tensor: &mut Tensor| {
        let view = options.file_name(name).and_then(|file_name| file.tensor(&file_name).ok());
        if let Some(view) = view {
            read_f32(&view, tensor.data_mut());
        }
    };
    model.visit_params(&mut |name, param| copy(name, &mut param.value));
    model.visit_buffers(&mut |name, buffer| copy(name, buffer));
    Ok(report)
}

/// Whether a model tensor is a batch norm's running mean (`"running_mean"` or
/// `"<p>.running_mean"`), beside which PyTorch saves `num_batches_tracked`.
fn is_running_mean(name: &str) -> bool {
    name.strip_suffix("running_mean").is_some_and(|prefix| prefix.is_empty() || prefix.ends_with('.'))
}

/// Whether the file tensor `view` (named `name`) can be read into `tensor`: `F32` of the same
/// shape.
pub(crate) fn check_view(
    view: &TensorView<'_>,
    name: &str,
    tensor: &Tensor,
) -> core::result::Result<(), String> {
    if view.dtype() != Dtype::F32 {
        return Err(format!("tensor {name}: expected F32, got {:?}", view.dtype()));
    }
    if view.shape() != tensor.shape() {
        return Err(format!("tensor {name}: expected shape {:?}, got {:?}", tensor.shape(), view.shape()));
    }
    Ok(())
}

/// Copies the little-endian `F32` values of `view` (checked by [`check_view`]) into `values`.
pub(crate) fn read_f32(view: &TensorView<'_>, values: &mut [f32]) {
    for (value, bytes) in values.iter_mut().zip(view.data().chunks_exact(4)) {
        *value = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
}

/// Why `bytes` are not a safetensors file, in words: a file cut short says so, with the
/// lengths its 8-byte header length implies.
fn unreadable(bytes: &[u8], error: &dyn std::fmt::Display) -> String {
    let len = bytes.len();
    match bytes.first_chunk::<8>().map(|n| u64::from_le_bytes(*n)) {
        None => format!("truncated: {len} bytes, fewer than the 8 of the header's length"),
        Some(n) if n > (len - 8) as u64 => {
            format!("truncated: the header's length says {n} bytes of metadata, {} bytes follow it", len - 8)
        }
        Some(_) => format!("{error}: truncated, or not a safetensors file ({len} bytes)"),
    }
}
