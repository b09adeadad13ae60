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
///
/// Every buffer of a kind has one length, the largest any call has asked for: when a call
/// asks for more, the spare buffers grow at once and the taken ones when given back. So once
/// the shapes of a workload have all been seen, no buffer grows again, whichever buffer the
/// scheduling hands to which call (buffers of different lengths, traded between the paths
/// that share a kind, grew again now and then in steady state).
pub(super) struct Spares {
    free: Vec<LineAligned>,
    made: usize,
    len: usize,
}

impl Spares {
    const fn new() -> Self {
        Spares { free: Vec::new(), made: 0, len: 0 }
    }
}

/// Spare packed Ã blocks.
pub(super) static PACKED_A: Mutex<Spares> = Mutex::new(Spares::new());
/// Spare packed B̃ blocks.
pub(super) static PACKED_B: Mutex<Spares> = Mutex::new(Spares::new());

/// Takes a spare buffer, at least `len` long. Buffers are sized for the largest block
/// (`max_len`) when made, so later calls with other shapes do not grow them.
pub(super) fn take_buffer(spares: &Mutex<Spares>, len: usize, max_len: usize) -> LineAligned {
    let mut spares = spares.lock().unwrap_or_else(PoisonError::into_inner);
    let wanted = len.max(max_len);
    if wanted > spares.len {
        spares.len = wanted;
        spares.free.iter_mut().for_each(|buffer| buffer.grow_to(wanted));
    }
    if spares.free.is_empty() {
        let missing = current_num_threads().saturating_sub(spares.made).max(1);
        let len = spares.len;
        spares.free.extend((0..missing).map(|_| LineAligned::zeroed(len)));
        spares.made += missing;
    }
    let mut buffer = spares.free.pop().unwrap_or_default();
    buffer.grow_to(spares.len);
    buffer
}

/// Gives a buffer back to the spares, grown to their length if it grew meanwhile.
pub(super) fn return_buffer(spares: &Mutex<Spares>, mut buffer: LineAligned) {
    let mut spares = spares.lock().unwrap_or_else(PoisonError::into_inner);
    buffer.grow_to(spares.len);
    spares.free.push(buffer);
}
