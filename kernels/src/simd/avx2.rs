//! [`SimdF32`] on AVX2 + FMA: `__m256`, 8 lanes, all-ones lanes as comparison masks, and
//! the `#[target_feature]` runner that instantiates the element-wise bodies for it.

use core::arch::x86_64::*;
use core::ops::{Add, Div, Mul, Neg, Sub};

use super::{Kernel, SimdF32, SimdF64};

/// Eight `f32` lanes in a `__m256`. Private to this module: values exist only inside
/// [`run`], which requires AVX2 and FMA.
#[derive(Clone, Copy)]
struct F32x8(__m256);

/// Evaluates AVX2/FMA intrinsics.
macro_rules! avx2 {
    ($e:expr) => {
        // SAFETY: an `F32x8` exists only inside `run` (and the bodies it inlines), which
        // runs only on CPUs with AVX2 and FMA; loads and stores check their slice bounds first.
        unsafe { $e }
    };
}

/// The sign bit alone in every lane.
#[inline(always)]
fn sign_bits() -> __m256 {
    avx2!(_mm256_set1_ps(-0.0))
}

impl Add for F32x8 {
    type Output = Self;
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        F32x8(avx2!(_mm256_add_ps(self.0, other.0)))
    }
}

impl Sub for F32x8 {
    type Output = Self;
    #[inline(always)]
    fn sub(self, other: Self) -> Self {
        F32x8(avx2!(_mm256_sub_ps(self.0, other.0)))
    }
}

impl Mul for F32x8 {
    type Output = Self;
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        F32x8(avx2!(_mm256_mul_ps(self.0, other.0)))
    }
}

impl Div for F32x8 {
    type Output = Self;
    #[inline(always)]
    fn div(self, other: Self) -> Self {
        F32x8(avx2!(_mm256_div_ps(self.0, other.0)))
    }
}

impl Neg for F32x8 {
    type Output = Self;
    /// Flips the sign bit.
    #[inline(always)]
    fn neg(self) -> Self {
        F32x8(avx2!(_mm256_xor_ps(self.0, sign_bits())))
    }
}

impl SimdF32 for F32x8 {
    const LANES: usize = 8;
    type Mask = __m256;

