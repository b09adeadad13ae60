//! The cache blocking of the packed loop nest (`driver.rs`), sized from the caches the CPU
//! reports ([`crate::cache`]) and the microkernel's tile.
//!
//! KC is fixed ([`KC`]: a 12-row micro-panel of 256 is 12 KiB, within any x86 L1d of 32 KiB
//! or more, and deeper blocks measured no faster). Which micro-panel stays in L1 while loop 1
//! streams the other's block from L2 is the [`LoopOrder`], and MC and NC follow from it:
//! - [`LoopOrder::BPanelInL1`] (BLIS's order) where a B̃ micro-panel (`KC x NR`) takes at
//!   most half of L1d (AVX2's 16 KiB on a 32 KiB L1d): the Ã block takes a quarter of L2
//!   (MC = 120 on a 512 KiB L2) and the B̃ block, read once per Ã block, lives in L3
//!   ([`NC_IN_L3`] columns). Op(A) is packed once per NC columns of C, so rarely.
//! - [`LoopOrder::APanelInL1`] where it does not (AVX-512's 32 KiB): B̃'s block takes half of
//!   L2 and Ã's 3/32 of it, which on a 2 MiB L2 gives the NC = 1024 and MC = 192 measured best
//!   there (`docs/tuning.md`). On a small L2 this packs op(A) often: once per 256 columns of C
//!   on 512 KiB.

use std::sync::OnceLock;

use super::avx2::Avx2;
use super::avx512::Avx512;
use super::microkernel::Microkernel;
use super::portable::Portable;
use super::tuning::{KC, NC_IN_L3};
use crate::cache::{cache_sizes, CacheSizes};
use crate::isa::Isa;

/// Every microkernel's MR divides this (12, 6, 4): MC is a multiple of it.
const MR_MULTIPLE: usize = 12;
/// Every microkernel's NR divides this (32, 16, 8): NC is a multiple of it.
const NR_MULTIPLE: usize = 32;

/// The order of loops 2 and 1 of the packed loop nest: which micro-panel stays in L1 while
/// loop 1 streams micro-panels of the other operand's block from L2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoopOrder {
    /// Loop 2 over Ã's micro-panels (`MR x KC` in L1), loop 1 over the B̃ block's (in L2).
    APanelInL1,
    /// Loop 2 over B̃'s micro-panels (`KC x NR` in L1), loop 1 over the Ã block's (in L2).
    BPanelInL1,
}

/// The block sizes of keel's packed GEMM for one microkernel on one CPU.
///
/// ```
/// use keel_kernels::cache::CacheSizes;
/// use keel_kernels::gemm::{Blocking, LoopOrder};
///
/// // 48 KiB L1d and 2 MiB L2 (an AVX-512 Xeon), 16-column AVX-512 tiles of 32 floats.
/// let xeon = Blocking::for_caches(&CacheSizes { l1d: 48 << 10, l2: 2 << 20 }, 32);
/// assert_eq!((xeon.order, xeon.kc, xeon.mc, xeon.nc), (LoopOrder::APanelInL1, 256, 192, 1024));
/// // 32 KiB and 512 KiB (AMD Zen 3), AVX2 tiles of 16 floats.
/// let zen3 = Blocking::for_caches(&CacheSizes { l1d: 32 << 10, l2: 512 << 10 }, 16);
/// assert_eq!((zen3.order, zen3.kc, zen3.mc, zen3.nc), (LoopOrder::BPanelInL1, 256, 120, 4096));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Blocking {
    /// Which micro-panel loop 2 keeps in L1.
    pub order: LoopOrder,
    /// Depth of one block of k.
    pub kc: usize,
    /// Rows of the packed block Ã (`MC x KC`); a multiple of every MR.
    pub mc: usize,
    /// Columns of the packed block B̃ (`KC x NC`); a multiple of every NR.
    pub nc: usize,
    /// Largest block of A (in floats, an eighth of L2) a part reads in place rather than
    /// packing (with the conditions in `driver.rs`).
    pub direct_a_max_floats: usize,
}

impl Blocking {
    /// The blocking for a core with `caches` and a microkernel `nr` columns wide.
    pub fn for_caches(caches: &CacheSizes, nr: usize) -> Blocking {
        let block_bytes = KC * size_of::<f32>();
        let order =
            if 2 * block_bytes * nr <= caches.l1d { LoopOrder::BPanelInL1 } else { LoopOrder::APanelInL1 };
        let (mc_bytes, nc) = match order {
            LoopOrder::BPanelInL1 => (caches.l2 / 4, NC_IN_L3),
            LoopOrder::APanelInL1 => (
                caches.l2 * 3 / 32,
                (caches.l2 / 2 / block_bytes / NR_MULTIPLE * NR_MULTIPLE)
                    .clamp(4 * NR_MULTIPLE, 128 * NR_MULTIPLE),
            ),
        };
        let mc =
            (mc_bytes / block_bytes / MR_MULTIPLE * MR_MULTIPLE).clamp(4 * MR_MULTIPLE, 64 * MR_MULTIPLE);
        let direct_a_max_floats = (caches.l2 / 8 / size_of::<f32>()).max(KC * MR_MULTIPLE);
        Blocking { order, kc: KC, mc, nc, direct_a_max_floats }
    }
}

