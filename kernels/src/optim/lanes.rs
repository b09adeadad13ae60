//! The machinery shared by the fused optimizer passes: a [`Lane`] abstraction so each update
//! rule is written once and runs both on `f32x8` vectors (the body) and on single `f32`s
//! (the tail), and [`for_each_chunk`], which splits the aligned slices of one update into
//! chunks for rayon.
//!
//! Both lane types use only correctly rounded IEEE operations (`+ - * /`, `sqrt`, selects;
//! no fused multiply-add), so a vector lane and a scalar give the same bits for the same
//! inputs, whatever the chunking.

use core::ops::{Add, Div, Mul, Sub};

use wide::f32x8;

use crate::parallel::chunk_len;

/// A value the update rules compute on: one `f32`, or eight of them.
pub(crate) trait Lane:
    Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Div<Output = Self>
{
    /// Every element set to `v`.
    fn splat(v: f32) -> Self;
    /// Reads the first 1 or 8 elements of `s`.
    fn load(s: &[f32]) -> Self;
    /// Writes the first 1 or 8 elements of `s`.
    fn store(self, s: &mut [f32]);
    /// Square root (correctly rounded).
    fn sqrt(self) -> Self;
    /// `other` where `other > self`, else `self` (a NaN in `other` keeps `self`).
    fn max_with(self, other: Self) -> Self;
    /// `0` where `self < 0`, else `self` (NaN stays NaN).
    fn clamp_negative_to_zero(self) -> Self;
}

impl Lane for f32 {
    #[inline(always)]
    fn splat(v: f32) -> Self {
        v
    }
    #[inline(always)]
    fn load(s: &[f32]) -> Self {
        s[0]
    }
    #[inline(always)]
    fn store(self, s: &mut [f32]) {
        s[0] = self;
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    #[inline(always)]
    fn max_with(self, other: Self) -> Self {
        if other > self {
            other
        } else {
            self
        }
    }
    #[inline(always)]
    fn clamp_negative_to_zero(self) -> Self {
        if self < 0.0 {
            0.0
        } else {
            self
        }
    }
}

impl Lane for f32x8 {
    #[inline(always)]
    fn splat(v: f32) -> Self {
        f32x8::splat(v)
    }
    #[inline(always)]
    fn load(s: &[f32]) -> Self {
        let s = &s[..8];
        f32x8::new(core::array::from_fn(|j| s[j]))
    }
    #[inline(always)]
    fn store(self, s: &mut [f32]) {
        s[..8].copy_from_slice(&self.to_array());
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f32x8::sqrt(self)
    }
    #[inline(always)]
    fn max_with(self, other: Self) -> Self {
        other.simd_gt(self).bitselect(other, self)
    }
    #[inline(always)]
    fn clamp_negative_to_zero(self) -> Self {
        self.simd_lt(f32x8::ZERO).bitselect(f32x8::ZERO, self)
    }
}

/// One fused update rule: `apply::<L>(at, grad, bufs)` updates the 1 or 8 elements
/// starting at `at` of every slice in `bufs` (param first, then the state slices; a state
/// the configuration does not use is empty and must not be touched).
pub(crate) trait UpdateRule<const K: usize>: Sync {
    fn apply<L: Lane>(&self, at: usize, grad: &[f32], bufs: &mut [&mut [f32]; K]);
}

/// Runs `rule` over every element: `f32x8` over the whole vectors, `f32` over the tail.
fn run_chunk<R: UpdateRule<K>, const K: usize>(rule: &R, grad: &[f32], mut bufs: [&mut [f32]; K]) {
    let body = grad.len() - grad.len() % 8;
    for at in (0..body).step_by(8) {
        rule.apply::<f32x8>(at, grad, &mut bufs);
    }
    for at in body..grad.len() {
        rule.apply::<f32>(at, grad, &mut bufs);
    }
}

/// Splits `bufs` at `mid` (an empty slice stays empty on both sides).
fn split_bufs<'a, const K: usize>(
    bufs: [&'a mut [f32]; K],
    mid: usize,
) -> ([&'a mut [f32]; K], [&'a mut [f32]; K]) {
    let mut lo: [&'a mut [f32]; K] = core::array::from_fn(|_| <&mut [f32]>::default());
    let mut hi: [&'a mut [f32]; K] = core::array::from_fn(|_| <&mut [f32]>::default());
    for ((buf, l), h) in bufs.into_iter().zip(&mut lo).zip(&mut hi) {
        let (a, b) = buf.split_at_mut(mid.min(buf.len()));
        *l = a;
        *h = b;
    }
    (lo, hi)
}

fn split_recursive<R: UpdateRule<K>, const K: usize>(
    rule: &R,
    chunk: usize,
    grad: &[f32],
    bufs: [&mut [f32]; K],
) {
    if grad.len() <= chunk {
        return run_chunk(rule, grad, bufs);
    }
    // Split at a chunk boundary near the middle; every leaf is one chunk of `chunk` elements
    // (the last may be shorter), so leaves start at multiples of 8.
    let mid = grad.len().div_ceil(chunk).div_ceil(2) * chunk;
    let (grad_lo, grad_hi) = grad.split_at(mid);
    let (lo, hi) = split_bufs(bufs, mid);
    rayon::join(|| split_recursive(rule, chunk, grad_lo, lo), || split_recursive(rule, chunk, grad_hi, hi));
}

/// Applies `rule` to every element of `grad` and the matching elements of `bufs` (each of
/// length `grad.len()` or empty), in parallel chunks of [`chunk_len`] above the threshold.
/// Element-wise, so the result does not depend on the split.
pub(crate) fn for_each_chunk<R: UpdateRule<K>, const K: usize>(
    rule: &R,
    grad: &[f32],
    bufs: [&mut [f32]; K],
) {
    let chunk = chunk_len(grad.len(), 8);
    split_recursive(rule, chunk, grad, bufs);
}
