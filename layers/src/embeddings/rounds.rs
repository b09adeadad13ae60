//! Deterministic data-parallel training for the embedding trainers: shards that train
//! private copies of the shared matrices in rounds, merged in a fixed order.
//!
//! Each round, every shard that has work left copies the shared matrices, trains its copy on
//! its next items, and the round ends by adding every shard's change to the shared
//! matrices, element by element in shard order: `shared += Σ_s (copy_s - shared)`. So a run
//! depends on the data, the seeds and the number of shards only, never on timing (unlike the
//! Hogwild threads of `word2vec.c` and `glove.c`, which race on shared rows). With one shard
//! it trains the shared matrices in place, with no copy.

use keel_kernels::isa::{with_isa, Isa};
use rayon::prelude::*;

use crate::error::Result;

/// One shard of an epoch: its position in its part of the data and whatever it sums.
pub(super) trait Shard: Send {
    /// Trains about one round's worth of this shard's next items on `matrices` (the shard's
    /// copy, or the shared matrices when it is alone), the run having read `done` items
    /// before the round; returns the items read.
    fn round(&mut self, matrices: &mut [&mut [f32]], done: u64) -> Result<u64>;

    /// Whether every item of the shard has been read.
    fn finished(&self) -> bool;
}

/// Runs `shards` in rounds over `shared` until every one is finished (see the module docs),
/// starting at `done` items; returns the items read by then. Each shard's work runs on `isa`.
/// `copies` holds one set of buffers per shard, resized here as needed and kept by the
/// caller across epochs.
pub(super) fn run_rounds<S: Shard>(
    isa: Isa,
    shared: &mut [Vec<f32>],
    shards: &mut [S],
    copies: &mut Vec<Vec<Vec<f32>>>,
    mut done: u64,
) -> Result<u64> {
    if let [shard] = shards {
        let mut matrices: Vec<&mut [f32]> = shared.iter_mut().map(Vec::as_mut_slice).collect();
        while !shard.finished() {
            done += shard.round(&mut matrices, done)?;
        }
        return Ok(done);
    }
    copies.resize_with(shards.len(), Vec::new);
    for copy in copies.iter_mut() {
        copy.resize_with(shared.len(), Vec::new);
        for (buffer, matrix) in copy.iter_mut().zip(shared.iter()) {
            buffer.resize(matrix.len(), 0.0);
        }
    }
    while shards.iter().any(|s| !s.finished()) {
        let source: &[Vec<f32>] = shared;
        let reads: Vec<Result<Option<u64>>> = shards
            .par_iter_mut()
            .zip(copies.par_iter_mut())
            .map(|(shard, copy)| {
                if shard.finished() {
                    return Ok(None);
                }
                let mut matrices: Vec<&mut [f32]> = copy
                    .iter_mut()
                    .zip(source)
                    .map(|(buffer, matrix)| {
                        buffer.copy_from_slice(matrix);
                        buffer.as_mut_slice()
                    })
                    .collect();
                with_isa(isa, || shard.round(&mut matrices, done))?.map(Some)
            })
            .collect();
        let mut active = Vec::new();
        for (index, read) in reads.into_iter().enumerate() {
            if let Some(read) = read? {
                done += read;
                active.push(index);
            }
        }
        for (m, matrix) in shared.iter_mut().enumerate() {
            let changed: Vec<&[f32]> = active.iter().map(|&s| copies[s][m].as_slice()).collect();
            merge(matrix, &changed);
        }
    }
    Ok(done)
}

/// `shared += Σ_s (copy_s - shared)`, element by element in shard order.
fn merge(shared: &mut [f32], copies: &[&[f32]]) {
    const CHUNK: usize = 1 << 14;
    shared.par_chunks_mut(CHUNK).enumerate().for_each(|(k, chunk)| {
        let at = k * CHUNK;
        for (i, value) in chunk.iter_mut().enumerate() {
            let base = *value;
            *value = copies.iter().fold(base, |sum, copy| sum + (copy[at + i] - base));
        }
    });
}

/// The number of shards: `threads`, or the effective thread count of the kernels when 0
/// (`keel_kernels::parallel::current_num_threads`), at most `items` and at least 1.
pub(super) fn shard_count(threads: usize, items: usize) -> usize {
    let threads = if threads == 0 { keel_kernels::parallel::current_num_threads() } else { threads };
    threads.min(items).max(1)
}
