//! Networks: the [`Layer`] trait with its [`Param`]s and [`Mode`], the layers
//! (dense, embedding, convolution, pooling, batch norm, dropout, activation, flatten,
//! recurrent, their many-to-one heads and the many-to-many [`FlattenSteps`], with step-by-step
//! decoding in [`recurrent::sampling`] and [`recurrent::beam`]), [`Sequential`] to chain them, [`freeze`] and [`unfreeze`] by name, [`Branches`] to run
//! layers side by side on one input (residual and Inception blocks), and weight
//! [`Init`]. The recurrent layers' module, [`recurrent`], is public for its design notes; its
//! types are re-exported here, as are those of [`attention`] (scaled dot-product attention and
//! its masks).

mod activation;
pub mod attention;
mod batchnorm;
mod branches;
mod conv2d;
mod dense;
mod dropout;
mod embedding;
mod flatten;
mod flatten_steps;
mod freeze;
mod init;
mod layer;
mod pool;
pub mod recurrent;
mod reshape;
mod sequence_pool;
mod sequential;

pub use activation::{Activation, ActivationKind};
pub use attention::{
    scaled_dot_product_attention, AdditiveAttention, AttentionMask, GlobalAttention,
    ScaledDotProductAttention,
};
pub use batchnorm::BatchNorm;
pub use branches::{Branches, Merge};
pub use conv2d::{Conv2d, Conv2dConfig};
pub use dense::Dense;
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use flatten::Flatten;
pub use flatten_steps::FlattenSteps;
pub use freeze::{freeze, param_counts, unfreeze, ParamCounts};
pub use init::Init;
pub(crate) use layer::{backward_before_forward, ensure_forward_ran};
pub use layer::{Layer, Mode, Param};
pub use pool::{AvgPool2d, GlobalAvgPool2d, MaxPool2d, PoolWindow};
pub use recurrent::{
    argmax, sample, select_beams, softmax_with_temperature, BeamSearch, Decoding, Gru, GruConfig, Hypothesis,
    Lstm, LstmConfig, Nonlinearity, RecurrentConfig, Rnn, RnnConfig, Sampler,
};
pub use sequence_pool::{LastStep, MeanOverTime};
pub use sequential::Sequential;
