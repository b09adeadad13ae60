//! [`SimdF32`] on AVX-512F: `__m512`, 16 lanes, `__mmask16` comparison masks, and the
//! `#[target_feature]` runner that instantiates the element-wise bodies for it.

use core::arch::x86_64::*;
use core::ops::{Add, Div, Mul, Neg, Sub};

use super::{Kernel, SimdF32, SimdF64};

/// Sixteen `f32` lanes in a `__m512`. Private to this module: values exist only inside
/// [`run`], which requires AVX-512F.
#[derive(Clone, Copy)]
struct F32x16(__m512);

/// Evaluates AVX-512F intrinsics.
macro_rules! avx512 {
    ($e:expr) => {
        // SAFETY: an `F32x16` exists only inside `run` (and the bodies it inlines), which
        // runs only on CPUs with AVX-512F; loads and stores check their slice bounds first.
        unsafe { $e }
    };
}

/// `_mm512_castsi512_ps(op(_mm512_castps_si512(a), b))` for the bitwise ops, which
/// AVX-512F has on integers only (the float forms need AVX-512DQ).
#[inline(always)]
fn bits(a: __m512, b: __m512, op: impl Fn(__m512i, __m512i) -> __m512i) -> __m512 {
    avx512!(_mm512_castsi512_ps(op(_mm512_castps_si512(a), _mm512_castps_si512(b))))
}

impl Add for F32x16 {
    type Output = Self;
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        F32x16(avx512!(_mm512_add_ps(self.0, other.0)))
    }
}

impl Sub for F32x16 {
    type Output = Self;
    #[inline(always)]
    fn sub(self, other: Self) -> Self {
        F32x16(avx512!(_mm512_sub_ps(self.0, other.0)))
    }
}

impl Mul for F32x16 {
    type Output = Self;
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        F32x16(avx512!(_mm512_mul_ps(self.0, other.0)))
    }
}

impl Div for F32x16 {
    type Output = Self;
    #[inline(always)]
    fn div(self, other: Self) -> Self {
        F32x16(avx512!(_mm512_div_ps(self.0, other.0)))
    }
}

impl Neg for F32x16 {
    type Output = Self;
    /// Flips the sign bit.
    #[inline(always)]
    fn neg(self) -> Self {
        let sign = avx512!(_mm512_set1_ps(-0.0));
        F32x16(bits(self.0, sign, |a, b| avx512!(_mm512_xor_si512(a, b))))
    }
}

impl SimdF32 for F32x16 {
    const LANES: usize = 16;
    type Mask = __mmask16;

