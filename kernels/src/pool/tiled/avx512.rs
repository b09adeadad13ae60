//! AVX-512F bodies of the 2x2 tiled pools: 16 outputs per vector, laid out by [`Units`].
//!
//! Per unit and window row: two masked loads (lanes past the row's covered columns are
//! neither read nor written, so no scalar tails), then `vpermt2ps` with the `even` / `odd`
//! tables gathers the window's left / right columns into the output lanes. The backward
//! passes run the inverse permutes (`ilo` / `ihi` interleave even and odd lanes back into
//! input order) and masked stores.

use std::arch::x86_64::*;

use super::{Unit, Units};

const LANES: usize = 16;

/// The low `len` bits (`len <= 16`): the lanes of a masked load or store of `len` floats.
fn mask(len: usize) -> __mmask16 {
    debug_assert!(len <= LANES);
    ((1u32 << len) - 1) as __mmask16
}

/// The permute tables of one call (see [`Unit`] for `split`).
struct Tables {
    /// Output lane `j` <- column `2j` (lower part) or `2(j - split)` of the upper part
    /// (register 2: index 16 + ..); `odd` the next column.
    even: __m512i,
    odd: __m512i,
    /// Input lanes of the lower (`ilo`) and upper (`ihi`) part <- output lanes: column `2i`
    /// from `even[i]` (`odd[i]` for `2i + 1`), the upper part from lane `split + i`.
    ilo: __m512i,
    ihi: __m512i,
    /// Lane `j`'s window column relative to its part's base: `2j` or `2(j - split)`.
    col: __m512i,
    /// The upper part's lanes.
    upper: __mmask16,
}

#[target_feature(enable = "avx512f")]
fn vector(lanes: [i32; LANES]) -> __m512i {
    // SAFETY: reads the 16 i32 of `lanes`.
    unsafe { _mm512_loadu_si512(lanes.as_ptr().cast()) }
}

impl Tables {
    #[target_feature(enable = "avx512f")]
    fn new(split: usize) -> Self {
        // Lanes past both parts compute garbage that is never stored; `& 31` keeps their
        // indices in the two-register range.
        let column = |j: usize| if j < split { 2 * j } else { LANES + 2 * (j - split) };
        let even: [i32; LANES] = core::array::from_fn(|j| (column(j) & 31) as i32);
        let interleave = |start: usize| -> [i32; LANES] {
            core::array::from_fn(|i| ((start + i / 2 + if i % 2 == 1 { LANES } else { 0 }) & 31) as i32)
        };
        Self {
            even: vector(even),
            odd: vector(even.map(|e| e + 1)),
            ilo: vector(interleave(0)),
            ihi: vector(interleave(split)),
            col: vector(core::array::from_fn(|j| (2 * if j < split { j } else { j - split }) as i32)),
            upper: !mask(split),
        }
    }
}

/// The window's (left, right) columns of window row `row` (0 or `w`) of unit `u`, in output
/// lanes (0 in lanes past the unit).
///
/// # Safety
/// `x` must be readable at `u.x_lo + row .. + u.lo_len` and `u.x_hi + row .. + u.hi_len`.
#[target_feature(enable = "avx512f")]
unsafe fn load_columns(t: &Tables, x: *const f32, u: &Unit, row: usize) -> (__m512, __m512) {
    // SAFETY: the caller's bounds; masked-off lanes are not accessed (no fault), so the
    // pointer may point past the slice where its mask is empty (`wrapping_add`).
    let (lo, hi) = unsafe {
        (
            _mm512_maskz_loadu_ps(mask(u.lo_len), x.wrapping_add(u.x_lo + row)),
            _mm512_maskz_loadu_ps(mask(u.hi_len), x.wrapping_add(u.x_hi + row)),
        )
    };
    (_mm512_permutex2var_ps(lo, t.even, hi), _mm512_permutex2var_ps(lo, t.odd, hi))
}

/// Stores output-lane values `left`, `right` as window row `row` of unit `u`: the inverse
/// of [`load_columns`].
///
/// # Safety
/// `dx` must be writable where [`load_columns`] reads.
#[target_feature(enable = "avx512f")]
unsafe fn store_columns(t: &Tables, dx: *mut f32, u: &Unit, row: usize, left: __m512, right: __m512) {
    // SAFETY: the caller's bounds; masked-off lanes are not accessed.
    unsafe {
        _mm512_mask_storeu_ps(
            dx.wrapping_add(u.x_lo + row),
            mask(u.lo_len),
            _mm512_permutex2var_ps(left, t.ilo, right),
        );
        _mm512_mask_storeu_ps(
            dx.wrapping_add(u.x_hi + row),
            mask(u.hi_len),
            _mm512_permutex2var_ps(left, t.ihi, right),
        );
    }
}

/// The plane-relative flat index of each lane's window start.
#[target_feature(enable = "avx512f")]
fn window_starts(t: &Tables, u: &Unit) -> __m512i {
    let base = _mm512_mask_blend_epi32(
        t.upper,
        _mm512_set1_epi32(u.base_lo as i32),
        _mm512_set1_epi32(u.base_hi as i32),
    );
    _mm512_add_epi32(base, t.col)
}

