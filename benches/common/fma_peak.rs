//! The machine's FMA limit, shared by `benches/gemm.rs` and `examples/peer_timings.rs` (each
//! includes this file by path): 12 independent chains of FMAs on registers only (12 cover a
//! 4-cycle latency on 2 pipes with room to spare, and with the two constants fit AVX2's 16
//! vector registers), no memory traffic.

use keel::kernels::isa::Isa;

/// Loop iterations of one call of [`fma_peak`]; each runs one FMA per chain.
const ITERATIONS: u64 = 100_000;
/// Independent accumulators.
const CHAINS: u64 = 12;

/// FLOPs of one call of [`fma_peak`] on `isa` (a multiply-add counts two), or `None` for an
/// instruction set without a vector FMA loop here (the portable one).
pub fn peak_flops(isa: Isa) -> Option<u64> {
    let lanes = match isa {
        Isa::Avx512 => 16,
        Isa::Avx2 => 8,
        Isa::Portable => return None,
    };
    Some(ITERATIONS * CHAINS * lanes * 2)
}

/// One call of the FMA loop on `isa` (512-bit or 256-bit vectors), returning the sum of the
/// chains so the work is not optimised away; `None` where [`peak_flops`] is `None`.
///
/// Panics if the CPU does not have `isa`.
pub fn fma_peak(isa: Isa, seed: f32) -> Option<f32> {
    isa.check_supported().expect("the CPU has the instruction set");
    match isa {
        // SAFETY: the CPU has AVX-512F (checked above).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Some(unsafe { fma_loop_avx512(seed) }),
        // SAFETY: the CPU has AVX2 and FMA (checked above).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => Some(unsafe { fma_loop_avx2(seed) }),
        _ => None,
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fma_loop_avx512(seed: f32) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_set1_ps(seed); CHAINS as usize];
    let x = _mm512_set1_ps(0.999_999);
    let y = _mm512_set1_ps(1e-7);
    for _ in 0..ITERATIONS {
        for chain in acc.iter_mut() {
            *chain = _mm512_fmadd_ps(*chain, x, y);
        }
    }
    let mut sum = _mm512_setzero_ps();
    for chain in acc {
        sum = _mm512_add_ps(sum, chain);
    }
    _mm512_reduce_add_ps(sum)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma_loop_avx2(seed: f32) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_set1_ps(seed); CHAINS as usize];
    let x = _mm256_set1_ps(0.999_999);
    let y = _mm256_set1_ps(1e-7);
    for _ in 0..ITERATIONS {
        for chain in acc.iter_mut() {
            *chain = _mm256_fmadd_ps(*chain, x, y);
        }
    }
    let mut sum = _mm256_setzero_ps();
    for chain in acc {
        sum = _mm256_add_ps(sum, chain);
    }
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` holds the 8 floats written.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
    lanes.iter().sum()
}
