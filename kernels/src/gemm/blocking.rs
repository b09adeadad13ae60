//! The cache blocking of the packed loop nest (`driver.rs`), sized from the caches the CPU
//! reports ([`crate::cache`]).
//!
//! The loop nest keeps an Ã micro-panel (`MR x KC`) in L1 while the B̃ block (`KC x NC`)
//! and the Ã block (`MC x KC`) stay in L2. KC is fixed ([`KC`]: a 12-row micro-panel of 256
//! is 12 KiB, within any x86 L1d of 32 KiB or more, and deeper blocks measured no faster);
//! NC and MC follow the L2: B̃ takes half of it and Ã 3/32, which on a 2 MiB L2 gives the
//! NC = 1024 and MC = 192 measured best there (`docs/tuning.md`), and on a 512 KiB L2 (AMD
//! Zen 3) NC = 256 and MC = 48, where a 1 MiB B̃ would stream from L3.

use std::sync::OnceLock;

use super::tuning::KC;
use crate::cache::{cache_sizes, CacheSizes};

/// Every microkernel's MR divides this (12, 6, 4): MC is a multiple of it.
const MR_MULTIPLE: usize = 12;
/// Every microkernel's NR divides this (32, 16, 8): NC is a multiple of it.
const NR_MULTIPLE: usize = 32;

/// The block sizes of keel's packed GEMM on one CPU, the same for every instruction set.
///
/// ```
/// use keel_kernels::cache::CacheSizes;
/// use keel_kernels::gemm::Blocking;
///
/// // 48 KiB L1d and 2 MiB L2 (an AVX-512 Xeon); 32 KiB and 512 KiB (AMD Zen 3).
/// let xeon = Blocking::for_caches(&CacheSizes { l1d: 48 << 10, l2: 2 << 20 });
/// assert_eq!((xeon.kc, xeon.mc, xeon.nc), (256, 192, 1024));
/// let zen3 = Blocking::for_caches(&CacheSizes { l1d: 32 << 10, l2: 512 << 10 });
/// assert_eq!((zen3.kc, zen3.mc, zen3.nc), (256, 48, 256));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Blocking {
    /// Depth of one block of k (an Ã micro-panel `MR x KC` stays in L1).
    pub kc: usize,
    /// Rows of the packed block Ã (`MC x KC`, in L2 beside B̃); a multiple of every MR.
    pub mc: usize,
    /// Columns of the packed block B̃ (`KC x NC`, half of L2); a multiple of every NR.
    pub nc: usize,
    /// Largest block of A (in floats, an eighth of L2) a part reads in place rather than
    /// packing (with the conditions in `driver.rs`).
    pub direct_a_max_floats: usize,
}

impl Blocking {
    /// The blocking for a core with `caches`.
    pub fn for_caches(caches: &CacheSizes) -> Blocking {
        let block_bytes = KC * size_of::<f32>();
        let nc = (caches.l2 / 2 / block_bytes / NR_MULTIPLE * NR_MULTIPLE)
            .clamp(4 * NR_MULTIPLE, 128 * NR_MULTIPLE);
        let mc = (caches.l2 * 3 / 32 / block_bytes / MR_MULTIPLE * MR_MULTIPLE)
            .clamp(4 * MR_MULTIPLE, 64 * MR_MULTIPLE);
        let direct_a_max_floats = (caches.l2 / 8 / size_of::<f32>()).max(KC * MR_MULTIPLE);
        Blocking { kc: KC, mc, nc, direct_a_max_floats }
    }
}

/// The blocking keel's packed GEMM uses on this CPU: [`Blocking::for_caches`] of
/// [`cache_sizes`], computed on the first call.
pub fn blocking() -> Blocking {
    static BLOCKING: OnceLock<Blocking> = OnceLock::new();
    *BLOCKING.get_or_init(|| Blocking::for_caches(&cache_sizes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every L2 from 64 KiB to 64 MiB gives blocks that divide into whole micro-panels of
    /// every microkernel and fit the L2 together.
    #[test]
    fn blocks_fit_every_microkernel_and_the_l2() {
        for l2_kib in [64, 256, 512, 1024, 1280, 2048, 4096, 32768, 65536] {
            let caches = CacheSizes { l1d: 32 << 10, l2: l2_kib << 10 };
            let b = Blocking::for_caches(&caches);
            for (mr, nr) in [(12, 32), (6, 16), (4, 8)] {
                assert_eq!(b.mc % mr, 0, "{b:?}");
                assert_eq!(b.nc % nr, 0, "{b:?}");
            }
            let floats = (b.mc + b.nc) * b.kc;
            if l2_kib >= 256 {
                assert!(floats * 4 <= caches.l2, "{b:?} overflows {l2_kib} KiB");
            }
        }
    }

    /// The blocks of the L2 sizes of the CPUs keel is tuned on, as the docs state them
    /// (B̃'s block half the L2, Ã's 3/32 of it, the in-place A limit an eighth), and the
    /// clamps at both ends.
    #[test]
    fn blocks_of_known_l2_sizes() {
        let cases = [
            // (L2 KiB, mc, nc, direct_a_max_floats)
            (2048, 192, 1024, 65536),    // Intel Xeon (Sapphire / Emerald Rapids)
            (1024, 96, 512, 32768),      // AMD Zen 4 / Zen 5
            (512, 48, 256, 16384),       // AMD Zen 2 / Zen 3
            (256, 48, 128, 8192),        // clamped below: mc 24 → 48
            (64, 48, 128, 3072),         // clamped below, and A's limit one KC x 12 block
            (65536, 768, 4096, 2 << 20), // clamped above
        ];
        for (l2_kib, mc, nc, direct) in cases {
            let b = Blocking::for_caches(&CacheSizes { l1d: 48 << 10, l2: l2_kib << 10 });
            assert_eq!(b, Blocking { kc: KC, mc, nc, direct_a_max_floats: direct }, "L2 {l2_kib} KiB");
        }
    }
}
