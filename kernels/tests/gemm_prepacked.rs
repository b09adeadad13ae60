//! GEMM with B packed beforehand (`PackedB`, `sgemm_prepacked`): against the reference
//! product within the f32 error bound on every instruction set, over random shapes (edge
//! sizes, both transposes, padded leading dimensions, α and β, a fused bias and activation);
//! the same bits on 1 and 2 threads and as the unpacked GEMM when that takes the packed path;
//! one packing reused for many products; every argument check.

mod common;
mod gemm_problem;

use common::{for_each_isa, nan_vec, two_threads, uniform};
use gemm_problem::{error_bound, problem, problem_with, Problem};
use keel_kernels::gemm::{
    plan, reference::sgemm_fused_reference, sgemm_fused, sgemm_prepacked, Activation, Bias, Epilogue,
    GemmPath, GemmShape, PackedB, Transpose,
};
use keel_kernels::isa::{current_isa, with_isa, Isa};
use keel_kernels::KernelError;
use proptest::prelude::*;

/// `problem`'s product through a B packed on the current instruction set, with `epilogue`.
fn prepacked_product(p: &Problem, epilogue: &Epilogue) -> Vec<f32> {
    let mut packed = PackedB::default();
    packed.pack(&p.shape, &p.b).unwrap();
    assert_eq!(packed.isa(), Some(current_isa()));
    assert_eq!(packed.dims(), (p.shape.k, p.shape.n));
    let mut c = p.c0.clone();
    sgemm_prepacked(&p.shape, p.alpha, &p.a, &packed, p.beta, &mut c, epilogue).unwrap();
    c
}

/// Asserts every element within the error bound of the reference (the bias and ReLU add no
/// error: the bound of the product carries over).
fn assert_within_bound(p: &Problem, epilogue: &Epilogue, got: &[f32]) {
    let mut expected = p.c0.clone();
    sgemm_fused_reference(&p.shape, p.alpha, &p.a, &p.b, p.beta, &mut expected, epilogue);
    let bound = error_bound(p);
    for (i, ((&g, &e), &tol)) in got.iter().zip(&expected).zip(&bound).enumerate() {
        let row_col = (i / p.shape.ldc, i % p.shape.ldc);
        assert!((g - e).abs() <= tol + 1e-6 * e.abs(), "c{row_col:?} on {:?}: {g} vs {e}", current_isa());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn matches_the_reference_on_every_isa(p in problem(97), relu in any::<bool>(), seed in any::<u64>()) {
        let bias = uniform(p.shape.n, seed, -1.0, 1.0);
        let activation = if relu { Activation::Relu } else { Activation::Identity };
        let epilogue = Epilogue { bias: Bias::PerColumn(&bias), activation };
        for_each_isa(|| assert_within_bound(&p, &epilogue, &prepacked_product(&p, &epilogue)));
    }

    /// The bits do not depend on the thread count, and are the unpacked GEMM's when that one
    /// packs too (the same panels in the same order).
    #[test]
    fn same_bits_on_two_threads_and_as_the_packed_path(
        p in problem_with((1usize..200, 1usize..300, 1usize..300)),
    ) {
        for_each_isa(|| {
            let isa = current_isa();
            let one = prepacked_product(&p, &Epilogue::NONE);
            let two = two_threads().install(|| with_isa(isa, || prepacked_product(&p, &Epilogue::NONE)).unwrap());
            assert_eq!(one, two, "1 and 2 threads on {isa:?}");
            if plan(&p.shape, p.alpha, isa) == GemmPath::Packed {
                let mut c = p.c0.clone();
                sgemm_fused(&p.shape, p.alpha, &p.a, &p.b, p.beta, &mut c, &Epilogue::NONE).unwrap();
                assert_eq!(one, c, "prepacked and packed paths on {isa:?}");
            }
        });
    }
}

proptest! {
    // Big products against the reference are slow in a debug build: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// Depths over one block of k (256) and widths over one block of columns (1024) split
    /// into several packed blocks.
    #[test]
    fn blocks_of_k_and_n(p in problem_with((1usize..40, 1000usize..1100, 250usize..600))) {
        for_each_isa(|| assert_within_bound(&p, &Epilogue::NONE, &prepacked_product(&p, &Epilogue::NONE)));
    }
}

/// A recurrent layer's use: `W` `(4·hidden, hidden)` packed once as `Wᵀ`, then one product
/// per step with a new `h`, with β = 1 onto the input projection; a later pack of another
/// size reuses the object.
#[test]
fn one_packing_serves_many_products() {
    let (batch, hidden) = (5, 37);
    let w = uniform(4 * hidden * hidden, 1, -1.0, 1.0);
    let shape = GemmShape::new(batch, 4 * hidden, hidden).transposed(Transpose::No, Transpose::Yes);
    for_each_isa(|| {
        let mut packed = PackedB::default();
        packed.pack(&shape, &w).unwrap();
        for step in 0..4 {
            let h = uniform(batch * hidden, 10 + step, -1.0, 1.0);
            let projection = uniform(batch * 4 * hidden, 20 + step, -1.0, 1.0);
            let mut got = projection.clone();
            sgemm_prepacked(&shape, 1.0, &h, &packed, 1.0, &mut got, &Epilogue::NONE).unwrap();
            let p = Problem { shape, alpha: 1.0, beta: 1.0, a: h, b: w.clone(), c0: projection };
            assert_within_bound(&p, &Epilogue::NONE, &got);
        }
        let small = GemmShape::new(3, 2, 4);
        packed.pack(&small, &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 0.0]).unwrap();
        let mut c = nan_vec(6);
        let a = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
        sgemm_prepacked(&small, 1.0, &a, &packed, 0.0, &mut c, &Epilogue::NONE).unwrap();
        assert_eq!(c, [1.0, 0.0, 0.0, 1.0, 4.0, 2.0]);
    });
}

