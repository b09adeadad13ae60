//! # keel-kernels
//!
//! The numerics of keel: SIMD, multi-threaded CPU kernels for deep learning on row-major
//! `f32` slices. Slices in, slices out, shapes documented on every function, no hidden
//! allocation in hot paths (callers pass workspace), PyTorch semantics. `keel-layers` builds
//! layers and training on these kernels; this crate stands alone as a backend for another
//! framework.
//!
//! ## Where to start
//!
//! | you want | call | module |
//! | --- | --- | --- |
//! | a matrix product | [`sgemm`] with a [`gemm::GemmShape`] (and [`gemm::sgemm_fused`] for bias + activation) | [`gemm`] |
//! | a convolution | [`conv::conv2d_forward`], [`conv::conv2d_backward_data`], [`conv::conv2d_backward_weight`] with a [`conv::Conv2dShape`] | [`conv`] |
//! | pooling | max / average / global-average pooling, forward and backward | [`pool`] |
//! | activations, softmax | `relu`, `leaky_relu`, `sigmoid`, `tanh` forward / backward, softmax, log-softmax | [`activation`] |
//! | a loss and its gradient | softmax cross-entropy, BCE with logits, MSE | [`loss`] |
//! | recurrent cells | LSTM, GRU and plain RNN cells, a sequence's input projection | [`rnn`] |
//! | normalisation, dropout | batch norm (train, eval, backward), inverted dropout | [`norm`] |
//! | an optimizer step | SGD, RMSprop, Adam / AdamW, gradient clipping | [`optim`] |
//! | word vectors | embedding gather / scatter, a skip-gram step, a GloVe step, cosine similarity | [`embed`] |
//! | to choose the instruction set or the threads | [`isa::with_isa`], `KEEL_ISA`; [`parallel::set_max_threads`] | [`isa`], [`parallel`] |
//!
//! ```
//! use keel_kernels::gemm::{sgemm, GemmShape};
//! use keel_kernels::loss::softmax_cross_entropy_forward;
//!
//! # fn main() -> keel_kernels::Result<()> {
//! // Logits (batch 2, classes 3) = X (2, 4) · W (4, 3), then the mean cross-entropy.
//! let x = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0];
//! let w = [2.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0];
//! let mut logits = [0.0; 6];
//! sgemm(&GemmShape::new(2, 3, 4), 1.0, &x, &w, 0.0, &mut logits)?;
//! assert_eq!(logits, [2.0, 0.0, 0.0, 0.0, 2.0, 0.0]);
//!
//! // The probabilities (2, 3) are overwritten; backward reads them.
//! let mut probs = [0.0; 6];
//! let loss = softmax_cross_entropy_forward(2, 3, &logits, &[0, 1], &mut probs)?;
//! let expected = (1.0 + 2.0 * (-2.0f32).exp()).ln(); // -ln softmax of the right class
//! assert!((loss - expected).abs() < 1e-6);
//! # Ok(())
//! # }
//! ```
//!
//! ## Conventions shared by every kernel
//!
//! - **Checked API**: each public kernel checks slice lengths and shape arguments and returns
//!   a [`KernelError`] naming the argument, what was expected and what came. A kernel never
//!   reads or writes out of bounds on input its checked API accepted.
//! - **Overwrite vs accumulate**: outputs and input gradients are overwritten (never read,
//!   so NaN already in them does not leak); parameter gradients are accumulated (`+=`), so
//!   a training step zeroes them once and several backward passes may add to them.
//! - **One instruction set per call**: [`isa::current_isa`] (forced by [`isa::with_isa`] or
//!   `KEEL_ISA`, else the best the CPU has) is resolved once per call and reaches every
//!   path; a plain `cargo build --release` needs no `target-cpu` flag.
//! - **References**: each kernel family has a `reference` module of plain scalar loops, the
//!   ground truth its fast path is tested against and a baseline in the benches.
//! - **Threads**: parallel parts run on the caller's rayon pool, only above the thresholds in
//!   [`parallel`]; the same thread count gives the same bits.
//! - **Features**: `blas` routes [`sgemm`] to the system's `cblas_sgemm`
//!   ([`gemm::native::sgemm`] keeps keel's own); the build script links the library.

pub mod activation;
pub mod cache;
pub mod conv;
pub mod embed;
pub mod error;
pub mod gemm;
pub mod isa;
pub mod loss;
pub mod norm;
pub mod optim;
pub mod parallel;
pub mod pool;
pub mod rnn;
pub mod simd;
#[cfg(target_arch = "x86_64")]
mod transpose16;

pub use error::{KernelError, Result};
pub use gemm::{sgemm, Transpose};
