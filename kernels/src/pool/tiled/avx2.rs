//! AVX2 bodies of the 2x2 tiled pools: 8 outputs per vector, laid out by [`Units`], the
//! same scheme as the AVX-512 bodies with AVX2's tools: `vmaskmovps` masked loads and stores
//! (masked-off lanes are not accessed), and, lacking a two-register permute, one `vpermps`
//! per part then a blend on the upper lanes.

use std::arch::x86_64::*;

use super::{Unit, Units};

const LANES: usize = 8;

/// The lanes below `len` (all bits set) of a masked load or store of `len <= 8` floats.
#[target_feature(enable = "avx2")]
fn mask(len: usize) -> __m256i {
    _mm256_cmpgt_epi32(_mm256_set1_epi32(len as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
}

/// The permute tables of one call (see [`Unit`] for `split`).
struct Tables {
    /// Output lane `j` <- column `2j` of the lower part or `2(j - split)` of the upper one
    /// (the same table permutes both parts, a blend picks); `odd` the next column.
    even: __m256i,
    odd: __m256i,
    /// Input lane `i` of the lower (`ilo`) / upper (`ihi`) part <- output lane `i / 2`
    /// (`split + i / 2`), from the left values for even `i`, the right ones for odd `i`.
    ilo: __m256i,
    ihi: __m256i,
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
        // `& 7`: lanes past both parts compute garbage that is never stored.
        let part_lane = |j: usize| if j < split { j } else { j - split };
        let even: [i32; LANES] = core::array::from_fn(|j| ((2 * part_lane(j)) & 7) as i32);
        let interleave =
            |start: usize| -> [i32; LANES] { core::array::from_fn(|i| ((start + i / 2) & 7) as i32) };
        Self {
            even: vector(even),
            odd: vector(even.map(|e| e + 1)),
            ilo: vector(interleave(0)),
            ihi: vector(interleave(split)),
            col: vector(core::array::from_fn(|j| (2 * part_lane(j)) as i32)),
            upper: _mm256_xor_si256(mask(split), _mm256_set1_epi32(-1)),
        }
    }
}

/// The window's (left, right) columns of window row `row` (0 or `w`) of unit `u`, in output
/// lanes (0 in lanes past the unit).
///
/// # Safety
/// `x` must be readable at `u.x_lo + row .. + u.lo_len` and `u.x_hi + row .. + u.hi_len`.
#[target_feature(enable = "avx2")]
unsafe fn load_columns(t: &Tables, x: *const f32, u: &Unit, row: usize) -> (__m256, __m256) {
    // SAFETY: the caller's bounds; masked-off lanes are not accessed (no fault), so the
    // pointer may point past the slice where its mask is empty (`wrapping_add`).
    let (lo, hi) = unsafe {
        (
            _mm256_maskload_ps(x.wrapping_add(u.x_lo + row), mask(u.lo_len)),
            _mm256_maskload_ps(x.wrapping_add(u.x_hi + row), mask(u.hi_len)),
        )
    };
    let upper = _mm256_castsi256_ps(t.upper);
    let pick = |index: __m256i| {
        _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, index), _mm256_permutevar8x32_ps(hi, index), upper)
    };
    (pick(t.even), pick(t.odd))
}

