//! The short row moves of im2col and col2im.
//!
//! A column-matrix row is cut into output rows of `out_w` floats (28 in LeNet-5's first
//! layer, 10 in its second), so one batch makes some 10^5 moves of a few dozen floats. A
//! `memcpy`/`memset` call, or a vectorised loop with a scalar tail, per move costs more than
//! the data it moves. With AVX-512F each move is a few masked 16-lane loads and stores, and
//! the lanes that fall in the zero padding are masked off the load, so one pass writes both
//! the copied taps and the padding around them.
//!
//! Both paths move or add the same values in the same order, so they give the same bits.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use crate::isa::Isa;

/// The two row moves, each over a block of rows that share their column range, so an
/// implementation can prepare its masks once per block. The callers (im2col, col2im) are
/// generic over this trait and compiled once per instruction set, so the moves inline into
/// their loops.
pub(super) trait RowMoves: Copy {
    /// For each row `r` of `dst` (`width` floats each; `dst.len()` a multiple of `width`):
    /// columns `..lo` and `hi..` get 0, columns `lo..hi` get `src[r·pitch..][..hi - lo]`.
    ///
    /// Panics unless `lo <= hi <= width` and, when some row is copied, `src` holds
    /// `(rows - 1)·pitch + hi - lo` floats (callers derive these from a checked shape, so
    /// this never fires on accepted input).
    fn copy_rows_padded(self, dst: &mut [f32], width: usize, src: &[f32], pitch: usize, lo: usize, hi: usize);

    /// Sixteen floats being summed, in registers where the instruction set has them.
    type Strip: Copy;

    /// A strip of zeros.
    fn zero_strip(self) -> Self::Strip;

    /// `strip[l] + src[l - lo]` for lanes `lo <= l < hi`, other lanes unchanged.
    ///
    /// Panics unless `lo <= hi <= 16` and `src.len() >= hi - lo`.
    fn add_to_strip(self, strip: Self::Strip, src: &[f32], lo: usize, hi: usize) -> Self::Strip;

    /// `a + b`, lane by lane.
    fn add_strips(self, a: Self::Strip, b: Self::Strip) -> Self::Strip;

    /// Writes the first `min(16, dst.len())` lanes of `strip` to `dst`.
    fn store_strip(self, strip: Self::Strip, dst: &mut [f32]);
}

/// Checks the ranges of a block move of `rows` rows of `hi - lo` floats `pitch` apart in
/// a strided slice of `strided_len` floats; returns `rows`.
#[inline(always)]
fn check_block(
    packed_len: usize,
    width: usize,
    strided_len: usize,
    pitch: usize,
    lo: usize,
    hi: usize,
) -> usize {
    assert!(
        lo <= hi && hi <= width && width > 0 && packed_len.is_multiple_of(width),
        "row block out of range"
    );
    let rows = packed_len / width;
    assert!(rows == 0 || hi == lo || (rows - 1) * pitch + (hi - lo) <= strided_len, "row block out of range");
    rows
}

/// Slice code, for every CPU.
#[derive(Debug, Clone, Copy)]
pub(super) struct PortableMoves;

impl RowMoves for PortableMoves {
    #[inline(always)]
    fn copy_rows_padded(
        self,
        dst: &mut [f32],
        width: usize,
        src: &[f32],
        pitch: usize,
        lo: usize,
        hi: usize,
    ) {
        check_block(dst.len(), width, src.len(), pitch, lo, hi);
        for (r, row) in dst.chunks_exact_mut(width).enumerate() {
            row[..lo].fill(0.0);
            if hi > lo {
                row[lo..hi].copy_from_slice(&src[r * pitch..r * pitch + hi - lo]);
            }
            row[hi..].fill(0.0);
        }
    }

    type Strip = [f32; 16];

    #[inline(always)]
    fn zero_strip(self) -> [f32; 16] {
        [0.0; 16]
    }

    #[inline(always)]
    fn add_to_strip(self, mut strip: [f32; 16], src: &[f32], lo: usize, hi: usize) -> [f32; 16] {
        for (lane, &v) in strip[lo..hi].iter_mut().zip(&src[..hi - lo]) {
            *lane += v;
        }
        strip
    }

    #[inline(always)]
    fn add_strips(self, mut a: [f32; 16], b: [f32; 16]) -> [f32; 16] {
        for (x, y) in a.iter_mut().zip(b) {
            *x += y;
        }
        a
    }

    #[inline(always)]
    fn store_strip(self, strip: [f32; 16], dst: &mut [f32]) {
        let lanes = dst.len().min(16);
        dst[..lanes].copy_from_slice(&strip[..lanes]);
    }
}

