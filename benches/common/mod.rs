//! Helpers shared by the benches: the 1- and 2-thread pools, and one keel run per instruction
//! set of the CPU on each.
#![allow(dead_code)] // each bench uses its own subset

pub mod copy;

use criterion::BenchmarkId;
use keel::kernels::isa::Isa;

/// A 1-thread and a 2-thread rayon pool, with their sizes.
pub fn pools() -> Vec<(usize, rayon::ThreadPool)> {
    [1, 2].into_iter().map(|t| (t, rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap())).collect()
}

/// One keel run of a group: an instruction set (forced with `isa::with_isa` by the bench) on
/// a pool.
pub struct IsaRun {
    pub isa: Isa,
    pub threads: usize,
    pub pool: rayon::ThreadPool,
}

impl IsaRun {
    /// The run's id, `keel_<isa><suffix>/T<threads>` (e.g. `keel_avx512_forward/T1`).
    pub fn id(&self, suffix: &str) -> BenchmarkId {
        BenchmarkId::new(format!("keel_{}{suffix}", self.isa.name()), format!("T{}", self.threads))
    }
}

/// Every instruction set of the CPU on 1 and 2 threads.
pub fn isa_runs() -> Vec<IsaRun> {
    let mut runs = Vec::new();
    for isa in Isa::available() {
        for (threads, pool) in pools() {
            runs.push(IsaRun { isa, threads, pool });
        }
    }
    runs
}
