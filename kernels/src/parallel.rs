//! When kernels split work across threads, and how.
//!
//! Kernels run their parallel parts on the rayon pool they are called from: the global pool
//! by default, or the caller's own pool inside `pool.install(|| ...)`. That is how the thread
//! count is controlled (`RAYON_NUM_THREADS`, or a pool of the size you want). Work below the
//! thresholds here stays on the calling thread, where spawning would cost more than it saves.
//! Splits depend only on the problem size and the pool size, so a given thread count gives
//! the same bits on every run.

/// Element-wise passes (activations, optimizer updates, ...) shorter than this run on the
/// calling thread: about 32 µs of work at memory speed, well above rayon's spawn cost.
pub const MIN_PARALLEL_ELEMENTS: usize = 1 << 16;

/// Products with fewer multiply-adds than this (m·n·k) run on the calling thread.
pub const MIN_PARALLEL_MULADDS: usize = 1 << 20;

/// The number of threads of the pool the caller runs on.
pub fn current_num_threads() -> usize {
    rayon::current_num_threads()
}

/// Length of the chunks an element-wise pass over `len` items is split into: one chunk when
/// the pass is short or there is one thread, otherwise about four chunks per thread (for
/// balance), rounded up to a multiple of `align` so SIMD bodies see whole vectors.
pub fn chunk_len(len: usize, align: usize) -> usize {
    let threads = current_num_threads();
    if len < MIN_PARALLEL_ELEMENTS || threads <= 1 {
        return len.max(1);
    }
    let chunks = threads * 4;
    let per = len.div_ceil(chunks).max(MIN_PARALLEL_ELEMENTS / 4);
    per.div_ceil(align) * align
}
