//! Fused activations: element-wise sigmoid, tanh, ReLU and leaky ReLU; row-wise softmax and
//! log-softmax. (The losses built on them are the family [`crate::loss`].)
//!
//! Conventions:
//! - **Forward** writes `y` (**overwritten**, never read); the element-wise ones also come
//!   in place (`*_forward_inplace`), as layers and the LSTM/GRU gates apply them.
//! - **Backward works from the saved output** in one pass, `dx = dy·g'(z)` with `g'` written
//!   in `y`: `σ' = y(1-y)`, `tanh' = 1-y²`, `relu' = [y > 0]`. `dx` is **overwritten**.
//! - **Row-wise** kernels take `(rows, cols)` row-major matrices.
//! - **Zero sizes**: element-wise kernels and softmax on empty input are no-ops.
//!
//! Numerics:
//! - **Stable for any finite input**: softmax subtracts the row max, log-softmax uses
//!   log-sum-exp; sigmoid saturates to exactly 0 and 1, tanh to exactly ±1. Inputs of ±1e4
//!   give no NaN or inf.
//! - **NaN propagates**: a NaN input gives NaN where it is used (the element, or the whole
//!   row for softmax); it never silently becomes 0. ReLU backward gives NaN where the saved
//!   `y` is NaN.
//! - **Accuracy** (measured against `f64` by the tests, on every instruction set): the
//!   vector `exp` ([`crate::simd`]'s `math`: Cody-Waite reduction + Cephes polynomial) is
//!   within 1 ulp (0.95 without FMA, 0.99 with) and flushes results below `e^{-86.9}` ≈
//!   1.8e-38 to 0 (it never produces a subnormal, which would cost a microcode assist);
//!   sigmoid within 2.3 ulp (libm's `1/(1 + e⁻ˣ)`: the same); tanh within 1.3 ulp.
//!
//! Performance: every kernel body is written once over [`crate::simd`]'s vector trait and
//! runs on the instruction set of [`current_isa`](crate::isa::current_isa), chosen at run
//! time: AVX-512F (16 lanes), AVX2 + FMA (8 lanes) or portable `wide::f32x8` (whatever the
//! build targets: SSE2 by default), so a plain `cargo build --release` uses the best the CPU
//! has. Rayon over chunks of [`crate::parallel::chunk_len`] (element-wise) or whole rows
//! (row-wise) above [`crate::parallel::MIN_PARALLEL_ELEMENTS`]; softmax rows narrower than
//! 16 go one row per lane. For a given instruction set, outputs and gradients are the same
//! bits at every thread count.
//! [`reference`](mod@reference) holds the scalar libm versions used by the tests and benches.

mod elementwise;
pub mod reference;
pub(crate) mod softmax;

pub use elementwise::{
    add_forward, add_inplace, add_relu_forward, leaky_relu_backward, leaky_relu_forward,
    leaky_relu_forward_inplace, relu_backward, relu_forward, relu_forward_inplace, sigmoid_backward,
    sigmoid_forward, sigmoid_forward_inplace, tanh_backward, tanh_forward, tanh_forward_inplace,
};
pub use softmax::{log_softmax_backward, log_softmax_forward, softmax_backward, softmax_forward};