    #[inline(always)]
    fn splat(v: f32) -> Self {
        F32x16(avx512!(_mm512_set1_ps(v)))
    }
    #[inline(always)]
    fn load(s: &[f32]) -> Self {
        assert!(s.len() >= Self::LANES);
        F32x16(avx512!(_mm512_loadu_ps(s.as_ptr())))
    }
    #[inline(always)]
    fn store(self, s: &mut [f32]) {
        assert!(s.len() >= Self::LANES);
        avx512!(_mm512_storeu_ps(s.as_mut_ptr(), self.0))
    }
    #[inline(always)]
    fn load_prefix(s: &[f32]) -> Self {
        assert!(s.len() <= Self::LANES);
        let mask = ((1u32 << s.len()) - 1) as __mmask16;
        // The masked-off lanes are not read (nor can they fault).
        F32x16(avx512!(_mm512_maskz_loadu_ps(mask, s.as_ptr())))
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        F32x16(avx512!(_mm512_fmadd_ps(self.0, b.0, c.0)))
    }
    #[inline(always)]
    fn neg_mul_add(self, b: Self, c: Self) -> Self {
        F32x16(avx512!(_mm512_fnmadd_ps(self.0, b.0, c.0)))
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        F32x16(avx512!(_mm512_sqrt_ps(self.0)))
    }
    #[inline(always)]
    fn recip_estimate(self) -> Self {
        F32x16(avx512!(_mm512_rcp14_ps(self.0)))
    }
    #[inline(always)]
    fn abs(self) -> Self {
        F32x16(avx512!(_mm512_abs_ps(self.0)))
    }
    #[inline(always)]
    fn max(self, other: Self) -> Self {
        F32x16(avx512!(_mm512_max_ps(self.0, other.0)))
    }
    #[inline(always)]
    fn min(self, other: Self) -> Self {
        F32x16(avx512!(_mm512_min_ps(self.0, other.0)))
    }
    #[inline(always)]
    fn lt(self, other: Self) -> __mmask16 {
        avx512!(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(self.0, other.0))
    }
    #[inline(always)]
    fn le(self, other: Self) -> __mmask16 {
        avx512!(_mm512_cmp_ps_mask::<_CMP_LE_OQ>(self.0, other.0))
    }
    #[inline(always)]
    fn gt(self, other: Self) -> __mmask16 {
        avx512!(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(self.0, other.0))
    }
    #[inline(always)]
    fn is_nan(self) -> __mmask16 {
        avx512!(_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(self.0, self.0))
    }
    #[inline(always)]
    fn select(mask: __mmask16, if_true: Self, if_false: Self) -> Self {
        F32x16(avx512!(_mm512_mask_blend_ps(mask, if_false.0, if_true.0)))
    }
    #[inline(always)]
    fn or_sign_of(self, x: Self) -> Self {
        let sign = bits(x.0, avx512!(_mm512_set1_ps(-0.0)), |a, b| avx512!(_mm512_and_si512(a, b)));
        F32x16(bits(self.0, sign, |a, b| avx512!(_mm512_or_si512(a, b))))
    }
    #[inline(always)]
    fn reduce_add(self) -> f32 {
        avx512!(_mm512_reduce_add_ps(self.0))
    }
    #[inline(always)]
    fn reduce_max(self) -> f32 {
        avx512!(_mm512_reduce_max_ps(self.0))
    }
    #[inline(always)]
    fn load_u8(s: &[u8]) -> Self {
        assert!(s.len() >= Self::LANES);
        F32x16(avx512!(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(s.as_ptr().cast())))))
    }
    #[inline(always)]
    fn mul_pow2(self, n: Self, _t: Self, _bias: i32) -> Self {
        F32x16(avx512!(_mm512_scalef_ps(self.0, n.0)))
    }

    type F64 = F64x8;
    #[inline(always)]
    fn widen(self) -> [F64x8; 2] {
        // The high eight lanes through the f64 view (extracting f32 halves needs AVX-512DQ).
        let high = avx512!(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(self.0))));
        [
            F64x8(avx512!(_mm512_cvtps_pd(_mm512_castps512_ps256(self.0)))),
            F64x8(avx512!(_mm512_cvtps_pd(high))),
        ]
    }
}

/// Eight `f64` lanes in a `__m512d`, from [`F32x16::widen`]; private like it.
#[derive(Clone, Copy)]
struct F64x8(__m512d);

impl Add for F64x8 {
    type Output = Self;
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        F64x8(avx512!(_mm512_add_pd(self.0, other.0)))
    }
}

impl Sub for F64x8 {
    type Output = Self;
    #[inline(always)]
    fn sub(self, other: Self) -> Self {
        F64x8(avx512!(_mm512_sub_pd(self.0, other.0)))
    }
}

impl Mul for F64x8 {
    type Output = Self;
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        F64x8(avx512!(_mm512_mul_pd(self.0, other.0)))
    }
}

impl SimdF64 for F64x8 {
    #[inline(always)]
    fn splat(v: f64) -> Self {
        F64x8(avx512!(_mm512_set1_pd(v)))
    }
    #[inline(always)]
    fn reduce_add(self) -> f64 {
        avx512!(_mm512_reduce_add_pd(self.0))
    }
}

/// Runs `kernel` with 16-lane AVX-512F vectors.
#[target_feature(enable = "avx512f")]
pub(super) fn run<K: Kernel>(kernel: K) -> K::Output {
    kernel.run::<F32x16>()
}
