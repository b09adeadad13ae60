//! Where floats fall on cache lines: packing buffers whose floats start on one, and the
//! offsets the kernels read operands at.
//!
//! A `Vec<f32>` of a packed block comes from the system allocator 16 bytes past a 64-byte
//! line (glibc puts its header there), so every 16-float vector of a packed row straddles
//! two lines, and every load of it is a split load. Buffers starting on a line avoid that.

use std::ops::{Deref, DerefMut, Range};

/// Floats per 64-byte cache line.
pub(crate) const LINE_FLOATS: usize = 64 / size_of::<f32>();

/// How many floats `ptr` lies past a boundary every `boundary_floats` floats (a power of
/// two dividing [`LINE_FLOATS`]: a line, half a line).
pub(crate) fn floats_past(ptr: *const f32, boundary_floats: usize) -> usize {
    (ptr as usize / size_of::<f32>()) % boundary_floats
}

/// Whether some of the rows starting at `ptr`, `stride` floats apart, start off a cache line
/// (and so a row of 16·V floats spans V + 1 lines).
#[cfg(target_arch = "x86_64")]
pub(crate) fn rows_off_lines(ptr: *const f32, stride: usize) -> bool {
    floats_past(ptr, LINE_FLOATS) != 0 || !stride.is_multiple_of(LINE_FLOATS)
}

/// A float buffer whose contents start on a 64-byte boundary: a `Vec` with up to a line of
/// slack in front, of which it shows only the aligned part.
#[derive(Default)]
pub(crate) struct LineAligned {
    floats: Vec<f32>,
}

impl LineAligned {
    /// A buffer of `len` zeros.
    pub(crate) fn zeroed(len: usize) -> Self {
        LineAligned { floats: vec![0.0; len + LINE_FLOATS - 1] }
    }

    /// Grows the buffer to at least `len` floats (their values unspecified).
    pub(crate) fn grow_to(&mut self, len: usize) {
        if self.len() < len {
            self.floats.resize(len + LINE_FLOATS - 1, 0.0);
        }
    }

    /// Where the aligned contents lie in `floats`.
    fn contents(&self) -> Range<usize> {
        if self.floats.is_empty() {
            return 0..0;
        }
        let past_line = floats_past(self.floats.as_ptr(), LINE_FLOATS);
        let start = (LINE_FLOATS - past_line) % LINE_FLOATS;
        start..start + self.floats.len() - (LINE_FLOATS - 1)
    }
}

impl Deref for LineAligned {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        &self.floats[self.contents()]
    }
}

impl DerefMut for LineAligned {
    fn deref_mut(&mut self) -> &mut [f32] {
        let contents = self.contents();
        &mut self.floats[contents]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_start_on_a_line_and_keep_their_length() {
        for len in [0, 1, 15, 16, 17, 1000, 300_000] {
            let mut buffer = LineAligned::zeroed(len);
            assert_eq!(buffer.len(), len);
            assert_eq!(buffer.as_ptr() as usize % 64, 0, "len {len}");
            buffer.grow_to(2 * len + 1);
            assert_eq!(buffer.len(), 2 * len + 1);
            assert_eq!(buffer.as_ptr() as usize % 64, 0, "grown from {len}");
        }
        assert_eq!(LineAligned::default().len(), 0);
    }

    /// Rows are off their lines when the first starts off one or the stride is not a whole
    /// number of lines.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn rows_off_lines_when_the_start_or_the_stride_is() {
        let buffer = LineAligned::zeroed(4 * LINE_FLOATS);
        let on_line = buffer.as_ptr();
        assert!(!rows_off_lines(on_line, LINE_FLOATS));
        assert!(!rows_off_lines(on_line, 3 * LINE_FLOATS));
        assert!(rows_off_lines(on_line, LINE_FLOATS + 4));
        assert!(rows_off_lines(buffer[1..].as_ptr(), LINE_FLOATS));
        assert_eq!(floats_past(buffer[5..].as_ptr(), LINE_FLOATS), 5);
        assert_eq!(floats_past(buffer[13..].as_ptr(), 8), 5);
    }
}
