//! The images-in-lanes layout and the moves into and out of it.
//!
//! A *lane group* is up to 16 images of a batch held as one tensor `(c, h, w, 16)`: element
//! `[ch, y, x, l]` is pixel `(y, x)` of channel `ch` of the group's image `l`. Lanes past
//! the group's image count hold zeros. Moving NCHW images in or out of this layout is a
//! transpose of 16x16 blocks (16 images x 16 consecutive pixels of one row or plane), done
//! in registers: 16 loads, 64 shuffles, 16 stores per block.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::super::rows::lane_range;
#[cfg(target_arch = "x86_64")]
use crate::transpose16::transpose16 as transpose;

/// Images per lane group: the lanes of one AVX-512 vector.
pub(in crate::conv) const LANES: usize = 16;

/// Where a group's images lie in an NCHW batch: the group's first image starts at `data[0]`
/// and images are `image_len` floats apart; `count <= LANES` of them exist.
#[derive(Clone, Copy)]
pub(super) struct Images {
    pub image_len: usize,
    pub count: usize,
}

/// A channel plane of `h x w` inside the layout, with `pad_h` / `pad_w` zero rows and columns
/// around it: the padded plane is `(h + 2·pad_h) x (w + 2·pad_w)` positions of 16 lanes.
#[derive(Clone, Copy)]
pub(super) struct Plane {
    pub channels: usize,
    pub h: usize,
    pub w: usize,
    pub pad_h: usize,
    pub pad_w: usize,
}

impl Plane {
    pub fn padded_h(&self) -> usize {
        self.h + 2 * self.pad_h
    }

    pub fn padded_w(&self) -> usize {
        self.w + 2 * self.pad_w
    }

    /// Floats of the whole layout: `channels x padded_h x padded_w x 16`.
    pub fn len(&self) -> usize {
        self.channels * self.padded_h() * self.padded_w() * LANES
    }
}

/// `dst (channels, padded_h, padded_w, 16)` = the group's images `src (count, channels, h, w)`
/// with zeros in the padding and in lanes `count..16`.
///
/// Panics unless `dst` holds `plane.len()` floats, `count` is `1..=16` and `src` holds the
/// group's last image (`(count - 1)·image_len + channels·h·w` floats).
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn interleave(src: &[f32], images: Images, plane: &Plane, dst: &mut [f32]) {
    let Plane { channels, h, w, pad_h, pad_w } = *plane;
    let (hp, wp) = (plane.padded_h(), plane.padded_w());
    assert!(
        dst.len() == plane.len()
            && (1..=LANES).contains(&images.count)
            && src.len() >= (images.count - 1) * images.image_len + channels * h * w,
        "interleave: slices do not match the layout"
    );
    // The transposes below write all 16 lanes of every inside position (zeros for absent
    // images): only the padding needs clearing.
    for plane_rows in dst.chunks_exact_mut(hp * wp * LANES) {
        let (top, rest) = plane_rows.split_at_mut(pad_h * wp * LANES);
        let (middle, bottom) = rest.split_at_mut(h * wp * LANES);
        top.fill(0.0);
        bottom.fill(0.0);
        for row in middle.chunks_exact_mut(wp * LANES) {
            row[..pad_w * LANES].fill(0.0);
            row[(pad_w + w) * LANES..].fill(0.0);
        }
    }
    let (sp, dp) = (src.as_ptr(), dst.as_mut_ptr());
    for ch in 0..channels {
        for y in 0..h {
            for x0 in (0..w).step_by(LANES) {
                let cols = LANES.min(w - x0);
                let mask = lane_range(0, cols);
                // Rows of absent images load nothing (all lanes masked off): a fixed-count
                // loop of masked loads, which stays in registers.
                let rows: [__m512; LANES] = std::array::from_fn(|image| {
                    let row_mask = if image < images.count { mask } else { 0 };
                    let at = sp.wrapping_add(image * images.image_len + (ch * h + y) * w + x0);
                    // SAFETY: for image < count the row's `cols` floats at `at` lie inside the
                    // image, which the assert put inside `src`; masked-off lanes are neither
                    // read nor able to fault (the address of an absent image is formed with
                    // wrapping arithmetic and never dereferenced).
                    unsafe { _mm512_maskz_loadu_ps(row_mask, at) }
                });
                let columns = transpose(rows);
                for (q, column) in columns.iter().take(cols).enumerate() {
                    let position = (ch * hp + y + pad_h) * wp + pad_w + x0 + q;
                    // SAFETY: `y + pad_h < hp` and `pad_w + x0 + q < pad_w + w <= wp`, so the
                    // 16 floats at `position·16` lie inside `dst` (asserted `plane.len()`).
                    unsafe { _mm512_storeu_ps(dp.add(position * LANES), *column) };
                }
            }
        }
    }
}

