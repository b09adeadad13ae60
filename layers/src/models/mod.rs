//! Ready-made models built from the layers.

mod lenet5;

pub use lenet5::lenet5;
