//! Data: labelled samples ([`Dataset`], labelled by class indices or by rows of values,
//! see [`Labels`]) read from the bundled CSV files or MNIST's IDX files ([`idx`]),
//! mini-batches over them ([`Batches`]) and a seeded [`train_dev_test_split`].

mod batches;
mod dataset;
pub mod idx;
mod labels;
mod split;

pub use batches::Batches;
pub use dataset::Dataset;
pub use labels::Labels;
pub use split::train_dev_test_split;
