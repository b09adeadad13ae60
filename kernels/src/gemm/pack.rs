//! Packing: copying blocks of op(A) and op(B) into the micro-panel layouts the microkernel
//! streams through (see the contract in `microkernel.rs`), zero-padding partial panels so
//! the microkernel always runs full tiles.

use super::tuning::PACK_B_ROWS;
use super::Transpose;
use crate::isa::Isa;

/// A matrix as stored, row-major with leading dimension `ld`, seen through `op`.
#[derive(Clone, Copy)]
pub(crate) struct Operand<'a> {
    pub data: &'a [f32],
    pub ld: usize,
    pub trans: Transpose,
}

impl<'a> Operand<'a> {
    /// The block `rows x cols` of op(X) from `(row0, col0)`, read in place: the slice from its
    /// first element to its last, and its row and column strides.
    ///
    /// # Panics
    /// If the block is empty or not inside the data.
    pub(crate) fn in_place(
        &self,
        row0: usize,
        rows: usize,
        col0: usize,
        cols: usize,
    ) -> (&'a [f32], usize, usize) {
        let (row_stride, col_stride) = match self.trans {
            Transpose::No => (self.ld, 1),
            Transpose::Yes => (1, self.ld),
        };
        let start = row0 * row_stride + col0 * col_stride;
        let last = start + (rows - 1) * row_stride + (cols - 1) * col_stride;
        (&self.data[start..=last], row_stride, col_stride)
    }
}

/// Packs rows `row0..row0 + rows` and columns `p0..p0 + kc` of op(A) into `out` as
/// `ceil(rows / mr)` micro-panels of `kc x mr` (column after column), zero-padded.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pack_a(
    a: Operand,
    row0: usize,
    rows: usize,
    p0: usize,
    kc: usize,
    mr: usize,
    isa: Isa,
    out: &mut [f32],
) {
    for (panel_index, panel) in out.chunks_exact_mut(kc * mr).take(rows.div_ceil(mr)).enumerate() {
        let panel_row0 = row0 + panel_index * mr;
        let valid = mr.min(row0 + rows - panel_row0);
        match a.trans {
            // Rows of A are contiguous along p: walk each row once, scattering with stride mr.
            Transpose::No => {
                interleave(a.data, a.ld, panel_row0, valid, p0, kc, mr, isa, panel);
            }
            // Columns of op(A) are contiguous: each packed column is a slice copy, of a
            // length known at compile time for the microkernels' full panels (a copy of a
            // run-time length is a call to memmove per column of 4 to 12 floats).
            Transpose::Yes => match (valid == mr, mr) {
                (true, 12) => copy_columns::<12>(a, p0, panel_row0, panel),
                (true, 6) => copy_columns::<6>(a, p0, panel_row0, panel),
                (true, 4) => copy_columns::<4>(a, p0, panel_row0, panel),
                _ => {
                    for (p, column) in panel.chunks_exact_mut(mr).enumerate() {
                        let source = &a.data[(p0 + p) * a.ld + panel_row0..][..valid];
                        column[..valid].copy_from_slice(source);
                        column[valid..].fill(0.0);
                    }
                }
            },
        }
    }
}

/// The full-width case of `pack_a` with A transposed: the columns of op(A) (rows of A)
/// `p0..` into `panel`, `MR` floats from `row0` each.
#[inline(always)]
fn copy_columns<const MR: usize>(a: Operand, p0: usize, row0: usize, panel: &mut [f32]) {
    for (p, column) in panel.chunks_exact_mut(MR).enumerate() {
        column.copy_from_slice(&a.data[(p0 + p) * a.ld + row0..][..MR]);
    }
}

/// Packs rows `p0..p0 + kc` and columns `col0..col0 + cols` of op(B) into `out` as
/// `ceil(cols / nr)` micro-panels of `kc x nr` (row after row), zero-padded.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pack_b(
    b: Operand,
    p0: usize,
    kc: usize,
    col0: usize,
    cols: usize,
    nr: usize,
    isa: Isa,
    out: &mut [f32],
) {
    match b.trans {
        Transpose::No => {
            #[cfg(target_arch = "x86_64")]
            if isa == Isa::Avx512 && isa.is_supported() && nr == 32 {
                // SAFETY: the CPU has AVX-512F.
                unsafe { copy_rows_avx512(b, p0, kc, col0, cols, out) };
                return;
            }
            copy_rows(b, p0, kc, col0, cols, nr, out, |to, from| to.copy_from_slice(from));
        }
        Transpose::Yes => {
            for (panel_index, panel) in out.chunks_exact_mut(kc * nr).take(cols.div_ceil(nr)).enumerate() {
                let panel_col0 = col0 + panel_index * nr;
                let valid = nr.min(col0 + cols - panel_col0);
                interleave(b.data, b.ld, panel_col0, valid, p0, kc, nr, isa, panel);
            }
        }
    }
}

