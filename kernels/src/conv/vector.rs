//! The vectors of the convolution's SIMD paths, one type per instruction set behind one
//! trait: the direct loops' strips (`direct.rs`, a vector of outputs along a row), the
//! images in lanes (`lanes/`, a lane per image, so a vector holds one position of a lane
//! group, and moving images into or out of the layout is a square transpose of `LANES x
//! LANES` floats) and Winograd's channel blocks (`winograd/`, a lane per channel).
//!
//! The AVX-512 and AVX2 types exist only inside the `#[target_feature]` functions of their
//! instruction set (`channels_*` in `direct.rs`, the [`on_vector!`] dispatches), into which
//! their `#[inline(always)]` methods are inlined; [`Lanes8`], the portable one, anywhere.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

#[cfg(target_arch = "x86_64")]
use super::rows::lane_range;
use crate::gemm::Activation;
#[cfg(target_arch = "x86_64")]
use crate::gemm::{activate_avx2, activate_avx512};
use crate::isa::Isa;
#[cfg(target_arch = "x86_64")]
use crate::transpose16::transpose16;

/// `LANES` floats: outputs along a row in the direct loops, one position of a lane group in
/// the images in lanes.
pub(super) trait ConvVector: Copy {
    /// Floats per vector (outputs of a strip, images of a lane group).
    const LANES: usize;
    /// Whether the direct loops read a register block's weights tap by tap, `(taps, rows)`,
    /// rather than row by row, `(rows, taps)`: AVX-512's blocks (`direct::forward_group`
    /// lays them out).
    const BY_TAP: bool;
    /// Every lane set to `v`.
    fn splat(v: f32) -> Self;
    /// The `LANES` floats at `p`.
    ///
    /// # Safety
    /// `p .. p + LANES` must be readable.
    unsafe fn load(p: *const f32) -> Self;
    /// `activation(self)` written to the `LANES` floats at `p`.
    ///
    /// # Safety
    /// `p .. p + LANES` must be writable.
    unsafe fn store(self, p: *mut f32, activation: Activation);
    /// Writes lanes `from <= l < to` of `activation(self)` to `p + l` (`to <= LANES`), and
    /// nothing else.
    ///
    /// # Safety
    /// `p + from .. p + to` must be writable (`p` itself may point outside the allocation).
    unsafe fn store_lanes(self, p: *mut f32, from: usize, to: usize, activation: Activation);
    /// `self·b + c`, fused.
    fn mul_add(self, b: Self, c: Self) -> Self;
    /// `self + b`.
    fn add(self, b: Self) -> Self;
    /// `self - b`.
    fn sub(self, b: Self) -> Self;
    /// `self · b`.
    fn mul(self, b: Self) -> Self;
    /// The sum of the lanes.
    fn sum(self) -> f32;
    /// One block of the move into the layout: `dst[q·LANES + l] = src[l·image_len + q]` for
    /// the `cols` positions `q < cols` and images `l < count`, and 0 in lanes `l >= count`.
    ///
    /// # Safety
    /// `1 <= cols <= LANES`, `count <= LANES`; for each `l < count`, `src + l·image_len ..
    /// + cols` readable; `dst .. dst + cols·LANES` writable.
    unsafe fn rows_to_lanes(src: *const f32, image_len: usize, count: usize, cols: usize, dst: *mut f32);
    /// One block of the move out of the layout: `dst[l·image_len + q] = src[q·LANES + l]` for
    /// the `valid` positions `q < valid` and images `l < count`; nothing else is written.
    ///
    /// # Safety
    /// `1 <= valid <= LANES`, `count <= LANES`; `src .. src + valid·LANES` readable; for each
    /// `l < count`, `dst + l·image_len .. + valid` writable.
    unsafe fn lanes_to_rows(src: *const f32, valid: usize, dst: *mut f32, image_len: usize, count: usize);
}

/// Floats of `isa`'s [`ConvVector`]: images per lane group, channels per Winograd block.
pub(super) fn vector_lanes(isa: Isa) -> usize {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Zmm::LANES,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => Ymm::LANES,
        _ => Lanes8::LANES,
    }
}

