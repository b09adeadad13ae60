//! A packed operand shared by the parts of one GEMM call.
//!
//! When C is cut into row parts, every part needs all of B̃ (column parts: all of Ã), and
//! packing it in each part packs it once per thread. Here it is packed once, micro-panel by
//! micro-panel, by whichever part first needs a panel. A part that needs a panel while
//! another part is packing it waits for that one copy to finish (each part starts its sweep
//! at its own panel, so the parts pack different panels and rarely wait). A part only ever
//! waits on a panel that another part is packing at that moment, with nothing left to wait
//! for: this cannot deadlock, even when rayon runs the parts one after the other on one
//! thread (the first part then packs every panel).
//!
//! The operand is kept whole, all blocks of k at once, since parts move from one block of k
//! to the next at their own pace.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};

use super::line_aligned::LineAligned;
use super::parts::SharedMut;
use crate::parallel::current_num_threads;

/// No part has claimed the panel yet.
const UNPACKED: u8 = 0;
/// A part is packing the panel.
const PACKING: u8 = 1;
/// The panel is packed and read-only.
const PACKED: u8 = 2;

/// The memory of one shared operand: its floats and a state per micro-panel.
pub(crate) struct SharedStore {
    floats: LineAligned,
    states: Vec<AtomicU8>,
}

/// Spare stores: a call takes one for its parallel region and gives it back, so steady-state
/// calls allocate nothing. As with the packing buffers (`buffers.rs`), every store has the
/// size of the largest operand any call has shared: spare stores grow when that grows, taken
/// ones when given back, so no store grows again once a workload's shapes have been seen.
static SPARE_STORES: Mutex<Spares> = Mutex::new(Spares { free: Vec::new(), floats: 0, states: 0 });

/// The spare stores and the size they all have.
struct Spares {
    free: Vec<SharedStore>,
    floats: usize,
    states: usize,
}

impl SharedStore {
    /// A store of `floats` floats and `states` panel states.
    fn with_size(floats: usize, states: usize) -> Self {
        let mut store = SharedStore { floats: LineAligned::default(), states: Vec::new() };
        store.grow_to(floats, states);
        store
    }

    /// Grows the store to at least `floats` floats and `states` panel states.
    fn grow_to(&mut self, floats: usize, states: usize) {
        self.floats.grow_to(floats);
        if self.states.len() < states {
            self.states.resize_with(states, || AtomicU8::new(UNPACKED));
        }
    }
}

/// One operand of a GEMM call, packed on demand by its parts: `blocks` blocks of k (the block
/// starting at `pc` is `kc` deep), each of `panels` micro-panels of `kc x width` floats, block
/// after block (the block starting at `pc` begins at float `pc·panels·width`).
pub(crate) struct SharedPanels {
    store: SharedStore,
    data: SharedMut,
    panels: usize,
    width: usize,
    kc_step: usize,
}

impl SharedPanels {
    /// Panels for an operand `k` deep cut into blocks of `kc_step`, with `panels` micro-panels
    /// of `width` per block, none packed yet.
    pub(crate) fn new(k: usize, kc_step: usize, panels: usize, width: usize) -> Self {
        let floats = k * panels * width;
        let blocks = k.div_ceil(kc_step);
        let mut store = {
            let mut spares = SPARE_STORES.lock().unwrap_or_else(PoisonError::into_inner);
            if floats > spares.floats || blocks * panels > spares.states {
                spares.floats = spares.floats.max(floats);
                spares.states = spares.states.max(blocks * panels);
                let (floats, states) = (spares.floats, spares.states);
                spares.free.iter_mut().for_each(|store| store.grow_to(floats, states));
            }
            let (floats, states) = (spares.floats, spares.states);
            if spares.free.is_empty() {
                // One store per pool thread at once: calls on every thread side by side (the
                // images of a convolution) then find theirs, where stores made one at a time
                // were made again whenever more calls than ever before overlapped.
                let missing = current_num_threads().max(1);
                spares.free.extend((0..missing).map(|_| SharedStore::with_size(floats, states)));
            }
            // Every spare has the spares' size (grown above, made at it, or grown when given back).
            spares.free.pop().unwrap_or_else(|| SharedStore::with_size(floats, states))
        };
        store.states[..blocks * panels].iter_mut().for_each(|state| *state.get_mut() = UNPACKED);
        let data = SharedMut(store.floats.as_mut_ptr());
        SharedPanels { store, data, panels, width, kc_step }
    }

    /// Micro-panel `panel` of the block of k that starts at `pc` (`kc` deep): its `kc·width`
    /// floats, packed by `pack` (given exactly those floats to fill) if no part has packed it
    /// yet, or waited for if another part is packing it.
    pub(crate) fn panel(&self, pc: usize, kc: usize, panel: usize, pack: impl FnOnce(&mut [f32])) -> &[f32] {
        let state = &self.store.states[(pc / self.kc_step) * self.panels + panel];
        let start = pc * self.panels * self.width + panel * kc * self.width;
        let len = kc * self.width;
        assert!(panel < self.panels && start + len <= self.store.floats.len(), "shared panel out of range");
        // SAFETY: start + len is inside the store (asserted above).
        let first = unsafe { self.data.get().add(start) };
        if state.load(Ordering::Acquire) != PACKED {
            if state.compare_exchange(UNPACKED, PACKING, Ordering::Acquire, Ordering::Acquire).is_ok() {
                // SAFETY: the floats are inside the store; this part alone moved the panel's
                // state out of UNPACKED, and no part reads them before it is PACKED.
                pack(unsafe { std::slice::from_raw_parts_mut(first, len) });
                state.store(PACKED, Ordering::Release);
            } else {
                while state.load(Ordering::Acquire) != PACKED {
                    std::hint::spin_loop();
                }
            }
        }
        // SAFETY: the panel is PACKED: no part writes it again during this call.
        unsafe { std::slice::from_raw_parts(first, len) }
    }
}

impl Drop for SharedPanels {
    fn drop(&mut self) {
        let mut store = std::mem::replace(
            &mut self.store,
            SharedStore { floats: LineAligned::default(), states: Vec::new() },
        );
        let mut spares = SPARE_STORES.lock().unwrap_or_else(PoisonError::into_inner);
        store.grow_to(spares.floats, spares.states);
        spares.free.push(store);
    }
}
