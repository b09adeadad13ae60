//! The fused epilogue of [`super::sgemm_fused`]: `C = act(α·op(A)·op(B) + β·C + bias)`.
//!
//! The native path applies it to each tile of C in the microkernel's registers, right after
//! the tile's last block of k, before the one store of the tile (so C is not read again):
//! the microkernels take a [`TileEpilogue`], the part of the epilogue one tile sees. Earlier
//! blocks of k get [`TileEpilogue::NONE`]. The `blas` path and the degenerate products
//! (`k = 0`, `α = 0`) apply it in one pass over C afterwards ([`apply_pass`]).

use crate::error::{argument_error, check_len, Result};

/// The activation applied last, element-wise.
///
/// NaN propagates through each of them (`relu(NaN) = NaN`, as in PyTorch): a NaN in A, B,
/// the bias, or C (when `β ≠ 0`) gives NaN in the elements of C it reaches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// `x`.
    Identity,
    /// `max(x, 0)`.
    Relu,
    /// `x` for `x >= 0`, `negative_slope·x` otherwise (PyTorch's `LeakyReLU`); the slope
    /// must be finite.
    LeakyRelu(f32),
}

impl Activation {
    /// The activation of one value (the scalar form of what the SIMD paths compute).
    #[inline]
    pub(crate) fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Identity => x,
            // `x < 0` is false for NaN, which passes through.
            Activation::Relu => {
                if x < 0.0 {
                    0.0
                } else {
                    x
                }
            }
            Activation::LeakyRelu(slope) => {
                if x < 0.0 {
                    slope * x
                } else {
                    x
                }
            }
        }
    }
}

/// `LeakyRelu`'s slope, hidden from the optimiser, for the SIMD forms of the activation.
///
/// Without it the compiler may hoist the product `x·slope` out of the `LeakyRelu` arm and
/// compute it for every variant (keeping it only for `LeakyRelu`), with the payload bytes of
/// `Identity` or `Relu` as the slope: whatever lies there, and a denormal makes each product a
/// microcode assist (the direct convolution's stores ran 1.4x slower so, depending on the
/// caller's stack). An opaque value cannot be computed before the arm is taken.
#[inline(always)]
pub(crate) fn opaque_slope(slope: f32) -> f32 {
    std::hint::black_box(slope)
}

/// A bias added to every element of C before the activation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bias<'a> {
    /// No bias.
    None,
    /// One value per row of C, length `m` (a convolution: C is `(c_out, positions)`).
    PerRow(&'a [f32]),
    /// One value per column of C, length `n` (a dense layer: C is `(batch, out)`).
    PerColumn(&'a [f32]),
}

/// What [`super::sgemm_fused`] applies to `α·op(A)·op(B) + β·C` before storing C:
/// `C = activation(α·op(A)·op(B) + β·C + bias)` (see [`super::sgemm_fused`]'s example).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Epilogue<'a> {
    /// The bias, per row or per column of C, or none.
    pub bias: Bias<'a>,
    /// The activation applied last.
    pub activation: Activation,
}

impl Epilogue<'_> {
    /// No bias, identity activation: a plain GEMM.
    pub const NONE: Epilogue<'static> = Epilogue { bias: Bias::None, activation: Activation::Identity };

    /// Checks the bias length against C's `(m, n)` and the activation's parameter.
    pub fn check(&self, m: usize, n: usize) -> Result<()> {
        match self.bias {
            Bias::None => {}
            Bias::PerRow(bias) => check_len(|| format!("bias (per row of C, m = {m})"), m, bias.len())?,
            Bias::PerColumn(bias) => check_len(|| format!("bias (per column of C, n = {n})"), n, bias.len())?,
        }
        if let Activation::LeakyRelu(slope) = self.activation {
            if !slope.is_finite() {
                return Err(argument_error("negative_slope", "a finite slope", slope));
            }
        }
        Ok(())
    }

    /// Whether applying it changes nothing.
    pub(crate) fn is_none(&self) -> bool {
        matches!(self.bias, Bias::None) && self.activation == Activation::Identity
    }

    /// The part of the epilogue the `rows x cols` tile at `(row0, col0)` of C sees.
    /// Panics if the tile reaches past a checked bias (it never does inside C).
    pub(crate) fn tile(&self, row0: usize, col0: usize, rows: usize, cols: usize) -> TileEpilogue {
        let bias = match self.bias {
            Bias::None => TileBias::None,
            Bias::PerRow(bias) => TileBias::Row(bias[row0..row0 + rows].as_ptr()),
            Bias::PerColumn(bias) => TileBias::Column(bias[col0..col0 + cols].as_ptr()),
        };
        TileEpilogue { bias, activation: self.activation }
    }
}

/// The bias one tile sees: a pointer to the bias of its first row (`Row`, one per row of the
/// tile) or first column (`Column`, one per column).
#[derive(Debug, Clone, Copy)]
pub(crate) enum TileBias {
    None,
    Row(*const f32),
    Column(*const f32),
}

/// The epilogue of one `rows x cols` tile, as the microkernels take it (see the contract in
/// `microkernel.rs`): its bias is readable for the tile's `rows` (`Row`) or `cols`
/// (`Column`) values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TileEpilogue {
    pub bias: TileBias,
    pub activation: Activation,
}

impl TileEpilogue {
    /// Nothing to apply (every block of k but the last).
    pub const NONE: TileEpilogue = TileEpilogue { bias: TileBias::None, activation: Activation::Identity };

    /// Whether there is nothing to apply.
    pub(crate) fn is_none(&self) -> bool {
        matches!(self.bias, TileBias::None) && self.activation == Activation::Identity
    }

    /// The epilogue of element `(i, j)` of the tile applied to `value`.
    ///
    /// # Safety
    /// `i < rows` and `j < cols` of the tile this epilogue was made for.
    #[inline]
    pub unsafe fn apply(&self, value: f32, i: usize, j: usize) -> f32 {
        // SAFETY: the bias pointer covers the tile's rows (Row) or columns (Column).
        let biased = unsafe {
            match self.bias {
                TileBias::None => value,
                TileBias::Row(bias) => value + *bias.add(i),
                TileBias::Column(bias) => value + *bias.add(j),
            }
        };
        self.activation.apply(biased)
    }
}

/// Applies the epilogue to the `m x n` matrix C (rows `ldc` apart) in one pass: the `blas`
/// path, after `cblas_sgemm`, and the products with nothing to multiply.
/// Panics if `c` or the bias is shorter than the checked shape implies.
pub(crate) fn apply_pass(m: usize, n: usize, ldc: usize, epilogue: &Epilogue, c: &mut [f32]) {
    if epilogue.is_none() || n == 0 {
        return;
    }
    let act = epilogue.activation;
    for (i, row) in c.chunks_mut(ldc).take(m).enumerate() {
        let row = &mut row[..n];
        match epilogue.bias {
            Bias::None => row.iter_mut().for_each(|x| *x = act.apply(*x)),
            Bias::PerRow(bias) => row.iter_mut().for_each(|x| *x = act.apply(*x + bias[i])),
            Bias::PerColumn(bias) => {
                row.iter_mut().zip(&bias[..n]).for_each(|(x, &b)| *x = act.apply(*x + b))
            }
        }
    }
}
