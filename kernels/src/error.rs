//! The one error type of the kernel crate.
//!
//! Every public kernel checks the lengths of its slices and the consistency of its shape
//! arguments before touching memory, and reports a mismatch as a [`KernelError`] that names
//! the argument, what was expected and what came.

use thiserror::Error;

/// What a kernel rejected, naming the argument, the expectation and the actual value.
///
/// Its message (`Display`) is one line: the argument, what was expected, what came.
///
/// ```
/// use keel_kernels::activation::relu_forward;
/// use keel_kernels::gemm::{sgemm, GemmShape};
/// use keel_kernels::norm::dropout_forward;
/// use keel_kernels::KernelError;
///
/// // A slice of the wrong length: x (3) but y (2).
/// let mut y = [7.0; 2];
/// let err = relu_forward(&[1.0, 2.0, 3.0], &mut y).unwrap_err();
/// assert_eq!(err, KernelError::Length { what: "y (same length as x)".into(), expected: 3, actual: 2 });
/// assert_eq!(err.to_string(), "y (same length as x): expected a slice of length 3, got length 2");
/// assert_eq!(y, [7.0; 2]); // checked before anything was written
///
/// // An inconsistent shape: A (2, 3) stored with rows 2 apart.
/// let shape = GemmShape::new(2, 2, 3).with_ld(2, 2, 2);
/// let err = sgemm(&shape, 1.0, &[0.0; 6], &[0.0; 6], 0.0, &mut [0.0; 4]).unwrap_err();
/// assert!(matches!(err, KernelError::Shape { .. }));
/// assert_eq!(err.to_string(), "lda: expected lda >= max(1, 3), got 2");
///
/// // A scalar out of its domain: a dropout probability of 1.5.
/// let err = dropout_forward(1.5, 0, 0, &[1.0], &mut [0.0], &mut [0]).unwrap_err();
/// assert_eq!(err.to_string(), "p: expected 0 <= p <= 1, got 1.5");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KernelError {
    /// A slice has the wrong length for the shape it was declared with.
    #[error("{what}: expected a slice of length {expected}, got length {actual}")]
    Length {
        /// The argument and its shape, e.g. `"x (n, c, h, w) = (2, 3, 5, 5)"`.
        what: String,
        /// The length the shape implies.
        expected: usize,
        /// The length of the slice passed.
        actual: usize,
    },
    /// A shape argument is inconsistent or out of range (zero stride, window larger than
    /// the padded input, leading dimension smaller than a row, ...).
    #[error("{what}: expected {expected}, got {actual}")]
    Shape {
        /// The argument, e.g. `"lda"`.
        what: String,
        /// The condition it must meet, e.g. `"lda >= k = 7"`.
        expected: String,
        /// The value passed.
        actual: String,
    },
    /// A scalar argument is out of its domain (a dropout probability of 1.5, a negative
    /// learning rate, ...).
    #[error("{what}: expected {expected}, got {actual}")]
    Argument {
        /// The argument, e.g. `"p"`.
        what: String,
        /// The domain, e.g. `"0 <= p < 1"`.
        expected: String,
        /// The value passed.
        actual: String,
    },
}

/// Result of a checked kernel call.
pub type Result<T> = core::result::Result<T, KernelError>;

/// Checks that a slice has exactly the length its shape implies.
pub(crate) fn check_len(what: impl FnOnce() -> String, expected: usize, actual: usize) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(KernelError::Length { what: what(), expected, actual })
    }
}

/// Checks that a slice is at least as long as a strided shape needs.
pub(crate) fn check_min_len(what: impl FnOnce() -> String, needed: usize, actual: usize) -> Result<()> {
    if actual >= needed {
        Ok(())
    } else {
        Err(KernelError::Length { what: what(), expected: needed, actual })
    }
}

/// Builds a [`KernelError::Shape`].
pub(crate) fn shape_error(
    what: impl Into<String>,
    expected: impl Into<String>,
    actual: impl ToString,
) -> KernelError {
    KernelError::Shape { what: what.into(), expected: expected.into(), actual: actual.to_string() }
}

/// Builds a [`KernelError::Argument`].
pub(crate) fn argument_error(
    what: impl Into<String>,
    expected: impl Into<String>,
    actual: impl ToString,
) -> KernelError {
    KernelError::Argument { what: what.into(), expected: expected.into(), actual: actual.to_string() }
}