/// The blocking keel's packed GEMM uses on this CPU with the microkernel of `isa`:
/// [`Blocking::for_caches`] of [`cache_sizes`] and the kernel's NR, computed on the first call.
pub fn blocking(isa: Isa) -> Blocking {
    static BLOCKING: [OnceLock<Blocking>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let nr = match isa {
        Isa::Avx512 => Avx512::NR,
        Isa::Avx2 => Avx2::NR,
        Isa::Portable => Portable::NR,
    };
    *BLOCKING[isa as usize].get_or_init(|| Blocking::for_caches(&cache_sizes(), nr))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every L2 from 64 KiB to 64 MiB gives blocks that divide into whole micro-panels of
    /// every microkernel, with the blocks that stay in L2 fitting it: Ã beside B̃ in the
    /// order with Ã's micro-panel in L1, Ã alone in the other.
    #[test]
    fn blocks_fit_every_microkernel_and_the_l2() {
        for l2_kib in [64, 256, 512, 1024, 1280, 2048, 4096, 32768, 65536] {
            let caches = CacheSizes { l1d: 32 << 10, l2: l2_kib << 10 };
            for (mr, nr) in [(12, 32), (6, 16), (4, 8)] {
                let b = Blocking::for_caches(&caches, nr);
                assert_eq!(b.mc % mr, 0, "{b:?}");
                assert_eq!(b.nc % nr, 0, "{b:?}");
                let in_l2 = match b.order {
                    LoopOrder::APanelInL1 => b.mc + b.nc,
                    LoopOrder::BPanelInL1 => b.mc,
                };
                if l2_kib >= 256 {
                    assert!(in_l2 * b.kc * 4 <= caches.l2, "{b:?} overflows {l2_kib} KiB");
                }
            }
        }
    }

    /// The order follows the B̃ micro-panel's share of L1d (at most half: B̃'s in L1), and the
    /// blocks of the L2 sizes of the CPUs keel is tuned on follow the docs (Ã's micro-panel
    /// in L1: B̃'s block half the L2 and Ã's 3/32 of it; B̃'s in L1: Ã's block a quarter of
    /// L2 and B̃'s `NC_IN_L3` columns; the in-place A limit an eighth), with the clamps at
    /// both ends.
    #[test]
    fn blocks_of_known_caches() {
        use LoopOrder::{APanelInL1, BPanelInL1};
        let cases = [
            // (L1d KiB, L2 KiB, NR, order, mc, nc, direct_a_max_floats)
            (48, 2048, 32, APanelInL1, 192, 1024, 65536), // Intel Xeon (Sapphire / Emerald Rapids), AVX-512
            (48, 2048, 16, BPanelInL1, 504, NC_IN_L3, 65536), // the same, AVX2
            (48, 1024, 32, APanelInL1, 96, 512, 32768),   // AMD Zen 5, AVX-512
            (32, 1024, 32, APanelInL1, 96, 512, 32768),   // AMD Zen 4, AVX-512
            (32, 512, 16, BPanelInL1, 120, NC_IN_L3, 16384), // AMD Zen 2 / Zen 3, AVX2
            (32, 512, 32, APanelInL1, 48, 256, 16384),    // Zen 3's caches, AVX-512 tiles
            (32, 256, 32, APanelInL1, 48, 128, 8192),     // clamped below: mc 24 → 48
            (32, 64, 16, BPanelInL1, 48, NC_IN_L3, 3072), // clamped below, and A's limit one KC x 12 block
            (32, 65536, 32, APanelInL1, 768, 4096, 2 << 20), // clamped above
        ];
        for (l1d_kib, l2_kib, nr, order, mc, nc, direct) in cases {
            let b = Blocking::for_caches(&CacheSizes { l1d: l1d_kib << 10, l2: l2_kib << 10 }, nr);
            let want = Blocking { order, kc: KC, mc, nc, direct_a_max_floats: direct };
            assert_eq!(b, want, "L1d {l1d_kib} KiB, L2 {l2_kib} KiB, NR {nr}");
        }
    }
}
