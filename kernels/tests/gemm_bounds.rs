//! GEMM never reads or writes outside the slices its checks accepted, on every instruction
//! set: each operand (A, B, C, a per-row or per-column bias) is placed flush against an
//! inaccessible page, first ending right before one and then starting right after one, so
//! an access one float out of bounds faults and the test process dies.
//!
//! This is the check Miri would make of the edge handling (no nightly toolchain here): the
//! shapes cover the paths that read operands in place (B for C of one row of tiles, A for
//! C one tile wide, with ragged last panels), packed edges, every transpose, `β = 0` and
//! `β ≠ 0`, and tight leading dimensions.

#![cfg(unix)]

mod common;

use common::{on_isa, uniform};
use keel_kernels::gemm::{sgemm_fused, Activation, Bias, Epilogue, GemmShape, Transpose};
use keel_kernels::isa::Isa;

/// Floats in a mapping with inaccessible pages on both sides, placed flush against the
/// page after them (`at_end`) or the page before them.
struct Guarded {
    mapping: *mut libc::c_void,
    mapped: usize,
    first: *mut f32,
    len: usize,
}

impl Guarded {
    fn new(values: &[f32], at_end: bool) -> Guarded {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let data_pages = (values.len() * 4).div_ceil(page).max(1);
        let mapped = (data_pages + 2) * page;
        // SAFETY: an anonymous private mapping; the result is checked below.
        let mapping = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(mapping, libc::MAP_FAILED, "mmap failed");
        let base = mapping as *mut u8;
        // SAFETY: the first and last pages lie inside the mapping.
        unsafe {
            assert_eq!(libc::mprotect(mapping, page, libc::PROT_NONE), 0);
            assert_eq!(
                libc::mprotect(base.add(mapped - page) as *mut libc::c_void, page, libc::PROT_NONE),
                0
            );
        }
        let offset = if at_end { (data_pages + 1) * page - values.len() * 4 } else { page };
        // SAFETY: offset..offset + 4·len lies in the accessible pages, and is 4-byte aligned.
        let first = unsafe { base.add(offset) } as *mut f32;
        let mut guarded = Guarded { mapping, mapped, first, len: values.len() };
        guarded.as_mut().copy_from_slice(values);
        guarded
    }

    fn as_ref(&self) -> &[f32] {
        // SAFETY: `first` points at `len` initialised floats inside the mapping.
        unsafe { std::slice::from_raw_parts(self.first, self.len) }
    }

    fn as_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `as_ref`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.first, self.len) }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `new` and is not used after this.
        unsafe { libc::munmap(self.mapping, self.mapped) };
    }
}

/// The smallest length of a matrix of `rows x cols` (as stored) with leading dimension `ld`.
fn tight_len(rows: usize, cols: usize, ld: usize) -> usize {
    (rows - 1) * ld + cols
}

#[test]
fn no_path_reads_or_writes_past_its_operands() {
    let transposes = [Transpose::No, Transpose::Yes];
    let ms = [1, 5, 12, 13, 40];
    let ns = [1, 10, 16, 17, 32, 33, 50];
    let ks = [1, 7, 64];
    for isa in Isa::available() {
        for at_end in [true, false] {
            let products = transposes
                .into_iter()
                .flat_map(|transa| transposes.into_iter().map(move |transb| (transa, transb)));
            for (transa, transb) in products {
                let sizes = ms
                    .into_iter()
                    .flat_map(|m| ns.into_iter().flat_map(move |n| ks.into_iter().map(move |k| (m, n, k))));
                for (m, n, k) in sizes {
                    let (a_rows, a_cols) = if transa == Transpose::No { (m, k) } else { (k, m) };
                    let (b_rows, b_cols) = if transb == Transpose::No { (k, n) } else { (n, k) };
                    let (lda, ldb, ldc) = (a_cols, b_cols, n);
                    let a = Guarded::new(&uniform(tight_len(a_rows, a_cols, lda), 1, -1.0, 1.0), at_end);
                    let b = Guarded::new(&uniform(tight_len(b_rows, b_cols, ldb), 2, -1.0, 1.0), at_end);
                    let row_bias = Guarded::new(&uniform(m, 3, -1.0, 1.0), at_end);
                    let column_bias = Guarded::new(&uniform(n, 4, -1.0, 1.0), at_end);
                    let biases =
                        [Bias::None, Bias::PerRow(row_bias.as_ref()), Bias::PerColumn(column_bias.as_ref())];
                    for (bias, beta) in biases.into_iter().zip([0.0, 0.5, 1.0]) {
                        let mut c = Guarded::new(&uniform(tight_len(m, n, ldc), 5, -1.0, 1.0), at_end);
                        let epilogue = Epilogue { bias, activation: Activation::Relu };
                        on_isa(isa, || {
                            sgemm_fused(
                                &GemmShape { transa, transb, m, n, k, lda, ldb, ldc },
                                1.0,
                                a.as_ref(),
                                b.as_ref(),
                                beta,
                                c.as_mut(),
                                &epilogue,
                            )
                        })
                        .unwrap();
                    }
                }
            }
        }
    }
}