    #[inline(always)]
    fn splat(v: f32) -> Self {
        F32x8(avx2!(_mm256_set1_ps(v)))
    }
    #[inline(always)]
    fn load(s: &[f32]) -> Self {
        assert!(s.len() >= Self::LANES);
        F32x8(avx2!(_mm256_loadu_ps(s.as_ptr())))
    }
    #[inline(always)]
    fn store(self, s: &mut [f32]) {
        assert!(s.len() >= Self::LANES);
        avx2!(_mm256_storeu_ps(s.as_mut_ptr(), self.0))
    }
    #[inline(always)]
    fn load_prefix(s: &[f32]) -> Self {
        assert!(s.len() <= Self::LANES);
        // Lane i is loaded where the sign bit of its mask is set (i < len); the others are
        // not read (nor can they fault).
        let mask = avx2!(_mm256_cmpgt_epi32(
            _mm256_set1_epi32(s.len() as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)
        ));
        F32x8(avx2!(_mm256_maskload_ps(s.as_ptr(), mask)))
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        F32x8(avx2!(_mm256_fmadd_ps(self.0, b.0, c.0)))
    }
    #[inline(always)]
    fn neg_mul_add(self, b: Self, c: Self) -> Self {
        F32x8(avx2!(_mm256_fnmadd_ps(self.0, b.0, c.0)))
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        F32x8(avx2!(_mm256_sqrt_ps(self.0)))
    }
    #[inline(always)]
    fn recip_estimate(self) -> Self {
        F32x8(avx2!(_mm256_rcp_ps(self.0)))
    }
    #[inline(always)]
    fn abs(self) -> Self {
        F32x8(avx2!(_mm256_andnot_ps(sign_bits(), self.0)))
    }
    #[inline(always)]
    fn max(self, other: Self) -> Self {
        F32x8(avx2!(_mm256_max_ps(self.0, other.0)))
    }
    #[inline(always)]
    fn min(self, other: Self) -> Self {
        F32x8(avx2!(_mm256_min_ps(self.0, other.0)))
    }
    #[inline(always)]
    fn lt(self, other: Self) -> __m256 {
        avx2!(_mm256_cmp_ps::<_CMP_LT_OQ>(self.0, other.0))
    }
    #[inline(always)]
    fn le(self, other: Self) -> __m256 {
        avx2!(_mm256_cmp_ps::<_CMP_LE_OQ>(self.0, other.0))
    }
    #[inline(always)]
    fn gt(self, other: Self) -> __m256 {
        avx2!(_mm256_cmp_ps::<_CMP_GT_OQ>(self.0, other.0))
    }
    #[inline(always)]
    fn is_nan(self) -> __m256 {
        avx2!(_mm256_cmp_ps::<_CMP_UNORD_Q>(self.0, self.0))
    }
    #[inline(always)]
    fn select(mask: __m256, if_true: Self, if_false: Self) -> Self {
        F32x8(avx2!(_mm256_blendv_ps(if_false.0, if_true.0, mask)))
    }
    #[inline(always)]
    fn or_sign_of(self, x: Self) -> Self {
        F32x8(avx2!(_mm256_or_ps(self.0, _mm256_and_ps(x.0, sign_bits()))))
    }
    #[inline(always)]
    fn reduce_add(self) -> f32 {
        // (lo + hi) halves, then the pairs, then the last two lanes.
        avx2!({
            let s = _mm_add_ps(_mm256_castps256_ps128(self.0), _mm256_extractf128_ps::<1>(self.0));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
        })
    }
    #[inline(always)]
    fn reduce_max(self) -> f32 {
        avx2!({
            let s = _mm_max_ps(_mm256_castps256_ps128(self.0), _mm256_extractf128_ps::<1>(self.0));
            let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_max_ss(s, _mm_shuffle_ps::<1>(s, s)))
        })
    }
    #[inline(always)]
    fn load_u8(s: &[u8]) -> Self {
        assert!(s.len() >= Self::LANES);
        F32x8(avx2!(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(s.as_ptr().cast())))))
    }
    #[inline(always)]
    fn mul_pow2(self, _n: Self, t: Self, bias: i32) -> Self {
        let biased = avx2!(_mm256_sub_epi32(_mm256_castps_si256(t.0), _mm256_set1_epi32(bias)));
        self * F32x8(avx2!(_mm256_castsi256_ps(_mm256_slli_epi32::<23>(biased))))
    }

    type F64 = F64x4;
    #[inline(always)]
    fn widen(self) -> [F64x4; 2] {
        let high = avx2!(_mm256_extractf128_ps::<1>(self.0));
        [F64x4(avx2!(_mm256_cvtps_pd(_mm256_castps256_ps128(self.0)))), F64x4(avx2!(_mm256_cvtps_pd(high)))]
    }
}

/// Four `f64` lanes in a `__m256d`, from [`F32x8::widen`]; private like it.
#[derive(Clone, Copy)]
struct F64x4(__m256d);

impl Add for F64x4 {
    type Output = Self;
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        F64x4(avx2!(_mm256_add_pd(self.0, other.0)))
    }
}

impl Sub for F64x4 {
    type Output = Self;
    #[inline(always)]
    fn sub(self, other: Self) -> Self {
        F64x4(avx2!(_mm256_sub_pd(self.0, other.0)))
    }
}

impl Mul for F64x4 {
    type Output = Self;
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        F64x4(avx2!(_mm256_mul_pd(self.0, other.0)))
    }
}

impl SimdF64 for F64x4 {
    #[inline(always)]
    fn splat(v: f64) -> Self {
        F64x4(avx2!(_mm256_set1_pd(v)))
    }
    #[inline(always)]
    fn reduce_add(self) -> f64 {
        // (lo + hi) halves, then the last two lanes.
        avx2!({
            let s = _mm_add_pd(_mm256_castpd256_pd128(self.0), _mm256_extractf128_pd::<1>(self.0));
            _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
        })
    }
}

/// Runs `kernel` with 8-lane AVX2 vectors and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) fn run<K: Kernel>(kernel: K) -> K::Output {
    kernel.run::<F32x8>()
}