/// Interleaves `valid` lines of `data` (line `first + j` starts at `(first + j)·ld`, and its
/// elements `p0..p0 + kc` are contiguous) into a panel of `width` lines, `kc` steps:
/// `panel[p·width + j] = line_j[p0 + p]`, zero for `j >= valid`.
///
/// This is a transpose of a `valid x kc` block. On the AVX-512 path (B̃ of `op(B) = Bᵀ`, 32
/// wide, and Ã, 12 wide), groups of 16 lines go through 16x16 transposes in registers,
/// masked to the lines present (loads) and to the panel's width (stores), and the steps
/// left over through masked gathers (lines past `valid` come out as zeros either way):
/// faster than the 4x4 transposes below on both, as 16 lines of one 64-byte line each per
/// block keep 12-16 reads in flight.
/// Elsewhere it is done in 4x4 blocks in SSE registers (4 loads, 8 shuffles and
/// 4 stores per 16 floats, about a quarter of the cost of moving the floats one by one),
/// and the lines left over when `valid` or `kc` is not a multiple of 4 are copied one float
/// at a time.
#[allow(clippy::too_many_arguments)]
fn interleave(
    data: &[f32],
    ld: usize,
    first: usize,
    valid: usize,
    p0: usize,
    kc: usize,
    width: usize,
    isa: Isa,
    panel: &mut [f32],
) {
    let line = |j: usize| &data[(first + j) * ld + p0..][..kc];
    let panel = &mut panel[..kc * width];
    #[cfg(target_arch = "x86_64")]
    // Gather indices are i32 offsets: 15 lines apart must fit.
    if isa == Isa::Avx512 && isa.is_supported() && ld <= i32::MAX as usize / 16 && valid > 0 {
        // Bounds-check the last element any lane reads (the lines before it start earlier).
        let _ = line(valid - 1);
        // SAFETY: the CPU has AVX-512F; every unmasked gather lane reads element p0 + p
        // (p < kc) of a line j < valid, the last of which was sliced above; the stores
        // write inside `panel` (kc·width floats).
        unsafe { interleave_avx512(data[(first * ld + p0)..].as_ptr(), ld, valid, kc, width, panel) };
        return;
    }
    let quads = if cfg!(target_arch = "x86_64") { valid / 4 * 4 } else { 0 };
    #[cfg(target_arch = "x86_64")]
    for j in (0..quads).step_by(4) {
        let lines = [line(j), line(j + 1), line(j + 2), line(j + 3)];
        for p in (0..kc / 4 * 4).step_by(4) {
            transpose4(&lines, p, &mut panel[p * width + j..], width);
        }
        for p in kc / 4 * 4..kc {
            for (q, l) in lines.iter().enumerate() {
                panel[p * width + j + q] = l[p];
            }
        }
    }
    for j in quads..valid {
        let l = line(j);
        for (step, &value) in panel.chunks_exact_mut(width).zip(l) {
            step[j] = value;
        }
    }
    if valid < width {
        for step in panel.chunks_exact_mut(width) {
            step[valid..].fill(0.0);
        }
    }
}

