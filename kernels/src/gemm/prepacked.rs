//! A B operand packed once and multiplied many times: a recurrent layer's `W_hhᵀ`, used by
//! every step of a sequence, or any fixed weight in front of a stream of small products.
//!
//! [`PackedB::pack`] lays op(B) out as the packed loop nest reads it (the micro-panels of every
//! block of k, for the microkernel of the instruction set current at the time);
//! [`sgemm_prepacked`] then runs the packed GEMM with no packing of B at all, splitting C
//! across the pool along whichever side gives the threads the least work.

use super::driver::{kc_step, sgemm_packed, BSource};
use super::epilogue::Epilogue;
use super::pack::{pack_b, Operand};
use super::parts::threads_for;
use super::plan::{execute, GemmPath};
use super::{GemmShape, Transpose};
use crate::error::{shape_error, Result};
use crate::isa::{current_isa, Isa};

/// op(B), `(k, n)`, packed for the microkernel of one instruction set: for each block of
/// `kc` rows of k (k cut in equal blocks of at most 256), the `ceil(n / NR)` micro-panels of
/// `kc x NR` (zero-padded), NR being the microkernel's width (32 for AVX-512, 16 for AVX2,
/// 8 portable).
///
/// The buffer is kept across [`PackedB::pack`] calls: packing a B of the same size again
/// allocates nothing.
///
/// ```
/// use keel_kernels::gemm::{sgemm_prepacked, Epilogue, GemmShape, PackedB, Transpose};
/// # fn main() -> keel_kernels::Result<()> {
///
/// // Y = X·Wᵀ for a W (out 2, in 3) packed once, then used for two inputs.
/// let w = [1.0, 1.0, 1.0, 0.0, 0.0, 2.0];
/// let shape = GemmShape::new(1, 2, 3).transposed(Transpose::No, Transpose::Yes);
/// let mut packed = PackedB::default();
/// packed.pack(&shape, &w)?;
/// let mut y = [0.0; 2];
/// sgemm_prepacked(&shape, 1.0, &[1.0, 2.0, 3.0], &packed, 0.0, &mut y, &Epilogue::NONE)?;
/// assert_eq!(y, [6.0, 6.0]);
/// sgemm_prepacked(&shape, 1.0, &[0.0, 1.0, 0.0], &packed, 0.0, &mut y, &Epilogue::NONE)?;
/// assert_eq!(y, [1.0, 0.0]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct PackedB {
    /// The instruction set whose microkernel the panels are laid out for.
    isa: Option<Isa>,
    /// `(k, n)` of op(B), with the transpose and leading dimension it was read with.
    k: usize,
    n: usize,
    transb: Option<Transpose>,
    ldb: usize,
    panels: Vec<f32>,
}

impl PackedB {
    /// Packs op(B) as `shape` describes it (its `k`, `n`, `transb` and `ldb`; `m`, A and C
    /// play no part) for the instruction set [`current_isa`] gives. Errors, leaving `self`
    /// as it was, when `b` is shorter than the shape needs.
    pub fn pack(&mut self, shape: &GemmShape, b: &[f32]) -> Result<()> {
        let isa = current_isa();
        isa.check_supported()?;
        // Only B's part of the shape: no rows of A or C.
        let b_only = GemmShape { m: 0, lda: shape.lda.max(1), ldc: shape.ldc.max(1), ..*shape };
        b_only.check(usize::MAX, b.len(), usize::MAX)?;
        let (k, n) = (shape.k, shape.n);
        self.panels.resize(packed_b_len(isa, k, n), 0.0);
        pack_b_panels(isa, shape, b, &mut self.panels);
        *self = PackedB {
            isa: Some(isa),
            k,
            n,
            transb: Some(shape.transb),
            ldb: shape.ldb,
            panels: std::mem::take(&mut self.panels),
        };
        Ok(())
    }

