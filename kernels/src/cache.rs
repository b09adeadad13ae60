//! The data caches of the CPU keel runs on: what the GEMM's cache blocking
//! ([`crate::gemm::Blocking`]) is sized from, rather than from constants for one CPU.
//!
//! [`cache_sizes`] reads them once per process from CPUID's deterministic cache parameters
//! (leaf 4 on Intel, leaf `0x8000001D` on AMD), the figures `lscpu` shows. The environment
//! variable `KEEL_CACHE_L2_KIB` overrides the level-2 size (in KiB), to try another CPU's
//! blocking on this one; where CPUID reports nothing (another architecture, a hypervisor that
//! hides the leaves), [`CacheSizes::FALLBACK`] applies.
//!
//! ```
//! use keel_kernels::cache::cache_sizes;
//!
//! let caches = cache_sizes();
//! assert!(caches.l1d >= 8 << 10 && caches.l2 >= caches.l1d);
//! ```

use std::sync::OnceLock;

/// The capacity of one core's private data caches, in bytes.
///
/// Sizes are per core: two hardware threads of one core (SMT) share them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheSizes {
    /// The level-1 data cache.
    pub l1d: usize,
    /// The level-2 cache (unified), or the largest cache below L3 when a CPU has no L2.
    pub l2: usize,
}

impl CacheSizes {
    /// The sizes used when the CPU reports none: 32 KiB L1d, 1 MiB L2, in the middle of the
    /// x86-64 cores keel meets (512 KiB to 2 MiB of L2).
    pub const FALLBACK: CacheSizes = CacheSizes { l1d: 32 << 10, l2: 1 << 20 };
}

/// The caches of this CPU ([`CacheSizes`]), detected on the first call, with the L2 override
/// of `KEEL_CACHE_L2_KIB` if set to a positive number of KiB.
pub fn cache_sizes() -> CacheSizes {
    static SIZES: OnceLock<CacheSizes> = OnceLock::new();
    *SIZES.get_or_init(|| {
        let detected = detect().unwrap_or(CacheSizes::FALLBACK);
        let l2_override =
            std::env::var("KEEL_CACHE_L2_KIB").ok().and_then(|kib| kib.trim().parse::<usize>().ok());
        match l2_override {
            Some(kib) if kib > 0 => CacheSizes { l2: kib.saturating_mul(1024), ..detected },
            _ => detected,
        }
    })
}

/// The L1d and L2 sizes from CPUID's cache-parameter leaves, if the CPU reports both.
#[cfg(target_arch = "x86_64")]
fn detect() -> Option<CacheSizes> {
    use std::arch::x86_64::{__cpuid, __cpuid_count};

    // Leaf 4 (Intel) and 0x8000001D (AMD) share one layout; a CPU reports through one and
    // returns type 0 ("no more caches") from the other.
    let (max_leaf, max_extended_leaf) = (__cpuid(0).eax, __cpuid(0x8000_0000).eax);
    let leaves = [(4, max_leaf), (0x8000_001D, max_extended_leaf)];
    let (mut l1d, mut l2) = (None, None);
    for leaf in leaves.into_iter().filter(|&(leaf, max)| max >= leaf).map(|(leaf, _)| leaf) {
        // At most a handful of caches per CPU; the bound guards against a leaf that never
        // reports type 0.
        for subleaf in 0..16 {
            let r = __cpuid_count(leaf, subleaf);
            let kind = r.eax & 0x1f;
            if kind == 0 {
                break;
            }
            let level = (r.eax >> 5) & 0x7;
            let ways = ((r.ebx >> 22) & 0x3ff) as usize + 1;
            let partitions = ((r.ebx >> 12) & 0x3ff) as usize + 1;
            let line = (r.ebx & 0xfff) as usize + 1;
            let sets = r.ecx as usize + 1;
            let size = ways * partitions * line * sets;
            // Type 1 is a data cache, 3 a unified one; 2 (instructions) does not count.
            match (level, kind) {
                (1, 1 | 3) => l1d = Some(size),
                (2, 1 | 3) => l2 = Some(size),
                _ => {}
            }
        }
        if l1d.is_some() && l2.is_some() {
            break;
        }
    }
    Some(CacheSizes { l1d: l1d?, l2: l2? })
}

/// Other architectures: no CPUID; the fallback sizes apply.
#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Option<CacheSizes> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On x86-64, CPUID reports both caches, with sizes in the range real cores have.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn cpuid_reports_plausible_caches() {
        let caches = detect().expect("CPUID reports no L1d or L2");
        assert!((16 << 10..=256 << 10).contains(&caches.l1d), "{caches:?}");
        assert!((128 << 10..=64 << 20).contains(&caches.l2), "{caches:?}");
        assert!(caches.l2 > caches.l1d, "{caches:?}");
    }
}