/// [`interleave`] on AVX-512 for each group of 16 lines: [`transpose16`] 16 steps at a
/// time, and masked gathers for the steps left over: at step p, lane `l` reads
/// `lines[p + l·ld]` from `base` (the group's first line at p0) when the line is one of the
/// `valid`, and zero otherwise; the store keeps the lanes inside the panel's `width`.
///
/// # Safety
/// The CPU must have AVX-512F; `base` must be readable at `j·ld + p` for `j < valid`,
/// `p < kc`; `panel` holds `kc·width` floats; `ld·15 <= i32::MAX`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn interleave_avx512(
    base: *const f32,
    ld: usize,
    valid: usize,
    kc: usize,
    width: usize,
    panel: &mut [f32],
) {
    use std::arch::x86_64::*;
    let lane_lines = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let offsets = _mm512_mullo_epi32(lane_lines, _mm512_set1_epi32(ld as i32));
    let lane_mask = |lanes: usize| -> __mmask16 {
        if lanes >= 16 {
            !0
        } else {
            (1u16 << lanes) - 1
        }
    };
    for group in 0..width.div_ceil(16) {
        let line0 = 16 * group;
        let read = lane_mask(valid.saturating_sub(line0));
        let write = lane_mask(width - line0);
        // SAFETY: (caller's contract) lanes in `read` are lines < valid; the group start is
        // only offset, never read, when no lane is.
        let group_base = base.wrapping_add(line0 * ld);
        // The group moves 16 steps at a time through a 16x16 transpose in registers (its
        // lines past `valid` as zeros, its lanes past `width` not stored); the gathers take
        // the steps left over.
        let blocked = kc / 16 * 16;
        for p in (0..blocked).step_by(16) {
            let dst = panel.as_mut_ptr().wrapping_add(p * width + line0);
            // SAFETY: the lines in `read` (< valid) are readable at steps p..p + 16 <= kc,
            // and the panel's lines in `write` (< width) writable at those steps.
            unsafe { transpose16(group_base.wrapping_add(p), ld, read, dst, width, write) };
        }
        for p in blocked..kc {
            // SAFETY: unmasked lanes read line line0 + l < valid at step p < kc; the store
            // writes lanes line0 + l < width of step p, inside the panel.
            unsafe {
                let step = _mm512_mask_i32gather_ps::<4>(
                    _mm512_setzero_ps(),
                    read,
                    offsets,
                    group_base.wrapping_add(p),
                );
                _mm512_mask_storeu_ps(panel.as_mut_ptr().add(p * width + line0), write, step);
            }
        }
    }
}

/// Writes 16 steps of 16 lines (`src[j·ld + q]`, j, q < 16) as 16 steps of a panel
/// (`dst[q·width + j]`): the lines loaded into registers, transposed there
/// ([`crate::transpose16`]: 64 shuffles for 256 floats) and stored. Only the lines whose bit
/// is set in `read` are loaded (the others are zeros), and only the lanes set in `write`
/// stored.
///
/// # Safety
/// The CPU must have AVX-512F; `src` must be readable at `j·ld + q` for the lines `j` in
/// `read`, and `dst` writable at `q·width + j` for the lanes `j` in `write`, for `q < 16`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose16(src: *const f32, ld: usize, read: u16, dst: *mut f32, width: usize, write: u16) {
    use std::arch::x86_64::*;
    let mut lines = [_mm512_setzero_ps(); 16];
    for (j, line) in lines.iter_mut().enumerate() {
        if read & (1 << j) != 0 {
            // SAFETY: line j is in `read`: 16 floats readable (caller's contract).
            *line = unsafe { _mm512_loadu_ps(src.wrapping_add(j * ld)) };
        }
    }
    for (q, step) in crate::transpose16::transpose16(lines).iter().enumerate() {
        // SAFETY: step q < 16 of the panel, the lanes in `write` (caller's contract; masked-off
        // lanes are not written).
        unsafe { _mm512_mask_storeu_ps(dst.add(q * width), write, *step) };
    }
}

/// Writes elements `p..p + 4` of four lines as four steps of a panel:
/// `out[q·width + r] = lines[r][p + q]` for `q, r < 4`.
#[cfg(target_arch = "x86_64")]
fn transpose4(lines: &[&[f32]; 4], p: usize, out: &mut [f32], width: usize) {
    use std::arch::x86_64::*;
    // SAFETY: SSE is part of the x86_64 baseline; each load reads the 4 floats of a
    // bounds-checked `lines[r][p..p + 4]` and each store writes the 4 floats of a
    // bounds-checked `out[q·width..q·width + 4]`.
    unsafe {
        let load = |r: usize| _mm_loadu_ps(lines[r][p..p + 4].as_ptr());
        let (r0, r1, r2, r3) = (load(0), load(1), load(2), load(3));
        // The classic 4x4 transpose: pair rows (0, 1) and (2, 3) element by element, then
        // take the low and high halves of the pairs.
        let (t0, t1) = (_mm_unpacklo_ps(r0, r1), _mm_unpacklo_ps(r2, r3));
        let (t2, t3) = (_mm_unpackhi_ps(r0, r1), _mm_unpackhi_ps(r2, r3));
        let columns =
            [_mm_movelh_ps(t0, t1), _mm_movehl_ps(t1, t0), _mm_movelh_ps(t2, t3), _mm_movehl_ps(t3, t2)];
        for (q, column) in columns.into_iter().enumerate() {
            _mm_storeu_ps(out[q * width..q * width + 4].as_mut_ptr(), column);
        }
    }
}

