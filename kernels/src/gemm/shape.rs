//! The shape and layout of one GEMM call, and the checks that make it safe to run.

use crate::error::{check_min_len, shape_error, Result};

/// Whether an operand is used as stored or transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transpose {
    /// `op(X) = X`.
    No,
    /// `op(X) = Xᵀ`.
    Yes,
}

/// The dimensions and layout of one GEMM call `C = α·op(A)·op(B) + β·C`, checked once
/// ([`GemmShape::check`]) and shared by every path.
///
/// - `op(A)` is `(m, k)`: `A` is stored `(m, k)` with `lda >= k` when `transa` is
///   [`Transpose::No`], or `(k, m)` with `lda >= m` when it is [`Transpose::Yes`];
/// - `op(B)` is `(k, n)`: `B` is stored `(k, n)` with `ldb >= n`, or `(n, k)` with `ldb >= k`;
/// - `C` is `(m, n)` with `ldc >= n`.
///
/// Leading dimensions count elements between consecutive rows as stored (row-major).
///
/// ```
/// use keel_kernels::gemm::{GemmShape, Transpose};
///
/// // A (4, 3) times Bᵀ where B is stored (5, 3): C is (4, 5), every matrix dense.
/// let shape = GemmShape::new(4, 5, 3).transposed(Transpose::No, Transpose::Yes);
/// assert_eq!((shape.lda, shape.ldb, shape.ldc), (3, 3, 5));
/// assert!(shape.check(12, 15, 20).is_ok());
/// assert!(shape.check(12, 14, 20).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GemmShape {
    /// Whether `A` is transposed.
    pub transa: Transpose,
    /// Whether `B` is transposed.
    pub transb: Transpose,
    /// Rows of `op(A)` and `C`.
    pub m: usize,
    /// Columns of `op(B)` and `C`.
    pub n: usize,
    /// Columns of `op(A)`, rows of `op(B)`.
    pub k: usize,
    /// Leading dimension of `A` as stored.
    pub lda: usize,
    /// Leading dimension of `B` as stored.
    pub ldb: usize,
    /// Leading dimension of `C`.
    pub ldc: usize,
}

impl GemmShape {
    /// `(m, k) x (k, n)`, neither operand transposed, every matrix dense (`lda = k`,
    /// `ldb = ldc = n`, or 1 where that is 0, as leading dimensions are at least 1).
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        GemmShape {
            transa: Transpose::No,
            transb: Transpose::No,
            m,
            n,
            k,
            lda: k.max(1),
            ldb: n.max(1),
            ldc: n.max(1),
        }
    }

    /// The same product with `A` and `B` used as `transa` and `transb` say, the leading
    /// dimensions those of dense matrices as stored (`lda` = `m` for a transposed A, ...; at
    /// least 1).
    pub fn transposed(self, transa: Transpose, transb: Transpose) -> Self {
        let lda = stored_dims(transa, self.m, self.k).1.max(1);
        let ldb = stored_dims(transb, self.k, self.n).1.max(1);
        GemmShape { transa, transb, lda, ldb, ..self }
    }

    /// The same product with the leading dimensions `lda`, `ldb`, `ldc`.
    pub fn with_ld(self, lda: usize, ldb: usize, ldc: usize) -> Self {
        GemmShape { lda, ldb, ldc, ..self }
    }

    /// Checks the leading dimensions against the shape and the slice lengths against the
    /// leading dimensions (the last row of each matrix need only be as long as a row). All
    /// arithmetic is checked: a span that overflows `usize` is reported as too long for
    /// the slice, never wrapped.
    pub fn check(&self, a_len: usize, b_len: usize, c_len: usize) -> Result<()> {
        self.check_batched(1, [0; 3], [a_len, b_len, c_len])
    }

    /// [`GemmShape::check`] for `batch` products whose matrices start `strides` (of A, B, C)
    /// apart in slices of `lens`: the last matrix of each operand must fit in its slice.
    /// The messages name the strides only when `batch > 1`.
    pub(crate) fn check_batched(&self, batch: usize, strides: [usize; 3], lens: [usize; 3]) -> Result<()> {
        let (a_rows, a_cols) = stored_dims(self.transa, self.m, self.k);
        let (b_rows, b_cols) = stored_dims(self.transb, self.k, self.n);
        check_ld("lda", self.lda, a_cols)?;
        check_ld("ldb", self.ldb, b_cols)?;
        check_ld("ldc", self.ldc, self.n)?;
        // (name, how its dimensions read, rows, cols, leading dimension); formatted only on error.
        let operands = [
            ("a", "stored ", a_rows, a_cols, self.lda),
            ("b", "stored ", b_rows, b_cols, self.ldb),
            ("c", "", self.m, self.n, self.ldc),
        ];
        for ((name, stored, rows, cols, ld), (stride, len)) in
            operands.into_iter().zip(strides.into_iter().zip(lens))
        {
            let what = || {
                let dims = format!("{stored}{rows}x{cols}, ld{name} = {ld}");
                if batch > 1 {
                    format!("{name} ({batch} matrices {dims}, stride_{name} = {stride})")
                } else {
                    format!("{name} ({dims})")
                }
            };
            // The last matrix starts (batch - 1)·stride in; an empty batch or matrix needs
            // nothing. An overflow needs more than any slice holds.
            let needed = match strided_len(rows, cols, ld) {
                Some(0) => Some(0),
                _ if batch == 0 => Some(0),
                Some(span) => (batch - 1).checked_mul(stride).and_then(|start| start.checked_add(span)),
                None => None,
            };
            check_min_len(what, needed.unwrap_or(usize::MAX), len)?;
        }
        Ok(())
    }
}

/// `(rows, cols)` of an operand as stored, given the shape of `op(X)`.
fn stored_dims(trans: Transpose, rows: usize, cols: usize) -> (usize, usize) {
    match trans {
        Transpose::No => (rows, cols),
        Transpose::Yes => (cols, rows),
    }
}

fn check_ld(name: &str, ld: usize, cols: usize) -> Result<()> {
    if ld >= cols.max(1) {
        Ok(())
    } else {
        Err(shape_error(name, format!("{name} >= max(1, {cols})"), ld))
    }
}

/// Elements a `(rows, cols)` matrix with leading dimension `ld` spans, `(rows - 1)·ld + cols`
/// (0 when it is empty), or `None` when that overflows `usize`.
pub(crate) fn strided_len(rows: usize, cols: usize, ld: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        Some(0)
    } else {
        (rows - 1).checked_mul(ld)?.checked_add(cols)
    }
}