/// 8 lanes of plain floats: the portable instruction set's vector, whose loops the compiler
/// vectorises for the build's baseline (SSE2 on x86-64). `mul_add` rounds twice (a fused
/// multiply-add without FMA hardware is a slow library call).
#[derive(Clone, Copy)]
pub(super) struct Lanes8([f32; 8]);

impl Lanes8 {
    /// `f` of each lane of `self` and `b`.
    #[inline(always)]
    fn zip(self, b: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        Lanes8(std::array::from_fn(|l| f(self.0[l], b.0[l])))
    }
}

impl ConvVector for Lanes8 {
    const LANES: usize = 8;
    const BY_TAP: bool = false;
    #[inline(always)]
    fn splat(v: f32) -> Self {
        Lanes8([v; 8])
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller's bounds; unaligned reads are allowed.
        Lanes8(unsafe { p.cast::<[f32; 8]>().read_unaligned() })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, activation: Activation) {
        // SAFETY: the caller's bounds; unaligned writes are allowed.
        unsafe { p.cast::<[f32; 8]>().write_unaligned(self.0.map(|x| activation.apply(x))) }
    }
    #[inline(always)]
    unsafe fn store_lanes(self, p: *mut f32, from: usize, to: usize, activation: Activation) {
        for l in from..to.min(Self::LANES) {
            // SAFETY: from <= l < to: the caller's bounds.
            unsafe { *p.add(l) = activation.apply(self.0[l]) };
        }
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        Lanes8(std::array::from_fn(|l| self.0[l] * b.0[l] + c.0[l]))
    }
    #[inline(always)]
    fn add(self, b: Self) -> Self {
        self.zip(b, |x, y| x + y)
    }
    #[inline(always)]
    fn sub(self, b: Self) -> Self {
        self.zip(b, |x, y| x - y)
    }
    #[inline(always)]
    fn mul(self, b: Self) -> Self {
        self.zip(b, |x, y| x * y)
    }
    #[inline(always)]
    fn sum(self) -> f32 {
        self.0.iter().sum()
    }
    #[inline(always)]
    unsafe fn rows_to_lanes(src: *const f32, image_len: usize, count: usize, cols: usize, dst: *mut f32) {
        for q in 0..cols {
            for l in 0..Self::LANES {
                // SAFETY: l < count reads inside the caller's bounds for `src`; q < cols
                // writes inside those for `dst`.
                unsafe {
                    *dst.add(q * Self::LANES + l) = if l < count { *src.add(l * image_len + q) } else { 0.0 }
                };
            }
        }
    }
    #[inline(always)]
    unsafe fn lanes_to_rows(src: *const f32, valid: usize, dst: *mut f32, image_len: usize, count: usize) {
        for l in 0..count {
            for q in 0..valid {
                // SAFETY: q < valid and l < count: the caller's bounds.
                unsafe { *dst.add(l * image_len + q) = *src.add(q * Self::LANES + l) };
            }
        }
    }
}

/// 16 lanes of AVX-512F; exists only on a CPU with AVX-512F.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(super) struct Zmm(__m512);