/// [`pack_b`] of B not transposed: rows of B are contiguous along j, so they are taken
/// PACK_B_ROWS at a time, each walked from left to right in pieces of NR floats, one piece
/// per panel (`copy_piece` copies a whole piece). Copying a whole panel at a time (kc rows
/// of NR floats) read its rows, often 4 KiB apart, one page and one miss each, which the
/// hardware prefetcher does not follow; one row at a time across all panels wrote rows
/// KC·NR floats apart, all in the same few L1 sets. A few rows at a time keeps a few
/// sequential reads and one run of writes.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn copy_rows(
    b: Operand,
    p0: usize,
    kc: usize,
    col0: usize,
    cols: usize,
    nr: usize,
    out: &mut [f32],
    copy_piece: impl Fn(&mut [f32], &[f32]),
) {
    for p_block in (0..kc).step_by(PACK_B_ROWS) {
        let rows = PACK_B_ROWS.min(kc - p_block);
        for (panel, j0) in out.chunks_exact_mut(kc * nr).zip((0..cols).step_by(nr)) {
            let width = nr.min(cols - j0);
            for p in p_block..p_block + rows {
                let piece = &b.data[(p0 + p) * b.ld + col0 + j0..][..width];
                let row = &mut panel[p * nr..][..nr];
                if width == nr {
                    copy_piece(row, piece);
                } else {
                    row[..width].copy_from_slice(piece);
                    row[width..].fill(0.0);
                }
            }
        }
    }
}

/// [`copy_rows`] for NR = 32 with two 16-float moves per piece. (A plain `copy_from_slice`
/// of each piece compiles to a call to memcpy, even at a fixed size once merged with the
/// ragged pieces' copy.)
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn copy_rows_avx512(b: Operand, p0: usize, kc: usize, col0: usize, cols: usize, out: &mut [f32]) {
    use std::arch::x86_64::*;
    copy_rows(b, p0, kc, col0, cols, 32, out, |to, from| {
        let (to, from) = (&mut to[..32], &from[..32]);
        // SAFETY: both slices hold 32 floats, two vectors of 16.
        unsafe {
            _mm512_storeu_ps(to.as_mut_ptr(), _mm512_loadu_ps(from.as_ptr()));
            _mm512_storeu_ps(to.as_mut_ptr().add(16), _mm512_loadu_ps(from.as_ptr().add(16)));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slice read in place runs from the block's first element to its last, for both
    /// layouts, and a block past the data panics.
    #[test]
    fn in_place_blocks_run_from_first_to_last_element() {
        let data: Vec<f32> = (0..20).map(|v| v as f32).collect();
        // A 4 x 5 matrix: rows 1..3, columns 1..4.
        let stored = Operand { data: &data, ld: 5, trans: Transpose::No };
        let (block, row_stride, col_stride) = stored.in_place(1, 2, 1, 3);
        assert_eq!((block.first(), block.last(), row_stride, col_stride), (Some(&6.0), Some(&13.0), 5, 1));
        // Its transpose, 5 x 4: rows 1..4 of op(X) are columns of X.
        let transposed = Operand { data: &data, ld: 5, trans: Transpose::Yes };
        let (block, row_stride, col_stride) = transposed.in_place(1, 3, 1, 2);
        assert_eq!((block.first(), block.last(), row_stride, col_stride), (Some(&6.0), Some(&13.0), 1, 5));
        let (whole, _, _) = stored.in_place(0, 4, 0, 5);
        assert_eq!(whole.len(), 20);
        assert!(std::panic::catch_unwind(|| stored.in_place(3, 2, 0, 5)).is_err());
    }
}
