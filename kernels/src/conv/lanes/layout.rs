//! The images-in-lanes layout and the moves into and out of it.
//!
//! A *lane group* is up to `lanes` images of a batch (a vector's lanes: 16 on AVX-512, 8 on
//! AVX2) held as one tensor `(c, h, w, lanes)`: element `[ch, y, x, l]` is pixel `(y, x)` of
//! channel `ch` of the group's image `l`. Lanes past the group's image count hold zeros.
//! Moving NCHW images in or out of this layout is a transpose of `lanes x lanes` blocks
//! (`lanes` images x `lanes` consecutive pixels of one row or plane), done in registers by
//! the vector type ([`ConvVector::rows_to_lanes`], [`ConvVector::lanes_to_rows`]).

use crate::conv::vector::ConvVector;

/// Where a group's images lie in an NCHW batch: the group's first image starts at `data[0]`
/// and images are `image_len` floats apart; `count <= lanes` of them exist.
#[derive(Clone, Copy)]
pub(super) struct Images {
    pub image_len: usize,
    pub count: usize,
}

/// A channel plane of `h x w` inside the layout, with `pad_h` / `pad_w` zero rows and columns
/// around it: the padded plane is `(h + 2·pad_h) x (w + 2·pad_w)` positions of `lanes` floats.
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

    /// Floats of the whole layout: `channels x padded_h x padded_w x lanes`.
    pub fn len(&self, lanes: usize) -> usize {
        self.channels * self.padded_h() * self.padded_w() * lanes
    }
}

/// `dst (channels, padded_h, padded_w, lanes)` = the group's images `src (count, channels, h,
/// w)` with zeros in the padding and in lanes `count..`.
///
/// Panics unless `dst` holds `plane.len(V::LANES)` floats, `count` is `1..=V::LANES` and
/// `src` holds the group's last image (`(count - 1)·image_len + channels·h·w` floats).
///
/// # Safety
/// The CPU has the instruction set of `V`; the caller is a `#[target_feature]` function of it.
#[inline(always)]
pub(super) unsafe fn interleave<V: ConvVector>(src: &[f32], images: Images, plane: &Plane, dst: &mut [f32]) {
    let lanes = V::LANES;
    let Plane { channels, h, w, pad_h, pad_w } = *plane;
    let (hp, wp) = (plane.padded_h(), plane.padded_w());
    assert!(
        dst.len() == plane.len(lanes)
            && (1..=lanes).contains(&images.count)
            && src.len() >= (images.count - 1) * images.image_len + channels * h * w,
        "interleave: slices do not match the layout"
    );
    // The transposes below write all lanes of every inside position (zeros for absent
    // images): only the padding needs clearing.
    for plane_rows in dst.chunks_exact_mut(hp * wp * lanes) {
        let (top, rest) = plane_rows.split_at_mut(pad_h * wp * lanes);
        let (middle, bottom) = rest.split_at_mut(h * wp * lanes);
        top.fill(0.0);
        bottom.fill(0.0);
        for row in middle.chunks_exact_mut(wp * lanes) {
            row[..pad_w * lanes].fill(0.0);
            row[(pad_w + w) * lanes..].fill(0.0);
        }
    }
    let (sp, dp) = (src.as_ptr(), dst.as_mut_ptr());
    for ch in 0..channels {
        for y in 0..h {
            for x0 in (0..w).step_by(lanes) {
                let cols = lanes.min(w - x0);
                let position = (ch * hp + y + pad_h) * wp + pad_w + x0;
                // SAFETY: each image l < count has its row's `cols` floats from
                // `(ch·h + y)·w + x0` inside its data, which the assert put inside `src`;
                // `y + pad_h < hp` and `pad_w + x0 + cols <= pad_w + w <= wp`, so the `cols`
                // positions from `position` lie inside `dst` (asserted `plane.len`).
                unsafe {
                    V::rows_to_lanes(
                        sp.wrapping_add((ch * h + y) * w + x0),
                        images.image_len,
                        images.count,
                        cols,
                        dp.add(position * lanes),
                    )
                };
            }
        }
    }
}

