//! The scalar reference GEMM: a plain triple loop, the ground truth for every fast path.

use super::{Activation, Bias, Epilogue, GemmShape, Transpose};

/// `C = α·op(A)·op(B) + β·C` by the definition, accumulating each dot product in `f64`
/// so that its own rounding is negligible next to the paths under test.
/// With `β = 0`, `C` is overwritten without being read. Panics if a slice is too short
/// for `shape` (call [`GemmShape::check`] first).
pub fn sgemm_reference(shape: &GemmShape, alpha: f32, a: &[f32], b: &[f32], beta: f32, c: &mut [f32]) {
    let at = |i: usize, p: usize| match shape.transa {
        Transpose::No => a[i * shape.lda + p],
        Transpose::Yes => a[p * shape.lda + i],
    };
    let bt = |p: usize, j: usize| match shape.transb {
        Transpose::No => b[p * shape.ldb + j],
        Transpose::Yes => b[j * shape.ldb + p],
    };
    for i in 0..shape.m {
        for j in 0..shape.n {
            let dot: f64 = (0..shape.k).map(|p| f64::from(at(i, p)) * f64::from(bt(p, j))).sum();
            let out = &mut c[i * shape.ldc + j];
            let scaled = f64::from(alpha) * dot;
            *out =
                if beta == 0.0 { scaled as f32 } else { (scaled + f64::from(beta) * f64::from(*out)) as f32 };
        }
    }
}

/// `C = act(α·op(A)·op(B) + β·C + bias)`: [`sgemm_reference`], then the bias and the
/// activation of `epilogue` element by element. Panics if a slice (or the bias) is too short
/// for `shape` (call [`GemmShape::check`] and [`Epilogue::check`] first).
pub fn sgemm_fused_reference(
    shape: &GemmShape,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
    epilogue: &Epilogue,
) {
    sgemm_reference(shape, alpha, a, b, beta, c);
    for i in 0..shape.m {
        for j in 0..shape.n {
            let out = &mut c[i * shape.ldc + j];
            let x = match epilogue.bias {
                Bias::None => *out,
                Bias::PerRow(bias) => *out + bias[i],
                Bias::PerColumn(bias) => *out + bias[j],
            };
            *out = match epilogue.activation {
                Activation::Identity => x,
                Activation::Relu if x < 0.0 => 0.0,
                Activation::LeakyRelu(slope) if x < 0.0 => slope * x,
                // Non-negative, or NaN (which every activation passes through).
                Activation::Relu | Activation::LeakyRelu(_) => x,
            };
        }
    }
}
