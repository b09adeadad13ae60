//! The packing buffers of the GEMM paths, kept between calls so steady-state calls
//! allocate nothing.

use std::sync::{Mutex, PoisonError};

use super::line_aligned::LineAligned;
use crate::parallel::current_num_threads;

/// Packing buffers of one kind, shared by every thread: each part of a GEMM takes one and
/// gives it back. The first time one is missing, one per pool thread is made, so parts on
/// every thread at once find theirs and steady-state calls allocate nothing, whichever
/// threads rayon runs the parts on. (Buffers owned per thread, or made one at a time, were
/// allocated again whenever parts first ran on a new thread or side by side.) A part that
/// waits inside rayon may run a stolen task that starts another GEMM: that one takes (or
/// makes) the next buffer.
pub(super) struct Spares {
    free: Vec<LineAligned>,
    made: usize,
}

/// Spare packed Ã blocks.
pub(super) static PACKED_A: Mutex<Spares> = Mutex::new(Spares { free: Vec::new(), made: 0 });
/// Spare packed B̃ blocks.
pub(super) static PACKED_B: Mutex<Spares> = Mutex::new(Spares { free: Vec::new(), made: 0 });

/// Takes a spare buffer, at least `len` long. Buffers are sized for the largest block
/// (`max_len`) when made, so later calls with other shapes do not grow them.
pub(super) fn take_buffer(spares: &Mutex<Spares>, len: usize, max_len: usize) -> LineAligned {
    let mut spares = spares.lock().unwrap_or_else(PoisonError::into_inner);
    if spares.free.is_empty() {
        let missing = current_num_threads().saturating_sub(spares.made).max(1);
        spares.free.extend((0..missing).map(|_| LineAligned::zeroed(max_len)));
        spares.made += missing;
    }
    let mut buffer = spares.free.pop().unwrap_or_default();
    if buffer.len() < len {
        buffer.grow_to(len.max(max_len));
    }
    buffer
}

/// Gives a buffer back to the spares.
pub(super) fn return_buffer(spares: &Mutex<Spares>, buffer: LineAligned) {
    spares.lock().unwrap_or_else(PoisonError::into_inner).free.push(buffer);
}