    /// `(k, n)` of the packed op(B) (`(0, 0)` before the first [`PackedB::pack`]).
    pub fn dims(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    /// The instruction set the panels are laid out for (`None` before the first pack).
    pub fn isa(&self) -> Option<Isa> {
        self.isa
    }
}

/// Floats of op(B) `(k, n)` packed for `isa`'s microkernel: `k x n` rounded up to whole
/// micro-panels.
pub(crate) fn packed_b_len(isa: Isa, k: usize, n: usize) -> usize {
    let nr = panel_width(isa);
    k.saturating_mul(n.div_ceil(nr).saturating_mul(nr))
}

/// Packs op(B) as `shape` describes it into `panels` (its first [`packed_b_len`] floats,
/// overwritten) for `isa`'s microkernel, in [`PackedB`]'s layout.
///
/// Panics unless `b` covers op(B) (see [`GemmShape::check`]) and `panels` holds
/// [`packed_b_len`] floats.
fn pack_b_panels(isa: Isa, shape: &GemmShape, b: &[f32], panels: &mut [f32]) {
    let (k, n) = (shape.k, shape.n);
    let nr = panel_width(isa);
    let padded_n = n.div_ceil(nr) * nr;
    let operand = Operand { data: b, ld: shape.ldb, trans: shape.transb };
    let step = kc_step(k);
    if n > 0 {
        for pc in (0..k).step_by(step) {
            let kc = step.min(k - pc);
            let block = &mut panels[pc * padded_n..(pc + kc) * padded_n];
            pack_b(operand, pc, kc, 0, n, nr, isa, block);
        }
    }
}

/// Where [`pack_b_panels`] puts element `(row, col)` of op(B) `(k, n)` for `isa`: in the block
/// of k rows holding `row`, in the micro-panel holding `col`. The `NR` columns of a
/// micro-panel's row are consecutive, so a vector of columns `col .. col + L` (with `L`
/// dividing `NR` and `col` a multiple of `L`) is consecutive too. Columns `n ..` up to the
/// last micro-panel's width are its zero padding.
pub(crate) fn packed_b_index(isa: Isa, k: usize, n: usize, row: usize, col: usize) -> usize {
    let nr = panel_width(isa);
    let padded_n = n.div_ceil(nr) * nr;
    let step = kc_step(k);
    let first = row / step * step;
    let kc = step.min(k - first);
    first * padded_n + col / nr * kc * nr + (row - first) * nr + col % nr
}

/// The width NR of the micro-panels of `isa`'s microkernel.
pub(crate) fn panel_width(isa: Isa) -> usize {
    use super::microkernel::Microkernel;
    match isa {
        Isa::Avx512 => super::avx512::Avx512::NR,
        Isa::Avx2 => super::avx2::Avx2::NR,
        Isa::Portable => super::portable::Portable::NR,
    }
}

/// `C = act(α·op(A)·B̃ + β·C + bias)` with B̃ packed beforehand ([`PackedB`]): as
/// [`super::sgemm_fused`] on the packed path, on the instruction set B̃ was packed for
/// (the one current at [`PackedB::pack`]), without packing B.
///
/// `shape` describes the product as for [`super::sgemm_fused`]; its `k`, `n`, `transb` and
/// `ldb` must be those B̃ was packed with. C is overwritten when `β = 0` (never read),
/// otherwise scaled and accumulated into. Errors (before anything is written) on a shape
/// that differs from the packed one (naming `b`), on A or C too short (as `sgemm`), and on
/// a bias that does not fit.
///
/// ```
/// use keel_kernels::gemm::{sgemm_prepacked, Epilogue, GemmShape, PackedB};
/// # fn main() -> keel_kernels::Result<()> {
/// // B (k 2, n 2) packed once; C (1, 2) = A·B + C, accumulated (β = 1).
/// let shape = GemmShape::new(1, 2, 2);
/// let mut b = PackedB::default();
/// b.pack(&shape, &[1.0, 2.0, 3.0, 4.0])?;
/// let mut c = [10.0, 20.0];
/// sgemm_prepacked(&shape, 1.0, &[1.0, 1.0], &b, 1.0, &mut c, &Epilogue::NONE)?;
/// assert_eq!(c, [14.0, 26.0]);
/// // A product of another k does not fit the packed B.
/// let other = GemmShape::new(1, 2, 3);
/// assert!(sgemm_prepacked(&other, 1.0, &[1.0; 3], &b, 0.0, &mut c, &Epilogue::NONE).is_err());
/// # Ok(())
/// # }
/// ```
#[allow(clippy::too_many_arguments)]
pub fn sgemm_prepacked(
    shape: &GemmShape,
    alpha: f32,
    a: &[f32],
    b: &PackedB,
    beta: f32,
    c: &mut [f32],
    epilogue: &Epilogue,
) -> Result<()> {
    let packed = (b.k, b.n, b.transb, b.ldb);
    if b.isa.is_none() || (shape.k, shape.n, Some(shape.transb), shape.ldb) != packed {
        return Err(shape_error(
            "b (packed)",
            format!("the shape B was packed with: (k, n, transb, ldb) = {packed:?}"),
            format!("{:?}", (shape.k, shape.n, Some(shape.transb), shape.ldb)),
        ));
    }
    sgemm_prepacked_on(b.isa.unwrap_or(Isa::Portable), shape, alpha, a, &b.panels, beta, c, epilogue)
}

/// [`sgemm_prepacked`] with B̃ packed into `panels` by [`pack_b_panels`] for `isa`, with the
/// `k`, `n`, `transb` and `ldb` of `shape` (a caller-owned buffer, for kernels that pack
/// their B in their workspace). Errors as [`sgemm_prepacked`] on A, C or the bias, and where
/// the CPU lacks `isa`.
///
/// Panics if `panels` is shorter than [`packed_b_len`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm_prepacked_on(
    isa: Isa,
    shape: &GemmShape,
    alpha: f32,
    a: &[f32],
    panels: &[f32],
    beta: f32,
    c: &mut [f32],
    epilogue: &Epilogue,
) -> Result<()> {
    assert!(panels.len() >= packed_b_len(isa, shape.k, shape.n), "packed B too short for its shape");
    isa.check_supported()?;
    // B's length was checked when it was packed: only A and C are checked here.
    shape.check(a.len(), usize::MAX, c.len())?;
    epilogue.check(shape.m, shape.n)?;
    if shape.m == 0 || shape.n == 0 || shape.k == 0 || alpha == 0.0 {
        // Nothing to multiply: C = β·C, then the epilogue; B is not read.
        // SAFETY: C covers the shape and the bias fits it (checked above).
        unsafe { execute(GemmPath::ScaleOnly, isa, shape, alpha, a, &[], beta, c, epilogue, false) };
        return Ok(());
    }
    // SAFETY: A and C cover the shape and the bias fits it (checked above); the panels hold
    // B̃ of this (k, n) for `isa`'s microkernel (their layout is the caller's contract, their
    // length asserted above, so every read is inside them), which the CPU supports (checked
    // above); m, n, k >= 1 and α ≠ 0.
    unsafe {
        sgemm_packed(isa, shape, alpha, a, BSource::Prepacked(panels), beta, c, epilogue, threads_for(shape))
    };
    Ok(())
}
