//! Run-time instruction-set dispatch for the element-wise kernels: activations, softmax and
//! the losses, optimizer updates, gradient scaling and clipping, batch norm (statistics and
//! element-wise passes) and dropout, the LSTM/GRU cell passes, global average pooling, the
//! word-embedding steps and cosine similarity.
//!
//! One mechanism, three parts:
//! - `SimdF32`, a small vector trait with one implementation per instruction set: AVX-512F
//!   (`__m512`, 16 lanes), AVX2 + FMA (`__m256`, 8 lanes) and portable (`wide::f32x8`, whatever
//!   the compile-time target gives: two SSE halves in a default x86-64 build). Every method is
//!   `#[inline(always)]`.
//! - Kernel bodies written once, generic over `V: SimdF32`: the math in `math` (exp,
//!   sigmoid, tanh, ln(1 + x)), the per-vector rules of the element-wise passes (`Pass`, or the
//!   one-liners of `Map1` / `Map2`) and the row bodies of softmax and the losses; `SimdF64`
//!   (from `SimdF32::widen`) for sums kept in f64, such as the batch-norm statistics.
//! - `dispatch`, which runs a `Kernel` (one parallel chunk's worth of such a body) inside
//!   a `#[target_feature]` function of the chosen instruction set that instantiates it for
//!   its vector type: the `#[inline(always)]` chain puts the whole loop inside that function,
//!   so the intrinsics compile to the real instructions even in a build without `RUSTFLAGS`.
//!   That chain breaks at a closure: a closure's body is compiled without the target
//!   features of the function that calls it, so vector methods called inside one become
//!   out-of-line calls, several times slower. Bodies use plain loops.
//!   Element-wise passes go through `run_pass`, the one slice driver: it splits the slices
//!   into [`crate::parallel::chunk_len`] chunks across the rayon pool and dispatches each.
//!
//! The instruction set is the one the kernel's entry point resolved with
//! [`crate::isa::current_isa`], passed down to `dispatch` and `run_pass`.
//!
//! Tails go through the same vector body on a zero-padded copy (the padding lanes are
//! dropped), and chunks are multiples of `MAX_LANES`, so every element gets the same math
//! wherever it falls: for a given instruction set, results are the same bits at every thread
//! count. Across instruction sets, bodies using `SimdF32::mul_add` may differ in the last
//! bit (fused on AVX2/AVX-512, fused on portable only if the build enables FMA); bodies that
//! use only `+ - * /`, `sqrt`, comparisons and selects (the optimizer updates) are
//! correctly rounded lane by lane and give the same bits on every instruction set.
//!
//! Soundness: the AVX types are private to their modules and only instantiated by the
//! `#[target_feature]` runners, which `dispatch` calls after checking that the CPU has the
//! instruction set.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub(crate) mod math;
mod pass;
mod portable;

use core::ops::{Add, Div, Mul, Neg, Sub};

pub(crate) use pass::{
    map_accumulate, map_binary, map_inplace, map_unary, run_pass, serial_pass, Map1, Map2, Pass, Scale,
};

use crate::isa::Isa;

/// The widest vector of any implementation, in lanes: chunk boundaries are multiples of it
/// and tail buffers hold it.
pub(crate) const MAX_LANES: usize = 16;

