//! When kernels split work across threads, and how many threads they use.
//!
//! Kernels run their parallel parts on the rayon pool they are called from: the global pool
//! by default, or the caller's own pool inside `pool.install(|| ...)`. Work below the
//! thresholds here stays on the calling thread, where spawning would cost more than it saves.
//!
//! **Thread count.** Every kernel sizes its split by [`current_num_threads`], the
//! *effective* thread count: `min(pool size, max_threads())`, or the pool size when the
//! keel-wide setting [`set_max_threads`] is 0 (the default). So a model can run on `k`
//! threads of a bigger pool by `set_max_threads(k)` (or on a pool of its own size, by
//! `RAYON_NUM_THREADS` or `pool.install`). With a cap of `k`, a GEMM or a convolution splits
//! into at most `k` parts, so it keeps at most `k` of the pool's threads busy. Element-wise
//! passes cut into about `4·k` chunks (for balance, see [`chunk_len`]: the same chunks
//! as on a `k`-thread pool, which keeps the bits), which a bigger pool may run on more than
//! `k` threads at once; and a kernel whose parts call other kernels (a convolution running
//! images in parallel, each with its GEMM) applies the cap at each level. For a hard bound
//! on the threads of a whole model, run it in a pool of `k` threads.
//!
//! **Determinism.** Splits depend only on the problem size and the effective thread count,
//! so a given effective count gives the same bits on every run, whatever the pool size
//! behind it (a 2-thread pool capped at 1 computes exactly what a 1-thread pool does).
//!
//! **Nesting.** Kernels never build a pool and never install one: a call from inside a
//! rayon task (a layer running samples in parallel, a kernel's own part) splits onto the
//! pool it already runs on, through rayon's work stealing, so it neither nests pools nor
//! starts threads beyond the pool's.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Element-wise passes (activations, optimizer updates, ...) shorter than this run on the
/// calling thread: about 32 µs of work at memory speed, well above rayon's spawn cost.
pub const MIN_PARALLEL_ELEMENTS: usize = 1 << 16;

/// Products with fewer multiply-adds than this (m·n·k) run on the calling thread.
pub const MIN_PARALLEL_MULADDS: usize = 1 << 20;

/// The keel-wide cap on the threads of one kernel call; 0 follows the pool.
static MAX_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Caps the threads every kernel call splits its work over at `n` (see the
/// [module docs](self)): the effective count is `min(pool size, n)`; `n = 0` (the default)
/// removes the cap, so kernels follow the pool they run on. Process-wide, and read at the
/// start of each kernel call: calls already running keep their split.
///
/// ```
/// use keel_kernels::parallel::{current_num_threads, max_threads, set_max_threads};
///
/// set_max_threads(1);
/// assert_eq!((max_threads(), current_num_threads()), (1, 1)); // min(pool size, 1)
/// set_max_threads(0); // no cap: kernels follow the pool again
/// assert_eq!(current_num_threads(), rayon::current_num_threads());
/// ```
pub fn set_max_threads(n: usize) {
    MAX_THREADS.store(n, Ordering::Relaxed);
}

/// The cap [`set_max_threads`] set, 0 when kernels follow the pool.
pub fn max_threads() -> usize {
    MAX_THREADS.load(Ordering::Relaxed)
}

thread_local! {
    /// Whether the calling thread is inside [`serial`].
    static SERIAL: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with every kernel call it makes on this thread kept on this thread (an effective
/// thread count of 1, whatever the pool): for a chain of small dependent calls, such as the
/// steps of a recurrent layer, where handing half of each call to another core costs more
/// (the wake-up, and the other half's data crossing between the cores' caches) than it
/// saves. The bits are those of a 1-thread pool. Nests; the previous state comes back when
/// `f` returns or panics.
///
/// ```
/// use keel_kernels::activation::tanh_forward;
/// use keel_kernels::parallel::{current_num_threads, serial};
/// # fn main() -> keel_kernels::Result<()> {
/// let x = vec![0.5; 1 << 17]; // long enough to be split outside `serial`
/// let (mut y, mut y_serial) = (vec![0.0; x.len()], vec![0.0; x.len()]);
/// tanh_forward(&x, &mut y)?;
/// serial(|| {
///     assert_eq!(current_num_threads(), 1);
///     tanh_forward(&x, &mut y_serial)
/// })?;
/// assert_eq!(y, y_serial); // an element-wise pass gives the same bits either way
/// # Ok(())
/// # }
/// ```
pub fn serial<R>(f: impl FnOnce() -> R) -> R {
    /// Puts the previous state back when dropped.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SERIAL.with(|serial| serial.set(self.0));
        }
    }
    let _restore = Restore(SERIAL.with(|serial| serial.replace(true)));
    f()
}

/// The effective thread count of a kernel called here: 1 inside [`serial`], else the number
/// of threads of the pool the caller runs on, capped by [`max_threads`] when that is not 0.
pub fn current_num_threads() -> usize {
    if SERIAL.with(Cell::get) {
        return 1;
    }
    let pool = rayon::current_num_threads();
    match max_threads() {
        0 => pool,
        cap => pool.min(cap),
    }
}

/// Length of the chunks an element-wise pass over `len` items is split into: one chunk when
/// the pass is short or there is one (effective, see [`current_num_threads`]) thread,
/// otherwise about four chunks per thread (for balance), rounded up to a multiple of
/// `align` so SIMD bodies see whole vectors. A function of `len` and the effective thread
/// count only, so reductions over the chunks keep their bits whatever the pool behind it.
pub fn chunk_len(len: usize, align: usize) -> usize {
    let threads = current_num_threads();
    if len < MIN_PARALLEL_ELEMENTS || threads <= 1 {
        return len.max(1);
    }
    let chunks = threads * 4;
    let per = len.div_ceil(chunks).max(MIN_PARALLEL_ELEMENTS / 4);
    per.div_ceil(align) * align
}
