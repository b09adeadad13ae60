//! An augmenting loader allocates nothing once warm: after its first epoch (which sizes the
//! batch tensors and the per-sample displacement fields), further epochs of augmented
//! batches on a 2-thread pool make no allocation. Counted by a global allocator over every
//! thread, so this file holds a single test (nothing else runs in its process meanwhile).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use keel_layers::{Augment, Batches, Dataset, Elastic, Tensor};

/// The system allocator, counting allocations and reallocations on every thread.
struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`, so the `GlobalAlloc` contract holds
// as it does for `System`; the counter has no effect on memory.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's `layout` obligations are passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn augmented_batches_allocate_nothing_once_warm() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let values = (0..50 * 2 * 12 * 12).map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0).collect();
    let data = Dataset::new(Tensor::from_vec(&[50, 2, 12, 12], values).unwrap(), vec![0u32; 50]).unwrap();
    let augment = Augment {
        flip: 0.5,
        pad: 2,
        rotation: (-10.0, 10.0),
        scale: (0.9, 1.1),
        shear: (-5.0, 5.0),
        translate: (0.05, 0.05),
        elastic: Some(Elastic { alpha: 8.0, sigma: 3.0 }),
        fill: -0.5,
        seed: 1,
    };
    let mut batches = Batches::shuffled(&data, 16, 2).unwrap().augment(augment).unwrap();
    let mut checksum = 0.0;
    let mut epoch = |batches: &mut Batches| {
        batches.start_epoch();
        while let Some((x, _)) = batches.next_batch() {
            checksum += x.data()[0];
        }
    };
    let start = ALLOCATIONS.load(Ordering::Relaxed);
    pool.install(|| epoch(&mut batches));
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    assert!(before > start, "the first epoch sizes the buffers: the counter sees it");
    pool.install(|| (0..3).for_each(|_| epoch(&mut batches)));
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(allocations, 0, "three warm epochs of augmented batches allocated {allocations} times");
    assert!(checksum.is_finite());
}
