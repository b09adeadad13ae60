//! [`SimdF32`] on `wide::f32x8`: runs anywhere, with the instructions the compile-time
//! target allows (two SSE2 halves in a default x86-64 build, AVX with `-C target-cpu=native`),
//! with `wide::f64x4` as its [`SimdF64`].

use wide::bytemuck::cast;
use wide::{f32x8, f64x4, i32x8};

use super::{SimdF32, SimdF64};

impl SimdF32 for f32x8 {
    const LANES: usize = 8;
    type Mask = f32x8;

    #[inline(always)]
    fn splat(v: f32) -> Self {
        f32x8::splat(v)
    }
    #[inline(always)]
    fn load(s: &[f32]) -> Self {
        let lanes: [f32; 8] = s[..8].try_into().expect("8 values");
        f32x8::new(lanes)
    }
    #[inline(always)]
    fn store(self, s: &mut [f32]) {
        s[..8].copy_from_slice(self.as_array());
    }
    #[inline(always)]
    fn load_prefix(s: &[f32]) -> Self {
        let mut lanes = [0.0; 8];
        lanes[..s.len()].copy_from_slice(s);
        f32x8::new(lanes)
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        f32x8::mul_add(self, b, c)
    }
    #[inline(always)]
    fn neg_mul_add(self, b: Self, c: Self) -> Self {
        f32x8::mul_neg_add(self, b, c)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f32x8::sqrt(self)
    }
    #[inline(always)]
    fn recip_estimate(self) -> Self {
        f32x8::splat(1.0) / self
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f32x8::abs(self)
    }
    #[inline(always)]
    fn max(self, other: Self) -> Self {
        self.simd_gt(other).select(self, other)
    }
    #[inline(always)]
    fn min(self, other: Self) -> Self {
        self.simd_lt(other).select(self, other)
    }
    #[inline(always)]
    fn lt(self, other: Self) -> f32x8 {
        self.simd_lt(other)
    }
    #[inline(always)]
    fn le(self, other: Self) -> f32x8 {
        self.simd_le(other)
    }
    #[inline(always)]
    fn gt(self, other: Self) -> f32x8 {
        self.simd_gt(other)
    }
    #[inline(always)]
    fn is_nan(self) -> f32x8 {
        f32x8::is_nan(self)
    }
    #[inline(always)]
    fn select(mask: f32x8, if_true: Self, if_false: Self) -> Self {
        mask.select(if_true, if_false)
    }
    #[inline(always)]
    fn or_sign_of(self, x: Self) -> Self {
        self | (x & f32x8::splat(-0.0))
    }
    #[inline(always)]
    fn reduce_add(self) -> f32 {
        f32x8::reduce_add(self)
    }
    #[inline(always)]
    fn reduce_max(self) -> f32 {
        self.as_array().iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v))
    }
    #[inline(always)]
    fn load_u8(s: &[u8]) -> Self {
        f32x8::new(core::array::from_fn(|l| f32::from(s[l])))
    }
    #[inline(always)]
    fn mul_pow2(self, _n: Self, t: Self, bias: i32) -> Self {
        let biased: i32x8 = cast(t);
        self * cast::<i32x8, f32x8>((biased - i32x8::splat(bias)) << 23)
    }

    type F64 = f64x4;
    #[inline(always)]
    fn widen(self) -> [f64x4; 2] {
        let lanes = self.as_array();
        [0, 4].map(|half| f64x4::new(core::array::from_fn(|l| f64::from(lanes[half + l]))))
    }
}

impl SimdF64 for f64x4 {
    #[inline(always)]
    fn splat(v: f64) -> Self {
        f64x4::splat(v)
    }
    #[inline(always)]
    fn reduce_add(self) -> f64 {
        f64x4::reduce_add(self)
    }
}