/// The inverse move of an unpadded layout: for each of the group's `count` images,
/// `dst[image] (channels, h, w)` **overwritten** from `src (channels, h, w, 16)`; lanes
/// `count..` of `src` are ignored.
///
/// Panics unless `plane` has no padding, `src` holds `plane.len()` floats, `count` is
/// `1..=16` and `dst` holds the group's last image.
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn deinterleave(src: &[f32], plane: &Plane, images: Images, dst: &mut [f32]) {
    let positions = plane.h * plane.w;
    assert!(
        plane.pad_h == 0
            && plane.pad_w == 0
            && src.len() == plane.len()
            && (1..=LANES).contains(&images.count)
            && dst.len() >= (images.count - 1) * images.image_len + plane.channels * positions,
        "deinterleave: slices do not match the layout"
    );
    let (sp, dp) = (src.as_ptr(), dst.as_mut_ptr());
    for ch in 0..plane.channels {
        for p0 in (0..positions).step_by(LANES) {
            let valid = LANES.min(positions - p0);
            let rows: [__m512; LANES] = std::array::from_fn(|q| {
                let row_mask = if q < valid { !0 } else { 0 };
                let at = sp.wrapping_add((ch * positions + p0 + q) * LANES);
                // SAFETY: for q < valid, position `ch·positions + p0 + q` < `channels·positions`,
                // whose 16 lanes lie inside `src` (asserted `plane.len()`); other rows load
                // nothing (all lanes masked off, address never dereferenced).
                unsafe { _mm512_maskz_loadu_ps(row_mask, at) }
            });
            let by_image = transpose(rows);
            let mask = lane_range(0, valid);
            for (image, row) in by_image.iter().take(images.count).enumerate() {
                // SAFETY: image < count and the mask keeps positions `p0 + l < positions` of
                // channel `ch`, inside the image, which the assert put inside `dst`.
                unsafe {
                    _mm512_mask_storeu_ps(dp.add(image * images.image_len + ch * positions + p0), mask, *row)
                };
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn interleave(_: &[f32], _: Images, _: &Plane, _: &mut [f32]) {
    unreachable!("AVX-512 is never selected off x86_64")
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn deinterleave(_: &[f32], _: &Plane, _: Images, _: &mut [f32]) {
    unreachable!("AVX-512 is never selected off x86_64")
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::isa::Isa;

    #[test]
    fn interleave_then_deinterleave_round_trips_with_padding_zeroed() {
        let test = "conv::lanes::layout::tests::interleave_then_deinterleave_round_trips_with_padding_zeroed";
        if !Isa::Avx512.supported_or_skip(test) {
            return;
        }
        for (count, channels, h, w, pad) in
            [(1, 1, 1, 1, 0), (16, 2, 5, 17, 2), (7, 3, 4, 33, 1), (16, 1, 3, 16, 0)]
        {
            let image_len = channels * h * w + 3; // images 3 floats apart beyond their data
            let src: Vec<f32> = (0..count * image_len).map(|v| v as f32 + 0.5).collect();
            let padded = Plane { channels, h, w, pad_h: pad, pad_w: pad };
            let mut layout = vec![f32::NAN; padded.len()];
            let images = Images { image_len, count };
            // SAFETY: the CPU has AVX-512F (checked above).
            unsafe { interleave(&src, images, &padded, &mut layout) };
            let (hp, wp) = (padded.padded_h(), padded.padded_w());
            for ch in 0..channels {
                for y in 0..hp {
                    for x in 0..wp {
                        for l in 0..LANES {
                            let got = layout[((ch * hp + y) * wp + x) * LANES + l];
                            let inside =
                                (pad..pad + h).contains(&y) && (pad..pad + w).contains(&x) && l < count;
                            let want = if inside {
                                src[l * image_len + (ch * h + y - pad) * w + x - pad]
                            } else {
                                0.0
                            };
                            assert_eq!(got, want, "[{ch}, {y}, {x}, {l}]");
                        }
                    }
                }
            }
            // Drop the padding, then move back out.
            let plain = Plane { pad_h: 0, pad_w: 0, ..padded };
            let mut unpadded = vec![0.0f32; plain.len()];
            for ch in 0..channels {
                for y in 0..h {
                    for x in 0..w {
                        let from = ((ch * hp + y + pad) * wp + x + pad) * LANES;
                        let to = ((ch * h + y) * w + x) * LANES;
                        unpadded[to..to + LANES].copy_from_slice(&layout[from..from + LANES]);
                    }
                }
            }
            let mut back = vec![-1.0f32; src.len()];
            // SAFETY: the CPU has AVX-512F (checked above).
            unsafe { deinterleave(&unpadded, &plain, images, &mut back) };
            for l in 0..count {
                let image = &back[l * image_len..][..image_len];
                assert_eq!(
                    &image[..channels * h * w],
                    &src[l * image_len..][..channels * h * w],
                    "image {l}"
                );
                assert!(
                    image[channels * h * w..].iter().all(|&v| v == -1.0),
                    "image {l}: wrote past its data"
                );
            }
        }
    }
}
