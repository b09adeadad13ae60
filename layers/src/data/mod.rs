//! Data: labelled samples ([`Dataset`], labelled by class indices or by rows of values,
//! see [`Labels`]) read from CSV files ([`CsvReader`]: header rows, delimiters, a label column
//! by name or position, class names, regression targets) or MNIST's IDX files ([`idx`]);
//! preprocessing fitted on the training set and applied to every split ([`Scaler`] per
//! feature, [`OneHot`] for categorical columns); mini-batches ([`Batches`]); a seeded
//! [`train_dev_test_split`] and its class-stratified version [`stratified_split`]; seeded
//! image augmentation of training batches ([`augment`]: [`Augment`], [`Augmenter`]).

pub mod augment;
mod batches;
mod csv;
mod dataset;
pub mod idx;
mod labels;
mod one_hot;
mod scaler;
mod source;
mod split;
mod stratified;

pub use augment::{Augment, Augmenter, Elastic};
pub use batches::Batches;
pub use csv::{Column, CsvData, CsvReader, MAX_CLASS_INDEX};
pub use dataset::Dataset;
pub use labels::Labels;
pub use one_hot::OneHot;
pub use scaler::{Scaler, ZeroVariance};
pub use split::train_dev_test_split;
pub use stratified::{stratified_split, SplitIndices};
