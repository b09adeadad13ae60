//! The GEMM problems the GEMM test files share: random shapes with padded leading
//! dimensions, transposes, α and β, and the error bound of an f32 product.
#![allow(dead_code)] // each test file uses its own subset

use crate::common::{edge_size, uniform};
use keel_kernels::gemm::{reference::sgemm_reference, GemmShape, Transpose};
use proptest::prelude::*;

pub fn transpose() -> impl Strategy<Value = Transpose> {
    prop_oneof![Just(Transpose::No), Just(Transpose::Yes)]
}

/// One GEMM problem: the shape (with padded leading dimensions) and its operands.
#[derive(Debug, Clone)]
pub struct Problem {
    pub shape: GemmShape,
    pub alpha: f32,
    pub beta: f32,
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    pub c0: Vec<f32>,
}

pub fn problem(max: usize) -> impl Strategy<Value = Problem> {
    problem_with((edge_size(max), edge_size(max), edge_size(max)))
}

/// A problem of the shapes `dims` (m, n, k) draws, with random transposes, padding, α, β.
pub fn problem_with(dims: impl Strategy<Value = (usize, usize, usize)>) -> impl Strategy<Value = Problem> {
    problem_from(
        dims,
        (transpose(), transpose()),
        prop_oneof![Just(1.0f32), Just(-0.5), Just(0.0), -2.0f32..2.0],
    )
}

/// A product (α never 0, which would only scale C) of the shapes `dims` (m, n, k) and the
/// `transposes` (op(A), op(B)) draw, with random padding and β: for tests of the paths that
/// multiply, whose plan depends on the transposes.
pub fn product_with(
    dims: impl Strategy<Value = (usize, usize, usize)>,
    transposes: impl Strategy<Value = (Transpose, Transpose)>,
) -> impl Strategy<Value = Problem> {
    problem_from(dims, transposes, prop_oneof![Just(1.0f32), Just(-0.5), 0.25f32..2.0, -2.0f32..-0.25])
}

/// A problem of the shapes, transposes and α the strategies draw, with random padding and β.
fn problem_from(
    dims: impl Strategy<Value = (usize, usize, usize)>,
    transposes: impl Strategy<Value = (Transpose, Transpose)>,
    alpha: impl Strategy<Value = f32>,
) -> impl Strategy<Value = Problem> {
    (
        dims,
        transposes,
        (0usize..3, 0usize..3, 0usize..3),
        alpha,
        prop_oneof![Just(0.0f32), Just(1.0), -2.0f32..2.0],
        any::<u64>(),
    )
        .prop_map(|((m, n, k), (transa, transb), (pa, pb, pc), alpha, beta, seed)| {
            let (a_rows, a_cols) = if transa == Transpose::No { (m, k) } else { (k, m) };
            let (b_rows, b_cols) = if transb == Transpose::No { (k, n) } else { (n, k) };
            let shape =
                GemmShape { transa, transb, m, n, k, lda: a_cols + pa, ldb: b_cols + pb, ldc: n + pc };
            Problem {
                shape,
                alpha,
                beta,
                a: uniform(a_rows * shape.lda, seed, -1.0, 1.0),
                b: uniform(b_rows * shape.ldb, seed ^ 1, -1.0, 1.0),
                c0: uniform(m * shape.ldc, seed ^ 2, -1.0, 1.0),
            }
        })
}

/// Per-element error bound of an f32 GEMM: each dot product of length k accumulated in f32
/// is within (k + 2)·ε·Σ|a||b| of the exact value (Higham's γ_k bound, plus the α scaling
/// and the β·C add), so the tolerance is that bound computed from |A|·|B| and |C0|.
pub fn error_bound(p: &Problem) -> Vec<f32> {
    let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
    let mut bound = abs(&p.c0);
    sgemm_reference(&p.shape, p.alpha.abs(), &abs(&p.a), &abs(&p.b), p.beta.abs(), &mut bound);
    let eps = f32::EPSILON * (p.shape.k as f32 + 2.0);
    bound.iter().map(|x| x * eps + 1e-30).collect()
}