/// `LANES` packed `f32`s and the operations the element-wise kernels need.
///
/// Comparisons are ordered (false when either operand is NaN); `+ - * /` and [`sqrt`] are
/// the correctly rounded IEEE operations, lane by lane.
///
/// [`sqrt`]: SimdF32::sqrt
pub(crate) trait SimdF32:
    Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Div<Output = Self> + Neg<Output = Self>
{
    /// Number of `f32` lanes.
    const LANES: usize;
    /// The result of a comparison, one flag per lane, for [`SimdF32::select`].
    type Mask: Copy;

    /// Every lane set to `v`.
    fn splat(v: f32) -> Self;
    /// Loads the first [`Self::LANES`] values of `s` (panics if `s` is shorter).
    fn load(s: &[f32]) -> Self;
    /// Stores into the first [`Self::LANES`] values of `s` (panics if `s` is shorter).
    fn store(self, s: &mut [f32]);
    /// Loads all of `s` (at most [`Self::LANES`] values, else panics) into the first lanes,
    /// zeros in the rest; nothing past `s` is read (a masked load where the instruction set
    /// has one).
    fn load_prefix(s: &[f32]) -> Self;
    /// `self·b + c`, with one rounding where the instruction set has FMA.
    fn mul_add(self, b: Self, c: Self) -> Self;
    /// `c - self·b`, with one rounding where the instruction set has FMA.
    fn neg_mul_add(self, b: Self, c: Self) -> Self;
    /// Square root (correctly rounded).
    fn sqrt(self) -> Self;
    /// An estimate of `1/self`, relative error below 2⁻¹¹ (AVX-512 `rcp14`, AVX2 `rcp`; the
    /// portable set divides): a start for one Newton step ([`super::math`]'s gate
    /// functions), for `self` in `[1, 2¹²⁶]`.
    fn recip_estimate(self) -> Self;
    /// `|self|` (clears the sign bit; NaN stays NaN).
    fn abs(self) -> Self;
    /// `self` where `self > other`, else `other` (x86 `maxps`: a NaN in either gives `other`).
    fn max(self, other: Self) -> Self;
    /// `self` where `self < other`, else `other` (x86 `minps`: a NaN in either gives `other`).
    fn min(self, other: Self) -> Self;
    /// `self < other` per lane.
    fn lt(self, other: Self) -> Self::Mask;
    /// `self <= other` per lane.
    fn le(self, other: Self) -> Self::Mask;
    /// `self > other` per lane.
    fn gt(self, other: Self) -> Self::Mask;
    /// Lanes holding NaN.
    fn is_nan(self) -> Self::Mask;
    /// `if_true` where `mask` is set, `if_false` elsewhere.
    fn select(mask: Self::Mask, if_true: Self, if_false: Self) -> Self;
    /// `self` with the sign bit of `x` OR-ed in (`self` non-negative: puts back a sign).
    fn or_sign_of(self, x: Self) -> Self;
    /// The sum of the lanes, in a fixed order.
    fn reduce_add(self) -> f32;
    /// The largest lane (NaN may or may not win).
    fn reduce_max(self) -> f32;
    /// Loads the first [`Self::LANES`] bytes of `s` (panics if `s` is shorter) as the
    /// values `0.0 ..= 255.0` (a byte mask, e.g. dropout's, for [`SimdF32::gt`]).
    fn load_u8(s: &[u8]) -> Self;
    /// `self·2ⁿ` for an integer `n` given twice: as the float `n`, and in the low mantissa
    /// bits of `t` (the bits of `t` as an `i32`, minus `bias`, are `n + 127`, a normal
    /// exponent). Each instruction set scales the cheaper way (AVX-512 `vscalefps` by `n`, the
    /// others multiply by `2ⁿ` built from `t`'s bits); the product by a power of two is exact
    /// while it stays a normal float.
    fn mul_pow2(self, n: Self, t: Self, bias: i32) -> Self;

    /// The `f64` vector of half as many lanes that [`SimdF32::widen`] fills.
    type F64: SimdF64;
    /// The lanes converted exactly to `f64`: lanes `0..LANES/2`, then the rest.
    fn widen(self) -> [Self::F64; 2];
}

/// Packed `f64`s for sums that must not lose f32 precision (batch-norm statistics): what
/// [`SimdF32::widen`] gives. `f64` itself is the one-lane case, for tails.
pub(crate) trait SimdF64: Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> {
    /// Every lane set to `v`.
    fn splat(v: f64) -> Self;
    /// The sum of the lanes, in a fixed order.
    fn reduce_add(self) -> f64;
}

impl SimdF64 for f64 {
    #[inline(always)]
    fn splat(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn reduce_add(self) -> f64 {
        self
    }
}

/// A kernel body written once, generic over the vector type; [`dispatch`] runs it on one
/// instruction set. `run` must be `#[inline(always)]` (and so must everything it calls on
/// the hot path), so that it is compiled inside the runner's `#[target_feature]` function.
pub(crate) trait Kernel {
    /// What the body returns.
    type Output;
    /// The body on vectors `V`.
    fn run<V: SimdF32>(self) -> Self::Output;
}

/// Runs `kernel` with the vectors of `isa` (the portable ones when the CPU lacks it: `isa`
/// normally comes from [`current_isa`], which only returns instruction sets the CPU has).
pub(crate) fn dispatch<K: Kernel>(isa: Isa, kernel: K) -> K::Output {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if isa.is_supported() => {
            // SAFETY: the CPU has AVX-512F, checked just above.
            unsafe { avx512::run(kernel) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if isa.is_supported() => {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            unsafe { avx2::run(kernel) }
        }
        _ => kernel.run::<wide::f32x8>(),
    }
}

/// Loads `s` (fewer than `V::LANES` values, or exactly as many) into a vector whose missing
/// lanes hold `fill` (chosen so the padding cannot change a reduction: 0 for sums, -inf for
/// maxima).
#[inline(always)]
pub(crate) fn load_padded<V: SimdF32>(s: &[f32], fill: f32) -> V {
    let mut lanes = [fill; MAX_LANES];
    lanes[..s.len()].copy_from_slice(s);
    V::load(&lanes)
}

/// Stores the first `out.len()` (at most `V::LANES`) lanes of `v`; the rest are dropped.
#[inline(always)]
pub(crate) fn store_partial<V: SimdF32>(v: V, out: &mut [f32]) {
    let mut lanes = [0.0; MAX_LANES];
    v.store(&mut lanes);
    let n = out.len();
    out.copy_from_slice(&lanes[..n]);
}

/// The lanes of `v` as an array (the first `V::LANES` entries; the rest are 0).
#[inline(always)]
pub(crate) fn to_array<V: SimdF32>(v: V) -> [f32; MAX_LANES] {
    let mut lanes = [0.0; MAX_LANES];
    v.store(&mut lanes);
    lanes
}