#[cfg(target_arch = "x86_64")]
impl ConvVector for Zmm {
    const LANES: usize = 16;
    const BY_TAP: bool = true;
    #[inline(always)]
    fn splat(v: f32) -> Self {
        // SAFETY: a `Zmm` exists only on a CPU with AVX-512F (see the type).
        Zmm(unsafe { _mm512_set1_ps(v) })
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller's bounds; AVX-512F as above.
        Zmm(unsafe { _mm512_loadu_ps(p) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, activation: Activation) {
        // SAFETY: the caller's bounds; AVX-512F as above.
        unsafe { _mm512_storeu_ps(p, activate_avx512(self.0, activation)) }
    }
    #[inline(always)]
    unsafe fn store_lanes(self, p: *mut f32, from: usize, to: usize, activation: Activation) {
        // SAFETY: the mask enables lanes `from..to`, which the caller's bounds cover (masked
        // lanes are not accessed); AVX-512F as above.
        unsafe { _mm512_mask_storeu_ps(p, lane_range(from, to), activate_avx512(self.0, activation)) }
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: AVX-512F as above.
        Zmm(unsafe { _mm512_fmadd_ps(self.0, b.0, c.0) })
    }
    #[inline(always)]
    fn add(self, b: Self) -> Self {
        // SAFETY: AVX-512F as above.
        Zmm(unsafe { _mm512_add_ps(self.0, b.0) })
    }
    #[inline(always)]
    fn sub(self, b: Self) -> Self {
        // SAFETY: AVX-512F as above.
        Zmm(unsafe { _mm512_sub_ps(self.0, b.0) })
    }
    #[inline(always)]
    fn mul(self, b: Self) -> Self {
        // SAFETY: AVX-512F as above.
        Zmm(unsafe { _mm512_mul_ps(self.0, b.0) })
    }
    #[inline(always)]
    fn sum(self) -> f32 {
        // SAFETY: AVX-512F as above.
        unsafe { _mm512_reduce_add_ps(self.0) }
    }
    #[inline(always)]
    unsafe fn rows_to_lanes(src: *const f32, image_len: usize, count: usize, cols: usize, dst: *mut f32) {
        let mask = lane_range(0, cols);
        // Rows of absent images load nothing (all lanes masked off): a fixed-count loop of
        // masked loads, which stays in registers.
        let rows: [__m512; 16] = std::array::from_fn(|image| {
            let row_mask = if image < count { mask } else { 0 };
            // SAFETY: for image < count the row's `cols` floats lie inside the caller's
            // bounds; masked-off lanes are neither read nor able to fault (the address of an
            // absent image is formed with wrapping arithmetic and never dereferenced).
            unsafe { _mm512_maskz_loadu_ps(row_mask, src.wrapping_add(image * image_len)) }
        });
        // SAFETY: AVX-512F as above.
        let columns = unsafe { transpose16(rows) };
        for (q, column) in columns.iter().take(cols).enumerate() {
            // SAFETY: q < cols: inside the caller's bounds for `dst`.
            unsafe { _mm512_storeu_ps(dst.add(q * 16), *column) };
        }
    }
    #[inline(always)]
    unsafe fn lanes_to_rows(src: *const f32, valid: usize, dst: *mut f32, image_len: usize, count: usize) {
        let rows: [__m512; 16] = std::array::from_fn(|q| {
            let row_mask = if q < valid { !0 } else { 0 };
            // SAFETY: for q < valid the position's 16 floats lie inside the caller's bounds;
            // other rows load nothing (all lanes masked off, address never dereferenced).
            unsafe { _mm512_maskz_loadu_ps(row_mask, src.wrapping_add(q * 16)) }
        });
        // SAFETY: AVX-512F as above.
        let by_image = unsafe { transpose16(rows) };
        let mask = lane_range(0, valid);
        for (image, row) in by_image.iter().take(count).enumerate() {
            // SAFETY: image < count and the mask keeps lanes `< valid`: the caller's bounds.
            unsafe { _mm512_mask_storeu_ps(dst.add(image * image_len), mask, *row) };
        }
    }
}

/// 8 lanes of AVX2 + FMA; exists only on a CPU with both.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(super) struct Ymm(__m256);

/// The lanes `l < count` of an AVX2 mask (`count <= 8`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn first_lanes(count: usize) -> __m256i {
    // SAFETY: a `Ymm` exists only on a CPU with AVX2 (see the type), and so its callers.
    unsafe { _mm256_cmpgt_epi32(_mm256_set1_epi32(count as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)) }
}

/// The 8x8 transpose: `out[j][i] = rows[i][j]`. Pairs of rows are interleaved by 32-bit
/// elements, then by 64-bit pairs, inside each 128-bit half, which leaves 4x4 blocks
/// transposed in the halves; one 128-bit lane exchange puts the blocks in place.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    // SAFETY: AVX as the callers (`Ymm` methods) guarantee.
    unsafe {
        // t[2i] (half h): rows 2i, 2i+1 at columns 4h, 4h+1, interleaved; t[2i+1] at 4h+2, 4h+3.
        let t: [__m256; 8] = std::array::from_fn(|j| {
            let (a, b) = (r[j & !1], r[j | 1]);
            if j % 2 == 0 {
                _mm256_unpacklo_ps(a, b)
            } else {
                _mm256_unpackhi_ps(a, b)
            }
        });
        // u[4g + c] (half h): rows 4g..4g+4 of column 4h + c.
        let u = [
            _mm256_shuffle_ps::<0x44>(t[0], t[2]),
            _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
            _mm256_shuffle_ps::<0x44>(t[1], t[3]),
            _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
            _mm256_shuffle_ps::<0x44>(t[4], t[6]),
            _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
            _mm256_shuffle_ps::<0x44>(t[5], t[7]),
            _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
        ];
        // Column c (c < 4): the low halves of u[c] (rows 0-3) and u[4 + c] (rows 4-7);
        // column 4 + c: their high halves.
        std::array::from_fn(|j| {
            let c = j % 4;
            if j < 4 {
                _mm256_permute2f128_ps::<0x20>(u[c], u[4 + c])
            } else {
                _mm256_permute2f128_ps::<0x31>(u[c], u[4 + c])
            }
        })
    }
}

