//! The bandwidth yardstick of the memory-bound benches: a plain copy, split across the
//! threads of the current rayon pool as keel splits its passes, so that a kernel on T
//! threads is set beside a copy on T threads.

use rayon::prelude::*;

/// Copies `source` into `target` (equal lengths), one contiguous part per thread of the
/// current pool.
pub fn parallel_copy(target: &mut [f32], source: &[f32]) {
    let part = source.len().div_ceil(rayon::current_num_threads()).max(1);
    target.par_chunks_mut(part).zip(source.par_chunks(part)).for_each(|(to, from)| to.copy_from_slice(from));
}