/// Masked AVX-512F loads and stores. A value exists only on a CPU with AVX-512F (see
/// [`Avx512Moves::new`]), which is what makes its safe methods sound; they are meant to be
/// inlined into a caller compiled with `#[target_feature(enable = "avx512f")]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Avx512Moves {
    _cpu_has_avx512f: (),
}

impl Avx512Moves {
    /// The AVX-512 moves when `isa` is AVX-512 and the CPU runs it.
    pub(super) fn new(isa: Isa) -> Option<Self> {
        (isa == Isa::Avx512 && isa.is_supported()).then_some(Avx512Moves { _cpu_has_avx512f: () })
    }
}

/// Off x86_64 no value exists ([`Isa::is_supported`] is false for AVX-512 there); the
/// impl only lets the generic callers compile.
#[cfg(not(target_arch = "x86_64"))]
impl RowMoves for Avx512Moves {
    fn copy_rows_padded(
        self,
        dst: &mut [f32],
        width: usize,
        src: &[f32],
        pitch: usize,
        lo: usize,
        hi: usize,
    ) {
        PortableMoves.copy_rows_padded(dst, width, src, pitch, lo, hi);
    }

    type Strip = [f32; 16];

    fn zero_strip(self) -> [f32; 16] {
        PortableMoves.zero_strip()
    }

    fn add_to_strip(self, strip: [f32; 16], src: &[f32], lo: usize, hi: usize) -> [f32; 16] {
        PortableMoves.add_to_strip(strip, src, lo, hi)
    }

    fn add_strips(self, a: [f32; 16], b: [f32; 16]) -> [f32; 16] {
        PortableMoves.add_strips(a, b)
    }

    fn store_strip(self, strip: [f32; 16], dst: &mut [f32]) {
        PortableMoves.store_strip(strip, dst);
    }
}

/// The lanes `from..to` (clamped to `0..16`) of a 16-lane mask.
#[inline(always)]
pub(super) fn lane_range(from: usize, to: usize) -> u16 {
    let (from, to) = (from.min(16), to.min(16));
    if from >= to {
        0
    } else {
        (((1u32 << to) - 1) & !((1u32 << from) - 1)) as u16
    }
}

#[cfg(target_arch = "x86_64")]
impl RowMoves for Avx512Moves {
    #[inline(always)]
    fn copy_rows_padded(
        self,
        dst: &mut [f32],
        width: usize,
        src: &[f32],
        pitch: usize,
        lo: usize,
        hi: usize,
    ) {
        let rows = check_block(dst.len(), width, src.len(), pitch, lo, hi);
        // Lane `j` of a row takes `src[r·pitch + j - lo]` for `lo <= j < hi`; `base + j` is
        // that address for row 0. `base` may point before `src`: it is only formed with
        // wrapping arithmetic and only dereferenced through masks that keep `lo <= j < hi`.
        let base = src.as_ptr().wrapping_sub(lo);
        let out = dst.as_mut_ptr();
        // One 16-column strip of every row at a time, so the two masks are made once per strip.
        for j in (0..width).step_by(16) {
            let store = lane_range(0, width - j);
            let load = lane_range(lo.saturating_sub(j), hi.saturating_sub(j));
            for r in 0..rows {
                // SAFETY: the CPU has AVX-512F (a value of this type exists). The load mask
                // enables lanes `j + l` with `lo <= j + l < hi`, i.e. `src[r·pitch + j + l - lo]`
                // with index `< (rows - 1)·pitch + hi - lo <= src.len()` (checked); masked-off
                // lanes are neither read nor able to fault. The store mask enables lanes
                // `j + l < width`, i.e. `dst[r·width + j + l] < rows·width = dst.len()`.
                unsafe {
                    let v = _mm512_maskz_loadu_ps(load, base.wrapping_add(r * pitch + j));
                    _mm512_mask_storeu_ps(out.add(r * width + j), store, v);
                }
            }
        }
    }

    type Strip = __m512;

    #[inline(always)]
    fn zero_strip(self) -> __m512 {
        // SAFETY: the CPU has AVX-512F (a value of this type exists).
        unsafe { _mm512_setzero_ps() }
    }