/// Nothing to multiply (k = 0 or α = 0): C = β·C and the epilogue, B not read.
#[test]
fn empty_products_scale_c() {
    for (k, alpha) in [(0, 1.0), (3, 0.0)] {
        let shape = GemmShape::new(2, 2, k);
        let mut packed = PackedB::default();
        packed.pack(&shape, &vec![1.0; 2 * k]).unwrap();
        let mut c = vec![1.0, -2.0, 3.0, -4.0];
        let bias = [0.5, 0.5];
        let epilogue = Epilogue { bias: Bias::PerColumn(&bias), activation: Activation::Relu };
        sgemm_prepacked(&shape, alpha, &vec![1.0; 2 * k], &packed, 2.0, &mut c, &epilogue).unwrap();
        assert_eq!(c, [2.5, 0.0, 6.5, 0.0], "k = {k}, α = {alpha}");
    }
}

fn shape_error_names<T: std::fmt::Debug>(r: keel_kernels::Result<T>, name: &str) {
    match r {
        Err(KernelError::Shape { what, .. }) | Err(KernelError::Length { what, .. }) => {
            assert!(what.starts_with(name), "error names {what:?}, expected {name:?}")
        }
        other => panic!("expected an error naming {name}, got {other:?}"),
    }
}

#[test]
fn errors_name_the_argument() {
    let shape = GemmShape::new(2, 3, 4);
    let mut packed = PackedB::default();
    // A short B: the pack fails and leaves the object unpacked.
    shape_error_names(packed.pack(&shape, &[0.0; 11]), "b");
    assert_eq!((packed.dims(), packed.isa()), ((0, 0), None));
    let mut c = vec![0.0; 6];
    shape_error_names(sgemm_prepacked(&shape, 1.0, &[0.0; 8], &packed, 0.0, &mut c, &Epilogue::NONE), "b");
    packed.pack(&shape, &[0.0; 12]).unwrap();
    // A product of another shape than the packed one.
    for other in
        [GemmShape::new(2, 3, 5), GemmShape::new(2, 4, 4), shape.transposed(Transpose::No, Transpose::Yes)]
    {
        shape_error_names(
            sgemm_prepacked(&other, 1.0, &[0.0; 10], &packed, 0.0, &mut c, &Epilogue::NONE),
            "b",
        );
    }
    // A or C too short, a bias that does not fit.
    shape_error_names(sgemm_prepacked(&shape, 1.0, &[0.0; 7], &packed, 0.0, &mut c, &Epilogue::NONE), "a");
    shape_error_names(
        sgemm_prepacked(&shape, 1.0, &[0.0; 8], &packed, 0.0, &mut c[..5], &Epilogue::NONE),
        "c",
    );
    let bias = [0.0; 2];
    let epilogue = Epilogue { bias: Bias::PerColumn(&bias), activation: Activation::Identity };
    assert!(sgemm_prepacked(&shape, 1.0, &[0.0; 8], &packed, 0.0, &mut c, &epilogue).is_err());
}

/// A B packed for one instruction set runs on it even when another is current (the panels
/// are laid out for its microkernel).
#[test]
fn runs_on_the_isa_it_was_packed_for() {
    let p = Problem {
        shape: GemmShape::new(7, 19, 11),
        alpha: 1.0,
        beta: 0.0,
        a: uniform(77, 1, -1.0, 1.0),
        b: uniform(209, 2, -1.0, 1.0),
        c0: vec![0.0; 133],
    };
    let mut packed = PackedB::default();
    with_isa(Isa::Portable, || packed.pack(&p.shape, &p.b).unwrap()).unwrap();
    assert_eq!(packed.isa(), Some(Isa::Portable));
    for_each_isa(|| {
        let mut c = p.c0.clone();
        sgemm_prepacked(&p.shape, 1.0, &p.a, &packed, 0.0, &mut c, &Epilogue::NONE).unwrap();
        assert_within_bound(&p, &Epilogue::NONE, &c);
    });
}