/// The inverse move of an unpadded layout: for each of the group's `count` images,
/// `dst[image] (channels, h, w)` **overwritten** from `src (channels, h, w, lanes)`; lanes
/// `count..` of `src` are ignored.
///
/// Panics unless `plane` has no padding, `src` holds `plane.len(V::LANES)` floats, `count`
/// is `1..=V::LANES` and `dst` holds the group's last image.
///
/// # Safety
/// The CPU has the instruction set of `V`; the caller is a `#[target_feature]` function of it.
#[inline(always)]
pub(super) unsafe fn deinterleave<V: ConvVector>(
    src: &[f32],
    plane: &Plane,
    images: Images,
    dst: &mut [f32],
) {
    let lanes = V::LANES;
    let positions = plane.h * plane.w;
    assert!(
        plane.pad_h == 0
            && plane.pad_w == 0
            && src.len() == plane.len(lanes)
            && (1..=lanes).contains(&images.count)
            && dst.len() >= (images.count - 1) * images.image_len + plane.channels * positions,
        "deinterleave: slices do not match the layout"
    );
    let (sp, dp) = (src.as_ptr(), dst.as_mut_ptr());
    for ch in 0..plane.channels {
        for p0 in (0..positions).step_by(lanes) {
            let valid = lanes.min(positions - p0);
            // SAFETY: the `valid` positions from `ch·positions + p0` lie inside `src`
            // (asserted `plane.len`); for each image l < count, the `valid` floats from
            // `l·image_len + ch·positions + p0` lie inside its data, which the assert put
            // inside `dst`.
            unsafe {
                V::lanes_to_rows(
                    sp.add((ch * positions + p0) * lanes),
                    valid,
                    dp.add(ch * positions + p0),
                    images.image_len,
                    images.count,
                )
            };
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::dispatch;
    use super::*;
    use crate::conv::vector::vector_lanes as lanes;
    use crate::isa::Isa;

    /// On every instruction set of the CPU with a lane vector: full and partial groups, rows
    /// shorter than, equal to and longer than a vector (ragged ends), padding on every side.
    #[test]
    fn interleave_then_deinterleave_round_trips_with_padding_zeroed() {
        let isas: Vec<Isa> = Isa::available().into_iter().filter(|&isa| isa != Isa::Portable).collect();
        let test = "conv::lanes::layout::tests::interleave_then_deinterleave_round_trips_with_padding_zeroed (AVX-512)";
        Isa::Avx512.supported_or_skip(test);
        for isa in isas {
            round_trip(isa);
        }
    }

    fn round_trip(isa: Isa) {
        let lanes = lanes(isa);
        for (count, channels, h, w, pad) in [
            (1, 1, 1, 1, 0),
            (lanes, 2, 5, 17, 2),
            (7, 3, 4, 33, 1),
            (lanes, 1, 3, 16, 0),
            (3, 2, 3, 9, 1),
            (lanes - 1, 1, 2, 8, 0),
        ] {
            let image_len = channels * h * w + 3; // images 3 floats apart beyond their data
            let src: Vec<f32> = (0..count * image_len).map(|v| v as f32 + 0.5).collect();
            let padded = Plane { channels, h, w, pad_h: pad, pad_w: pad };
            let mut layout = vec![f32::NAN; padded.len(lanes)];
            let images = Images { image_len, count };
            // SAFETY: the CPU has `isa` (from `Isa::available`), which has a lane vector.
            unsafe { dispatch::interleave(isa, &src, images, &padded, &mut layout) };
            let (hp, wp) = (padded.padded_h(), padded.padded_w());
            for ch in 0..channels {
                for y in 0..hp {
                    for x in 0..wp {
                        for l in 0..lanes {
                            let got = layout[((ch * hp + y) * wp + x) * lanes + l];
                            let inside =
                                (pad..pad + h).contains(&y) && (pad..pad + w).contains(&x) && l < count;
                            let want = if inside {
                                src[l * image_len + (ch * h + y - pad) * w + x - pad]
                            } else {
                                0.0
                            };
                            assert_eq!(got, want, "{isa:?} [{ch}, {y}, {x}, {l}]");
                        }
                    }
                }
            }
            // Drop the padding, then move back out.
            let plain = Plane { pad_h: 0, pad_w: 0, ..padded };
            let mut unpadded = vec![0.0f32; plain.len(lanes)];
            for ch in 0..channels {
                for y in 0..h {
                    for x in 0..w {
                        let from = ((ch * hp + y + pad) * wp + x + pad) * lanes;
                        let to = ((ch * h + y) * w + x) * lanes;
                        unpadded[to..to + lanes].copy_from_slice(&layout[from..from + lanes]);
                    }
                }
            }
            let mut back = vec![-1.0f32; src.len()];
            // SAFETY: as above.
            unsafe { dispatch::deinterleave(isa, &unpadded, &plain, images, &mut back) };
            for l in 0..count {
                let image = &back[l * image_len..][..image_len];
                assert_eq!(
                    &image[..channels * h * w],
                    &src[l * image_len..][..channels * h * w],
                    "{isa:?} image {l}"
                );
                assert!(
                    image[channels * h * w..].iter().all(|&v| v == -1.0),
                    "{isa:?} image {l}: wrote past its data"
                );
            }
        }
    }
}