    #[inline(always)]
    fn add_to_strip(self, strip: __m512, src: &[f32], lo: usize, hi: usize) -> __m512 {
        assert!(lo <= hi && hi <= 16 && src.len() >= hi - lo, "strip add out of range");
        // Lane `l` reads `src[l - lo]`; as in `copy_rows_padded`, `base` is only formed with
        // wrapping arithmetic and read through the mask of lanes `lo..hi`.
        let base = src.as_ptr().wrapping_sub(lo);
        // SAFETY: AVX-512F is present; the mask enables lanes `lo <= l < hi`, which read
        // `src[l - lo]` with `l - lo < hi - lo <= src.len()` (asserted). Masked-off lanes keep
        // `strip`'s value and are neither read nor able to fault.
        unsafe {
            _mm512_mask_add_ps(
                strip,
                lane_range(lo, hi),
                strip,
                _mm512_maskz_loadu_ps(lane_range(lo, hi), base),
            )
        }
    }

    #[inline(always)]
    fn add_strips(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the CPU has AVX-512F (a value of this type exists).
        unsafe { _mm512_add_ps(a, b) }
    }

    #[inline(always)]
    fn store_strip(self, strip: __m512, dst: &mut [f32]) {
        // SAFETY: AVX-512F is present; the mask enables lanes `l < min(16, dst.len())`.
        unsafe { _mm512_mask_storeu_ps(dst.as_mut_ptr(), lane_range(0, dst.len()), strip) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX-512 moves (when the CPU has them) against the portable ones, bit for bit:
    /// exhaustive over widths around one and two 16-lane vectors, every padding split, and
    /// 0 to 3 rows with pitches shorter and longer than the width.
    #[test]
    fn avx512_moves_rows_like_the_portable_code() {
        let Some(moves) = avx512_moves("conv::rows::tests::avx512_moves_rows_like_the_portable_code") else {
            return;
        };
        let src: Vec<f32> = (0..200).map(|i| (i as f32 - 40.5) * 0.25).collect();
        for width in 1..=49 {
            for lo in 0..=width {
                for hi in lo..=width {
                    for (rows, pitch) in [(0, 1), (1, 3), (2, hi - lo), (3, width + 5), (3, 2)] {
                        let len = rows * width;
                        let mut want = vec![f32::NAN; len + 3];
                        let mut got = want.clone();
                        PortableMoves.copy_rows_padded(&mut want[..len], width, &src[7..], pitch, lo, hi);
                        moves.copy_rows_padded(&mut got[..len], width, &src[7..], pitch, lo, hi);
                        assert_eq!(bits(&want), bits(&got), "copy width {width} lo {lo} hi {hi} rows {rows}");
                    }
                }
            }
        }
    }

    /// Strip sums of every lane range and destination length, bit for bit.
    #[test]
    fn avx512_strips_sum_like_the_portable_code() {
        let Some(moves) = avx512_moves("conv::rows::tests::avx512_strips_sum_like_the_portable_code") else {
            return;
        };
        let src: Vec<f32> = (0..40).map(|i| (i as f32 - 20.5) * 0.3).collect();
        for lo in 0..=16 {
            for hi in lo..=16 {
                for len in [0, 1, 9, 16, 20] {
                    let (mut want, mut got) = (vec![f32::NAN; 20], vec![f32::NAN; 20]);
                    let ones = vec![1.0; 16];
                    let mut p = PortableMoves.add_to_strip(PortableMoves.zero_strip(), &ones, 0, 16);
                    p = PortableMoves.add_to_strip(p, &src[3..], lo, hi);
                    p = PortableMoves.add_strips(p, PortableMoves.add_to_strip(p, &src[5..], 0, 16));
                    PortableMoves.store_strip(p, &mut want[..len]);
                    let mut a = moves.add_to_strip(moves.zero_strip(), &ones, 0, 16);
                    a = moves.add_to_strip(a, &src[3..], lo, hi);
                    a = moves.add_strips(a, moves.add_to_strip(a, &src[5..], 0, 16));
                    moves.store_strip(a, &mut got[..len]);
                    assert_eq!(bits(&want), bits(&got), "lo {lo} hi {hi} len {len}");
                }
            }
        }
    }

    /// The AVX-512 moves for the test `test`, or `None` (the test reported skipped by name)
    /// on a CPU without AVX-512F.
    fn avx512_moves(test: &str) -> Option<Avx512Moves> {
        if !Isa::Avx512.supported_or_skip(test) {
            return None;
        }
        Some(Avx512Moves::new(Isa::Avx512).expect("the CPU has AVX-512F, so its moves exist"))
    }

    /// The bit patterns, so NaNs left in place compare equal.
    fn bits(values: &[f32]) -> Vec<u32> {
        values.iter().map(|v| v.to_bits()).collect()
    }
}
