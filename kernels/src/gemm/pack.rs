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
                for i in 0..valid {
                    let row = &a.data[(panel_row0 + i) * a.ld + p0..][..kc];
                    for (p, &value) in row.iter().enumerate() {
                        panel[p * mr + i] = value;
                    }
                }
                if valid < mr {
                    for column in panel.chunks_exact_mut(mr) {
                        column[valid..].fill(0.0);
                    }
                }
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
                for j in 0..valid {
                    let column = &b.data[(panel_col0 + j) * b.ld + p0..][..kc];
                    for (p, &value) in column.iter().enumerate() {
                        panel[p * nr + j] = value;
                    }
                }
                if valid < nr {
                    for row in panel.chunks_exact_mut(nr) {
                        row[valid..].fill(0.0);
                    }
                }
            }
        }
    }
}
