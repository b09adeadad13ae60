//! AVX2 bodies of the 2x2 tiled pools: 8 outputs per vector, laid out by [`Units`], the
//! same scheme as the AVX-512 bodies with AVX2's tools: whole-vector loads and stores, and
//! `vmaskmovps` (masked-off lanes are not accessed) only for the ragged parts of a unit,
//! since AMD's cores run a masked store as a microcoded sequence of about a dozen uops per
//! vector; and, lacking a two-register permute, in-lane shuffles in a scrambled lane order
//! fixed once per vector.
//!
//! `shufps` of the lower part `lo` (window row floats of outputs `p = 0..4` of the part,
//! two each) and the upper part `hi` takes even (odd) floats in the order
//! `[lo p0, lo p1, hi p0, hi p1 | lo p2, lo p3, hi p2, hi p3]`: one instruction per window
//! row and column parity. The bodies compute in that scrambled order and `vpermps` the
//! results into output order (`unscramble`), or the gradients out of it (`scramble`); the
//! backward passes then `unpcklps` / `unpckhps` the scrambled left and right values
//! straight back into the input order of `lo` and `hi`.

use std::arch::x86_64::*;

use super::{Unit, Units};

const LANES: usize = 8;

/// The lanes below `len` (all bits set) of a masked load or store of `len <= 8` floats.
#[target_feature(enable = "avx2")]
fn mask(len: usize) -> __m256i {
    _mm256_cmpgt_epi32(_mm256_set1_epi32(len as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
}

/// Loads `len <= 8` floats at `p`: one whole vector when `len` is 8, else the first `len`
/// lanes (the others 0, not accessed).
///
/// # Safety
/// `p .. p + len` must be readable (`p` may dangle when `len` is 0).
#[target_feature(enable = "avx2")]
unsafe fn load(p: *const f32, len: usize) -> __m256 {
    // SAFETY: the caller's bounds; masked-off lanes are not accessed.
    unsafe {
        if len == LANES {
            _mm256_loadu_ps(p)
        } else {
            _mm256_maskload_ps(p, mask(len))
        }
    }
}

/// Stores the first `len <= 8` lanes of `v` at `p`: one whole vector when `len` is 8.
///
/// # Safety
/// `p .. p + len` must be writable (`p` may dangle when `len` is 0).
#[target_feature(enable = "avx2")]
unsafe fn store(p: *mut f32, len: usize, v: __m256) {
    // SAFETY: the caller's bounds; masked-off lanes are not accessed.
    unsafe {
        if len == LANES {
            _mm256_storeu_ps(p, v)
        } else {
            _mm256_maskstore_ps(p, mask(len), v)
        }
    }
}

/// The permute tables of one call (see [`Unit`] for `split`).
struct Tables {
    /// Output lane `j` <- the scrambled lane of its part's output `p` (`j` or `j - split`).
    unscramble: __m256i,
    /// Scrambled lane `s` <- the output lane of its part's output `p` (the inverse).
    scramble: __m256i,
    /// Lane `j`'s window column relative to its part's base: `2j` or `2(j - split)`.
    col: __m256i,
    /// The upper part's lanes (all bits set).
    upper: __m256i,
}

#[target_feature(enable = "avx2")]
fn vector(lanes: [i32; LANES]) -> __m256i {
    // SAFETY: reads the 8 i32 of `lanes`.
    unsafe { _mm256_loadu_si256(lanes.as_ptr().cast()) }
}

impl Tables {
    #[target_feature(enable = "avx2")]
    fn new(split: usize) -> Self {
        // Scrambled lane of (upper part?, output p < 4) and back; `& 7` keeps the lanes past
        // both parts (garbage, never stored) in range.
        let scrambled = |upper: bool, p: usize| (p % 2 + 4 * (p / 2) + if upper { 2 } else { 0 }) & 7;
        let part = |j: usize| if j < split { (false, j) } else { (true, j - split) };
        let output = |s: usize| {
            let (upper, p) = (s % 4 >= 2, s % 2 + 2 * (s / 4));
            (p + if upper { split } else { 0 }) & 7
        };
        Self {
            unscramble: vector(core::array::from_fn(|j| {
                let (upper, p) = part(j);
                scrambled(upper, p) as i32
            })),
            scramble: vector(core::array::from_fn(|s| output(s) as i32)),
            col: vector(core::array::from_fn(|j| (2 * part(j).1) as i32)),
            upper: _mm256_xor_si256(mask(split), _mm256_set1_epi32(-1)),
        }
    }
}

/// The window's (left, right) columns of window row `row` (0 or `w`) of unit `u`, in
/// scrambled lanes (0 in lanes past the unit).
///
/// # Safety
/// `x` must be readable at `u.x_lo + row .. + u.lo_len` and `u.x_hi + row .. + u.hi_len`.
#[target_feature(enable = "avx2")]
unsafe fn load_columns(x: *const f32, u: &Unit, row: usize) -> (__m256, __m256) {
    // SAFETY: the caller's bounds; a part of length 0 is not accessed, so its pointer may
    // point past the slice (`wrapping_add`).
    let (lo, hi) = unsafe {
        (load(x.wrapping_add(u.x_lo + row), u.lo_len), load(x.wrapping_add(u.x_hi + row), u.hi_len))
    };
    (_mm256_shuffle_ps::<0b10_00_10_00>(lo, hi), _mm256_shuffle_ps::<0b11_01_11_01>(lo, hi))
}

/// Stores scrambled-lane values `left`, `right` as window row `row` of unit `u`: the
/// inverse of [`load_columns`].
///
/// # Safety
/// `dx` must be writable where [`load_columns`] reads.
#[target_feature(enable = "avx2")]
unsafe fn store_columns(dx: *mut f32, u: &Unit, row: usize, left: __m256, right: __m256) {
    // SAFETY: the caller's bounds; a part of length 0 is not accessed.
    unsafe {
        store(dx.wrapping_add(u.x_lo + row), u.lo_len, _mm256_unpacklo_ps(left, right));
        store(dx.wrapping_add(u.x_hi + row), u.hi_len, _mm256_unpackhi_ps(left, right));
    }
}

/// The plane-relative flat index of each lane's window start.
#[target_feature(enable = "avx2")]
fn window_starts(t: &Tables, u: &Unit) -> __m256i {
    let (lo, hi) = (_mm256_set1_epi32(u.base_lo as i32), _mm256_set1_epi32(u.base_hi as i32));
    _mm256_add_epi32(_mm256_blendv_epi8(lo, hi, t.upper), t.col)
}

// Bounds for every body below: as in the AVX-512 bodies (`Units` covers whole planes, each
// unit's window rows lie in its plane, its outputs `out .. out + n` in the output slices).

/// Max pool forward, 2x2 tiled: the AVX-512 body's scan (see `avx512::max_forward`), in
/// scrambled lanes.
///
/// # Safety
/// The CPU must support AVX2; `units` must cover whole planes of the slices.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn max_forward(units: Units, w: usize, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
    let t = Tables::new(units.split());
    let (xp, yp, ap) = (x.as_ptr(), y.as_mut_ptr(), argmax.as_mut_ptr().cast::<i32>());
    for u in units {
        // SAFETY: the unit's window rows are in `x` (bounds above).
        let ((tl, tr), (bl, br)) = unsafe { (load_columns(xp, &u, 0), load_columns(xp, &u, w)) };
        let (mut best, mut rel) = (tl, _mm256_setzero_si256());
        for (v, offset) in [(tr, 1), (bl, w), (br, w + 1)] {
            let take =
                _mm256_or_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(v, best), _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
            best = _mm256_blendv_ps(best, v, take);
            rel = _mm256_blendv_epi8(rel, _mm256_set1_epi32(offset as i32), _mm256_castps_si256(take));
        }
        let best = _mm256_permutevar8x32_ps(best, t.unscramble);
        let index = _mm256_add_epi32(window_starts(&t, &u), _mm256_permutevar8x32_epi32(rel, t.unscramble));
        // SAFETY: outputs `out .. out + n` are in `y` and `argmax`; the rest is not accessed.
        unsafe {
            store(yp.add(u.out), u.n, best);
            store(ap.add(u.out).cast(), u.n, _mm256_castsi256_ps(index));
        }
    }
}

/// Max pool backward, 2x2 tiled (see `avx512::max_backward`); false if an index is outside
/// its window.
///
/// # Safety
/// As for [`max_forward`].
#[target_feature(enable = "avx2")]
pub(super) unsafe fn max_backward(
    units: Units,
    w: usize,
    dy: &[f32],
    argmax: &[u32],
    dx: &mut [f32],
) -> bool {
    let t = Tables::new(units.split());
    let (dyp, ap, dxp) = (dy.as_ptr(), argmax.as_ptr().cast::<i32>(), dx.as_mut_ptr());
    for u in units {
        let lanes = mask(u.n);
        // SAFETY: outputs `out .. out + n` are in `dy` and `argmax`; the rest is not accessed.
        let (d, index) =
            unsafe { (load(dyp.add(u.out), u.n), _mm256_castps_si256(load(ap.add(u.out).cast(), u.n))) };
        // Into scrambled lanes. A scrambled lane past both parts copies some output lane,
        // gradient, offset and validity alike, so the check below judges it as that lane.
        let scramble = |v: __m256i| _mm256_permutevar8x32_epi32(v, t.scramble);
        let g = _mm256_permutevar8x32_ps(_mm256_add_ps(d, _mm256_setzero_ps()), t.scramble);
        let rel = scramble(_mm256_sub_epi32(index, window_starts(&t, &u)));
        let at =
            |offset: usize| _mm256_castsi256_ps(_mm256_cmpeq_epi32(rel, _mm256_set1_epi32(offset as i32)));
        let (tl, tr, bl, br) = (at(0), at(1), at(w), at(w + 1));
        let hit = _mm256_or_ps(_mm256_or_ps(tl, tr), _mm256_or_ps(bl, br));
        if _mm256_testc_ps(hit, _mm256_castsi256_ps(scramble(lanes))) == 0 {
            return false;
        }
        // SAFETY: the unit's window rows are in `dx` (bounds above).
        unsafe {
            store_columns(dxp, &u, 0, _mm256_and_ps(tl, g), _mm256_and_ps(tr, g));
            store_columns(dxp, &u, w, _mm256_and_ps(bl, g), _mm256_and_ps(br, g));
        }
    }
    true
}

/// Average pool forward, 2x2 tiled: `(((0 + tl) + tr) + bl) + br) / 4`.
///
/// # Safety
/// As for [`max_forward`].
#[target_feature(enable = "avx2")]
pub(super) unsafe fn avg_forward(units: Units, w: usize, x: &[f32], y: &mut [f32]) {
    let t = Tables::new(units.split());
    let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
    for u in units {
        // SAFETY: the unit's window rows are in `x` (bounds above).
        let ((tl, tr), (bl, br)) = unsafe { (load_columns(xp, &u, 0), load_columns(xp, &u, w)) };
        let sum = [tl, tr, bl, br].into_iter().fold(_mm256_setzero_ps(), |sum, v| _mm256_add_ps(sum, v));
        let mean = _mm256_permutevar8x32_ps(_mm256_div_ps(sum, _mm256_set1_ps(4.0)), t.unscramble);
        // SAFETY: outputs `out .. out + n` are in `y`; the rest is not accessed.
        unsafe { store(yp.add(u.out), u.n, mean) };
    }
}

/// Average pool backward, 2x2 tiled: `dy / 4 + 0.0` over each window.
///
/// # Safety
/// As for [`max_forward`].
#[target_feature(enable = "avx2")]
pub(super) unsafe fn avg_backward(units: Units, w: usize, dy: &[f32], dx: &mut [f32]) {
    let t = Tables::new(units.split());
    let (dyp, dxp) = (dy.as_ptr(), dx.as_mut_ptr());
    for u in units {
        // SAFETY: outputs `out .. out + n` are in `dy`; the rest is not accessed.
        let d = unsafe { load(dyp.add(u.out), u.n) };
        let g = _mm256_add_ps(_mm256_div_ps(d, _mm256_set1_ps(4.0)), _mm256_setzero_ps());
        let g = _mm256_permutevar8x32_ps(g, t.scramble);
        // SAFETY: the unit's window rows are in `dx` (bounds above).
        unsafe {
            store_columns(dxp, &u, 0, g, g);
            store_columns(dxp, &u, w, g, g);
        }
    }
}