/// Stores output-lane values `left`, `right` as window row `row` of unit `u`: the inverse
/// of [`load_columns`].
///
/// # Safety
/// `dx` must be writable where [`load_columns`] reads.
#[target_feature(enable = "avx2")]
unsafe fn store_columns(t: &Tables, dx: *mut f32, u: &Unit, row: usize, left: __m256, right: __m256) {
    let part = |index: __m256i| {
        _mm256_blend_ps::<0b1010_1010>(
            _mm256_permutevar8x32_ps(left, index),
            _mm256_permutevar8x32_ps(right, index),
        )
    };
    // SAFETY: the caller's bounds; masked-off lanes are not accessed.
    unsafe {
        _mm256_maskstore_ps(dx.wrapping_add(u.x_lo + row), mask(u.lo_len), part(t.ilo));
        _mm256_maskstore_ps(dx.wrapping_add(u.x_hi + row), mask(u.hi_len), part(t.ihi));
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

/// Max pool forward, 2x2 tiled: the AVX-512 body's scan (see `avx512::max_forward`).
///
/// # Safety
/// The CPU must support AVX2; `units` must cover whole planes of the slices.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn max_forward(units: Units, w: usize, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
    let t = Tables::new(units.split());
    let (xp, yp, ap) = (x.as_ptr(), y.as_mut_ptr(), argmax.as_mut_ptr().cast::<i32>());
    for u in units {
        // SAFETY: the unit's window rows are in `x` (bounds above).
        let ((tl, tr), (bl, br)) = unsafe { (load_columns(&t, xp, &u, 0), load_columns(&t, xp, &u, w)) };
        let (mut best, mut rel) = (tl, _mm256_setzero_si256());
        for (v, offset) in [(tr, 1), (bl, w), (br, w + 1)] {
            let take =
                _mm256_or_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(v, best), _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
            best = _mm256_blendv_ps(best, v, take);
            rel = _mm256_blendv_epi8(rel, _mm256_set1_epi32(offset as i32), _mm256_castps_si256(take));
        }
        let index = _mm256_add_epi32(window_starts(&t, &u), rel);
        let lanes = mask(u.n);
        // SAFETY: outputs `out .. out + n` are in `y` and `argmax`; the rest is masked off.
        unsafe {
            _mm256_maskstore_ps(yp.add(u.out), lanes, best);
            _mm256_maskstore_epi32(ap.add(u.out), lanes, index);
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
        // SAFETY: outputs `out .. out + n` are in `dy` and `argmax`; the rest is masked off.
        let (d, index) = unsafe {
            (_mm256_maskload_ps(dyp.add(u.out), lanes), _mm256_maskload_epi32(ap.add(u.out), lanes))
        };
        let g = _mm256_add_ps(d, _mm256_setzero_ps());
        let rel = _mm256_sub_epi32(index, window_starts(&t, &u));
        let at =
            |offset: usize| _mm256_castsi256_ps(_mm256_cmpeq_epi32(rel, _mm256_set1_epi32(offset as i32)));
        let (tl, tr, bl, br) = (at(0), at(1), at(w), at(w + 1));
        let hit = _mm256_or_ps(_mm256_or_ps(tl, tr), _mm256_or_ps(bl, br));
        if _mm256_testc_ps(hit, _mm256_castsi256_ps(lanes)) == 0 {
            return false;
        }
        // SAFETY: the unit's window rows are in `dx` (bounds above).
        unsafe {
            store_columns(&t, dxp, &u, 0, _mm256_and_ps(tl, g), _mm256_and_ps(tr, g));
            store_columns(&t, dxp, &u, w, _mm256_and_ps(bl, g), _mm256_and_ps(br, g));
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
        let ((tl, tr), (bl, br)) = unsafe { (load_columns(&t, xp, &u, 0), load_columns(&t, xp, &u, w)) };
        let sum = [tl, tr, bl, br].into_iter().fold(_mm256_setzero_ps(), |sum, v| _mm256_add_ps(sum, v));
        // SAFETY: outputs `out .. out + n` are in `y`; the rest is masked off.
        unsafe { _mm256_maskstore_ps(yp.add(u.out), mask(u.n), _mm256_div_ps(sum, _mm256_set1_ps(4.0))) };
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
        // SAFETY: outputs `out .. out + n` are in `dy`; the rest is masked off.
        let d = unsafe { _mm256_maskload_ps(dyp.add(u.out), mask(u.n)) };
        let g = _mm256_add_ps(_mm256_div_ps(d, _mm256_set1_ps(4.0)), _mm256_setzero_ps());
        // SAFETY: the unit's window rows are in `dx` (bounds above).
        unsafe {
            store_columns(&t, dxp, &u, 0, g, g);
            store_columns(&t, dxp, &u, w, g, g);
        }
    }
}
