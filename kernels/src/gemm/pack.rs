//! Packing: copying blocks of op(A) and op(B) into the micro-panel layouts the microkernel
//! streams through (see the contract in `microkernel.rs`), zero-padding partial panels so
//! the microkernel always runs full tiles.

use super::Transpose;

/// A matrix as stored, row-major with leading dimension `ld`, seen through `op`.
#[derive(Clone, Copy)]
pub(crate) struct Operand<'a> {
    pub data: &'a [f32],
    pub ld: usize,
    pub trans: Transpose,
}

/// Packs rows `row0..row0 + rows` and columns `p0..p0 + kc` of op(A) into `out` as
/// `ceil(rows / mr)` micro-panels of `kc x mr` (column after column), zero-padded.
pub(crate) fn pack_a(a: Operand, row0: usize, rows: usize, p0: usize, kc: usize, mr: usize, out: &mut [f32]) {
    for (panel_index, panel) in out.chunks_exact_mut(kc * mr).take(rows.div_ceil(mr)).enumerate() {
        let panel_row0 = row0 + panel_index * mr;
        let valid = mr.min(row0 + rows - panel_row0);
        match a.trans {
            // Rows of A are contiguous along p: walk each row once, scattering with stride mr.
            Transpose::No => {
                interleave(a.data, a.ld, panel_row0, valid, p0, kc, mr, panel);
            }
            // Columns of op(A) are contiguous: each packed column is a slice copy.
            Transpose::Yes => {
                for (p, column) in panel.chunks_exact_mut(mr).enumerate() {
                    let source = &a.data[(p0 + p) * a.ld + panel_row0..][..valid];
                    column[..valid].copy_from_slice(source);
                    column[valid..].fill(0.0);
                }
            }
        }
    }
}

/// Packs rows `p0..p0 + kc` and columns `col0..col0 + cols` of op(B) into `out` as
/// `ceil(cols / nr)` micro-panels of `kc x nr` (row after row), zero-padded.
pub(crate) fn pack_b(b: Operand, p0: usize, kc: usize, col0: usize, cols: usize, nr: usize, out: &mut [f32]) {
    for (panel_index, panel) in out.chunks_exact_mut(kc * nr).take(cols.div_ceil(nr)).enumerate() {
        let panel_col0 = col0 + panel_index * nr;
        let valid = nr.min(col0 + cols - panel_col0);
        match b.trans {
            // Rows of B are contiguous along j: each packed row is a slice copy.
            Transpose::No => {
                for (p, row) in panel.chunks_exact_mut(nr).enumerate() {
                    let source = &b.data[(p0 + p) * b.ld + panel_col0..][..valid];
                    row[..valid].copy_from_slice(source);
                    row[valid..].fill(0.0);
                }
            }
            Transpose::Yes => {
                interleave(b.data, b.ld, panel_col0, valid, p0, kc, nr, panel);
            }
        }
    }
}

/// The most lines a panel interleaves (the largest MR or NR of any microkernel).
const MAX_LINES: usize = 32;

/// Interleaves `valid` lines of `data` (line `first + j` starts at `(first + j)·ld`, and its
/// elements `p0..p0 + kc` are contiguous) into a panel of `width` lines, `kc` steps:
/// `panel[p·width + j] = line_j[p0 + p]`, zero for `j >= valid`. The panel is written in
/// order while the lines are read as `valid` sequential streams, which the prefetchers follow.
#[allow(clippy::too_many_arguments)]
fn interleave(
    data: &[f32],
    ld: usize,
    first: usize,
    valid: usize,
    p0: usize,
    kc: usize,
    width: usize,
    panel: &mut [f32],
) {
    let mut lines: [&[f32]; MAX_LINES] = [&[]; MAX_LINES];
    for (j, line) in lines.iter_mut().enumerate().take(valid) {
        *line = &data[(first + j) * ld + p0..][..kc];
    }
    let lines = &lines[..valid];
    for (p, step) in panel.chunks_exact_mut(width).take(kc).enumerate() {
        for (slot, line) in step.iter_mut().zip(lines) {
            *slot = line[p];
        }
        step[valid..].fill(0.0);
    }
}
