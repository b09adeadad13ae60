//! The 16x16 transpose of AVX-512 vectors, in registers: the move of images into and out
//! of lanes (`conv::lanes`), the packing of transposed GEMM operands (`gemm::pack`), and the
//! store of the GEMM kernels with C's rows in lanes (`gemm::rows_in_lanes`).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Vectors in, and lanes of each.
const LANES: usize = 16;

/// The 16x16 transpose: `out[j][i] = rows[i][j]`. Pairs of rows are interleaved by 32-bit
/// then 64-bit elements inside each 128-bit lane, which leaves 4x4 blocks transposed; two
/// rounds of 128-bit lane shuffles put the blocks in place.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) fn transpose16(rows: [__m512; LANES]) -> [__m512; LANES] {
    // Round 1: t[2i] has, in 128-bit lane L, rows 2i, 2i+1 at columns 4L, 4L+1 (interleaved);
    // t[2i+1] the same at columns 4L+2, 4L+3.
    let mut t = [_mm512_setzero_ps(); LANES];
    for i in 0..LANES / 2 {
        t[2 * i] = _mm512_unpacklo_ps(rows[2 * i], rows[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(rows[2 * i], rows[2 * i + 1]);
    }
    // Round 2: u[4g + c] has, in 128-bit lane L, rows 4g..4g+4 of column 4L + c.
    let mut u = [_mm512_setzero_ps(); LANES];
    for g in 0..LANES / 4 {
        let (a, b, c, d) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
        let pairs = |x: __m512, y: __m512, high: bool| {
            let (x, y) = (_mm512_castps_pd(x), _mm512_castps_pd(y));
            _mm512_castpd_ps(if high { _mm512_unpackhi_pd(x, y) } else { _mm512_unpacklo_pd(x, y) })
        };
        u[4 * g] = pairs(a, c, false);
        u[4 * g + 1] = pairs(a, c, true);
        u[4 * g + 2] = pairs(b, d, false);
        u[4 * g + 3] = pairs(b, d, true);
    }
    // Rounds 3 and 4: output row 4L + c gathers 128-bit lane L of u[c], u[4 + c], u[8 + c],
    // u[12 + c]. 0x88 takes 128-bit lanes 0 and 2 of each source, 0xDD lanes 1 and 3.
    let mut out = [_mm512_setzero_ps(); LANES];
    for c in 0..4 {
        let even01 = _mm512_shuffle_f32x4::<0x88>(u[c], u[4 + c]);
        let odd01 = _mm512_shuffle_f32x4::<0xDD>(u[c], u[4 + c]);
        let even23 = _mm512_shuffle_f32x4::<0x88>(u[8 + c], u[12 + c]);
        let odd23 = _mm512_shuffle_f32x4::<0xDD>(u[8 + c], u[12 + c]);
        out[c] = _mm512_shuffle_f32x4::<0x88>(even01, even23);
        out[8 + c] = _mm512_shuffle_f32x4::<0xDD>(even01, even23);
        out[4 + c] = _mm512_shuffle_f32x4::<0x88>(odd01, odd23);
        out[12 + c] = _mm512_shuffle_f32x4::<0xDD>(odd01, odd23);
    }
    out
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::isa::Isa;

    #[test]
    fn swaps_rows_and_columns() {
        if !Isa::Avx512.supported_or_skip("transpose16::tests::swaps_rows_and_columns") {
            return;
        }
        let values: Vec<f32> = (0..256).map(|v| v as f32).collect();
        // SAFETY: the CPU has AVX-512F (checked above); each load reads 16 of the 256 floats.
        let out = unsafe {
            let rows: [__m512; LANES] = std::array::from_fn(|i| _mm512_loadu_ps(values.as_ptr().add(16 * i)));
            transpose16(rows)
        };
        let mut flat = [0.0f32; 256];
        for (j, row) in out.iter().enumerate() {
            // SAFETY: as above; each store writes 16 of the 256 floats.
            unsafe { _mm512_storeu_ps(flat.as_mut_ptr().add(16 * j), *row) };
        }
        for i in 0..16 {
            for j in 0..16 {
                assert_eq!(flat[16 * j + i], values[16 * i + j], "element ({i}, {j})");
            }
        }
    }
}
