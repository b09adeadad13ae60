//! Training: [`fit`] a model (progress bar, per-epoch log, learning-rate schedule, early
//! stopping; [`fit_with`] its [`Callback`]s), [`evaluate`] it and [`predict`] with it (outputs, [`predict_proba`],
//! [`predict_classes`]); what `fit` reports ([`History`]) and its learning
//! curves ([`plot_curves`]); heat maps ([`plot_heatmap`]: attention weights);
//! [`gradcheck`](gradcheck::gradcheck) for any layer or model;
//! safetensors checkpoints of a model and of its optimizer ([`save_optimizer_state`]).

mod callbacks;
mod checkpoint;
mod curves;
mod evaluate;
mod fit;
mod gradcheck;
mod heatmap;
mod history;
mod optimizer_checkpoint;
mod predict;

pub use callbacks::{Callback, Control, EpochLog, LogTarget, Progress, StepEnd};
pub use checkpoint::{load_safetensors, load_safetensors_with, save_safetensors, LoadOptions, LoadReport};
pub use curves::{plot_curves, plot_series};
pub use evaluate::evaluate;
pub use fit::{fit, fit_with, FitConfig};
pub use gradcheck::{gradcheck, gradcheck_params, relative_error, GradcheckReport};
pub use heatmap::plot_heatmap;
pub use history::{EpochMetrics, Evaluation, History};
pub use optimizer_checkpoint::{load_optimizer_state, save_optimizer_state};
pub use predict::{predict, predict_classes, predict_proba};