#[cfg(target_arch = "x86_64")]
impl ConvVector for Ymm {
    const LANES: usize = 8;
    const BY_TAP: bool = false;
    #[inline(always)]
    fn splat(v: f32) -> Self {
        // SAFETY: a `Ymm` exists only on a CPU with AVX2 and FMA (see the type).
        Ymm(unsafe { _mm256_set1_ps(v) })
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller's bounds; AVX as above.
        Ymm(unsafe { _mm256_loadu_ps(p) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, activation: Activation) {
        // SAFETY: the caller's bounds; AVX2 as above.
        unsafe { _mm256_storeu_ps(p, activate_avx2(self.0, activation)) }
    }
    #[inline(always)]
    unsafe fn store_lanes(self, p: *mut f32, from: usize, to: usize, activation: Activation) {
        // SAFETY: AVX2 as above; a whole store when the lanes are all 8, else a masked one
        // of lanes `from..to` (AMD cores microcode masked stores: only the vectors at a
        // row's ends take one); the caller's bounds cover both.
        unsafe {
            let out = activate_avx2(self.0, activation);
            if from == 0 && to == Self::LANES {
                _mm256_storeu_ps(p, out)
            } else {
                let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                let above = _mm256_cmpgt_epi32(lanes, _mm256_set1_epi32(from as i32 - 1));
                let below = _mm256_cmpgt_epi32(_mm256_set1_epi32(to as i32), lanes);
                _mm256_maskstore_ps(p, _mm256_and_si256(above, below), out)
            }
        }
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: FMA as above.
        Ymm(unsafe { _mm256_fmadd_ps(self.0, b.0, c.0) })
    }
    #[inline(always)]
    fn add(self, b: Self) -> Self {
        // SAFETY: AVX as above.
        Ymm(unsafe { _mm256_add_ps(self.0, b.0) })
    }
    #[inline(always)]
    fn sub(self, b: Self) -> Self {
        // SAFETY: AVX as above.
        Ymm(unsafe { _mm256_sub_ps(self.0, b.0) })
    }
    #[inline(always)]
    fn mul(self, b: Self) -> Self {
        // SAFETY: AVX as above.
        Ymm(unsafe { _mm256_mul_ps(self.0, b.0) })
    }
    #[inline(always)]
    fn sum(self) -> f32 {
        // SAFETY: AVX as above.
        unsafe {
            let quad = _mm_add_ps(_mm256_castps256_ps128(self.0), _mm256_extractf128_ps::<1>(self.0));
            let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
            _mm_cvtss_f32(_mm_add_ss(pair, _mm_movehdup_ps(pair)))
        }
    }
    #[inline(always)]
    unsafe fn rows_to_lanes(src: *const f32, image_len: usize, count: usize, cols: usize, dst: *mut f32) {
        let mask = first_lanes(cols);
        let rows: [__m256; 8] = std::array::from_fn(|image| {
            if image < count {
                // SAFETY: the row's `cols` floats lie inside the caller's bounds, and the
                // masked-off lanes are not read (masked loads do not fault on them; they are
                // fast on AMD, unlike masked stores).
                unsafe { _mm256_maskload_ps(src.add(image * image_len), mask) }
            } else {
                // SAFETY: AVX as above.
                unsafe { _mm256_setzero_ps() }
            }
        });
        for (q, column) in transpose8(rows).iter().take(cols).enumerate() {
            // SAFETY: q < cols: inside the caller's bounds for `dst`.
            unsafe { _mm256_storeu_ps(dst.add(q * 8), *column) };
        }
    }
    #[inline(always)]
    unsafe fn lanes_to_rows(src: *const f32, valid: usize, dst: *mut f32, image_len: usize, count: usize) {
        let rows: [__m256; 8] = std::array::from_fn(|q| {
            if q < valid {
                // SAFETY: q < valid: the position's 8 floats lie inside the caller's bounds.
                unsafe { _mm256_loadu_ps(src.add(q * 8)) }
            } else {
                // SAFETY: AVX as above.
                unsafe { _mm256_setzero_ps() }
            }
        });
        let mask = first_lanes(valid);
        for (image, row) in transpose8(rows).iter().take(count).enumerate() {
            // SAFETY: image < count; a whole store when all 8 positions are valid, else a
            // masked store of lanes `< valid` (only the last block of a plane): the caller's
            // bounds cover both.
            unsafe {
                let at = dst.add(image * image_len);
                if valid == 8 {
                    _mm256_storeu_ps(at, *row)
                } else {
                    _mm256_maskstore_ps(at, mask, *row)
                }
            }
        }
    }
}

/// `pub(super) unsafe fn $name(isa, args)`: the generic `$generic::<V>(args)` on the vector of
/// `isa`: [`Zmm`] or [`Ymm`] inside a `#[target_feature]` function of that instruction set,
/// and on the portable one the type after `portable:` (for code that has a portable form;
/// without it, the portable instruction set is unreachable). The one dispatch of the
/// convolution's generic SIMD code.
macro_rules! on_vector {
    ($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*) => $($generic:ident)::+ $(; portable: $portable:ty)?) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// The CPU has `isa`.
        #[allow(unused_unsafe)]
        pub(super) unsafe fn $name(isa: Isa, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                // The generic function may be safe (the vector's existence is its only
                // requirement) or unsafe: `unused_unsafe` is allowed for the former.
                #[target_feature(enable = "avx512f")]
                #[allow(unused_unsafe)]
                unsafe fn avx512($($arg: $ty),*) {
                    // SAFETY: the CPU has AVX-512F (this function's feature).
                    unsafe { $($generic)::+::<Zmm>($($arg),*) }
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(unused_unsafe)]
                unsafe fn avx2($($arg: $ty),*) {
                    // SAFETY: the CPU has AVX2 and FMA (this function's features).
                    unsafe { $($generic)::+::<Ymm>($($arg),*) }
                }
                match isa {
                    // SAFETY: the CPU has `isa` (this function's contract).
                    Isa::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    Isa::Avx2 => return unsafe { avx2($($arg),*) },
                    Isa::Portable => {}
                }
            }
            on_vector!(@portable isa, $name, [$($generic)::+], [$($arg),*] $(, $portable)?)
        }
    };
    (@portable $isa:ident, $name:ident, [$($generic:tt)*], [$($arg:ident),*], $portable:ty) => {{
        let _ = $isa;
        // SAFETY: the portable vector needs no CPU feature; the generic function's own
        // contract is the caller's.
        unsafe { $($generic)*::<$portable>($($arg),*) }
    }};
    (@portable $isa:ident, $name:ident, [$($generic:tt)*], [$($arg:ident),*]) => {{
        $(let _ = $arg;)*
        unreachable!("{} on {:?}, which has no vector for it", stringify!($name), $isa)
    }};
}

pub(super) use on_vector;