// Bounds for every body below: `Units` covers whole planes of `x` / `dx` (`(planes, h, w)`)
// and `y` / `dy` / `argmax` (`(planes, out_h, out_w)`), which the caller guarantees (asserted
// in `Tiles`). A unit's window rows lie in its plane: for output row `oh` of a plane
// starting at `p`, `x_lo + w + lo_len <= p + (2oh + 1)·w + 2·out_w <= p + h·w` as
// `2·out_h <= h` and `2·out_w <= w` (likewise for the upper part), and its outputs
// `out .. out + n` lie in the output slices.

/// Max pool forward, 2x2 tiled (see `Tiles::max_forward`): the window scanned left, right,
/// bottom-left, bottom-right from the first element, taking `v` when `v > max` (ordered:
/// false with a NaN) or `v` is NaN, and recording the offset of the taken element.
///
/// # Safety
/// The CPU must support AVX-512F; `units` must cover whole planes of the slices.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn max_forward(units: Units, w: usize, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
    let t = Tables::new(units.split());
    let (xp, yp, ap) = (x.as_ptr(), y.as_mut_ptr(), argmax.as_mut_ptr().cast::<i32>());
    for u in units {
        // SAFETY: the unit's window rows are in `x` (bounds above).
        let ((tl, tr), (bl, br)) = unsafe { (load_columns(&t, xp, &u, 0), load_columns(&t, xp, &u, w)) };
        let (mut best, mut rel) = (tl, _mm512_setzero_si512());
        for (v, offset) in [(tr, 1), (bl, w), (br, w + 1)] {
            let take = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, best) | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
            best = _mm512_mask_mov_ps(best, take, v);
            rel = _mm512_mask_mov_epi32(rel, take, _mm512_set1_epi32(offset as i32));
        }
        let index = _mm512_add_epi32(window_starts(&t, &u), rel);
        // SAFETY: outputs `out .. out + n` are in `y` and `argmax`; the rest is masked off.
        unsafe {
            _mm512_mask_storeu_ps(yp.add(u.out), mask(u.n), best);
            _mm512_mask_storeu_epi32(ap.add(u.out), mask(u.n), index);
        }
    }
}

/// Max pool backward, 2x2 tiled (see `Tiles::max_backward`): each window's four elements
/// get `dy + 0.0` where the index points and 0 elsewhere; false if an index is none of them.
///
/// # Safety
/// As for [`max_forward`].
#[target_feature(enable = "avx512f")]
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
            (_mm512_maskz_loadu_ps(lanes, dyp.add(u.out)), _mm512_maskz_loadu_epi32(lanes, ap.add(u.out)))
        };
        let g = _mm512_add_ps(d, _mm512_setzero_ps());
        let rel = _mm512_sub_epi32(index, window_starts(&t, &u));
        let at = |offset: usize| _mm512_cmpeq_epi32_mask(rel, _mm512_set1_epi32(offset as i32));
        let (tl, tr, bl, br) = (at(0), at(1), at(w), at(w + 1));
        if (tl | tr | bl | br) & lanes != lanes {
            return false;
        }
        // SAFETY: the unit's window rows are in `dx` (bounds above).
        unsafe {
            store_columns(&t, dxp, &u, 0, _mm512_maskz_mov_ps(tl, g), _mm512_maskz_mov_ps(tr, g));
            store_columns(&t, dxp, &u, w, _mm512_maskz_mov_ps(bl, g), _mm512_maskz_mov_ps(br, g));
        }
    }
    true
}

/// Average pool forward, 2x2 tiled: `(((0 + tl) + tr) + bl) + br) / 4`, the reference's
/// operations in its order.
///
/// # Safety
/// As for [`max_forward`].
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn avg_forward(units: Units, w: usize, x: &[f32], y: &mut [f32]) {
    let t = Tables::new(units.split());
    let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
    for u in units {
        // SAFETY: the unit's window rows are in `x` (bounds above).
        let ((tl, tr), (bl, br)) = unsafe { (load_columns(&t, xp, &u, 0), load_columns(&t, xp, &u, w)) };
        let sum = [tl, tr, bl, br].into_iter().fold(_mm512_setzero_ps(), |sum, v| _mm512_add_ps(sum, v));
        // SAFETY: outputs `out .. out + n` are in `y`; the rest is masked off.
        unsafe { _mm512_mask_storeu_ps(yp.add(u.out), mask(u.n), _mm512_div_ps(sum, _mm512_set1_ps(4.0))) };
    }
}

/// Average pool backward, 2x2 tiled: `dy / 4 + 0.0` over each window.
///
/// # Safety
/// As for [`max_forward`].
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn avg_backward(units: Units, w: usize, dy: &[f32], dx: &mut [f32]) {
    let t = Tables::new(units.split());
    let (dyp, dxp) = (dy.as_ptr(), dx.as_mut_ptr());
    for u in units {
        // SAFETY: outputs `out .. out + n` are in `dy`; the rest is masked off.
        let d = unsafe { _mm512_maskz_loadu_ps(mask(u.n), dyp.add(u.out)) };
        let g = _mm512_add_ps(_mm512_div_ps(d, _mm512_set1_ps(4.0)), _mm512_setzero_ps());
        // SAFETY: the unit's window rows are in `dx` (bounds above).
        unsafe {
            store_columns(&t, dxp, &u, 0, g, g);
            store_columns(&t, dxp, &u, w, g, g);
        }
    }
}
