//! The keel-wide thread cap (`parallel::set_max_threads`): the effective thread count is
//! `min(pool size, cap)`, element-wise chunks follow it, and a capped bigger pool computes
//! the same bits as a pool of the effective size (GEMM and a chunked reduction).
//!
//! `serial` keeps the calls made inside it on the calling thread.
//!
//! One test function: the cap is process-wide, so the checks run in sequence rather than as
//! parallel tests that would see each other's settings.

mod common;

use common::uniform;
use keel_kernels::gemm::{native, GemmShape, Transpose};
use keel_kernels::loss::mse_forward;
use keel_kernels::parallel::{
    chunk_len, current_num_threads, max_threads, serial, set_max_threads, MIN_PARALLEL_ELEMENTS,
};
use rayon::prelude::*;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// A product big enough to split (well above `MIN_PARALLEL_MULADDS`), C overwritten.
fn product() -> Vec<f32> {
    let (m, n, k) = (200, 300, 150);
    let a = uniform(m * k, 1, -1.0, 1.0);
    let b = uniform(k * n, 2, -1.0, 1.0);
    let mut c = vec![f32::NAN; m * n];
    native::sgemm(
        &GemmShape { transa: Transpose::No, transb: Transpose::Yes, m, n, k, lda: k, ldb: k, ldc: n },
        0.5,
        &a,
        &b,
        0.0,
        &mut c,
    )
    .unwrap();
    c
}

/// The MSE loss of a pass long enough to be chunked: its chunk totals are summed in a
/// tree whose shape follows the chunking, so its bits follow the effective thread count.
fn chunked_loss() -> u32 {
    let len = 40 * MIN_PARALLEL_ELEMENTS + 13;
    let pred = uniform(len, 3, -1.0, 1.0);
    let target = uniform(len, 4, -1.0, 1.0);
    let mut diff = vec![0.0; len];
    mse_forward(&pred, &target, &mut diff).unwrap().to_bits()
}

#[test]
fn the_thread_cap_bounds_every_split_and_keeps_the_bits() {
    assert_eq!(max_threads(), 0, "no cap by default");
    let (one, two, four) = (pool(1), pool(2), pool(4));
    let long = 64 * MIN_PARALLEL_ELEMENTS;
    // Uncapped: kernels follow the pool.
    assert_eq!(two.install(current_num_threads), 2);
    assert_eq!(four.install(current_num_threads), 4);
    let reference_product = one.install(product);
    let (loss_one, loss_two) = (one.install(chunked_loss), two.install(chunked_loss));
    let chunks_two = two.install(|| chunk_len(long, 8));

    set_max_threads(1);
    assert_eq!(max_threads(), 1);
    assert_eq!(two.install(current_num_threads), 1, "min(pool 2, cap 1)");
    assert_eq!(two.install(|| chunk_len(long, 8)), long, "one thread: one chunk");
    assert_eq!(bits(&two.install(product)), bits(&reference_product), "2-thread pool capped at 1");
    assert_eq!(two.install(chunked_loss), loss_one, "2-thread pool capped at 1");

    set_max_threads(2);
    assert_eq!(four.install(current_num_threads), 2, "min(pool 4, cap 2)");
    assert_eq!(two.install(current_num_threads), 2, "the cap never adds threads");
    assert_eq!(one.install(current_num_threads), 1, "min(pool 1, cap 2)");
    assert_eq!(four.install(|| chunk_len(long, 8)), chunks_two, "the chunks of a 2-thread pool");
    assert_eq!(four.install(chunked_loss), loss_two, "4-thread pool capped at 2");
    assert_eq!(bits(&four.install(product)), bits(&reference_product));
    // Called from inside rayon tasks of the pool (as a layer running samples in parallel
    // would): each call splits onto the same pool and gives the same result.
    let nested: Vec<Vec<f32>> = four.install(|| (0..3).into_par_iter().map(|_| product()).collect());
    for c in &nested {
        assert_eq!(bits(c), bits(&reference_product), "GEMM called from a rayon task");
    }

    set_max_threads(0);
    assert_eq!(four.install(current_num_threads), 4, "cap removed");
    check_serial();
}

/// `serial`: kernel calls inside it stay on the calling thread (an effective count of 1 on
/// any pool, the bits of a 1-thread pool), it nests, and the previous state comes back when
/// it returns or panics. Run uncapped, by the test above.
fn check_serial() {
    let (one, two) = (pool(1), pool(2));
    let reference_product = one.install(product);
    let loss_one = one.install(chunked_loss);
    let long = 64 * MIN_PARALLEL_ELEMENTS;
    two.install(|| {
        assert_eq!(current_num_threads(), 2);
        serial(|| {
            assert_eq!(current_num_threads(), 1);
            assert_eq!(chunk_len(long, 8), long, "one chunk");
            assert_eq!(bits(&product()), bits(&reference_product));
            assert_eq!(chunked_loss(), loss_one);
            serial(|| assert_eq!(current_num_threads(), 1, "nested"));
            assert_eq!(current_num_threads(), 1, "still serial after the nested call");
        });
        assert_eq!(current_num_threads(), 2, "restored on return");
        let panicked = std::panic::catch_unwind(|| serial(|| panic!("inside serial")));
        assert!(panicked.is_err());
        assert_eq!(current_num_threads(), 2, "restored after a panic");
    });
}
