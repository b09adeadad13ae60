//! Seeded data augmentation of images, one random transform per sample: horizontal flip,
//! random crop with padding, rotation, affine distortion (scale, shear, translation) and
//! elastic distortion, applied by [`Batches::augment`](super::Batches::augment) to training
//! batches only.
//!
//! # Shapes
//! A sample is an image `(C, H, W)`; a batch of them is NCHW `(N, C, H, W)`. Every channel
//! of a sample moves by the same transform.
//!
//! # The math
//! Each output pixel `p = (x, y)` (pixel centres at whole numbers, the centre of the image
//! at `c = ((W-1)/2, (H-1)/2)`) takes one bilinear sample of the input at
//!
//! ```text
//! u = c + A⁻¹ (p + d(p) + s - c - t),      A = R(θ) · Sh(φ) · S(k) · F
//! ```
//!
//! the inverse of the forward pipeline "affine about the centre, then crop, then elastic":
//! - `F` = `diag(-1, 1)` when the sample is flipped (mirrored left-right), else the identity;
//! - `S(k) = k·I` scales by `k`; `Sh(φ) = [[1, tan φ], [0, 1]]` shears along x;
//! - `R(θ) = [[cos θ, sin θ], [-sin θ, cos θ]]` rotates by `θ` counter-clockwise as the image
//!   is displayed (y points down), as torchvision's `rotate` does;
//! - `t` translates by a fraction of the width and height (sub-pixel);
//! - `s ∈ [-pad, pad]²` (whole pixels) is the crop offset: padding the image by `pad` pixels
//!   of the fill value on each side and cropping `H x W` back at a random position is a
//!   shift of the image by `-s`;
//! - `d(p) = α · (G_σ * r)(p)` is the elastic displacement of Simard et al. (2003): two
//!   fields `r_x, r_y` of independent uniform values in `[-1, 1]`, smoothed by a normalised
//!   Gaussian of standard deviation `σ` (separable, truncated at `ceil(3σ)`, zero outside
//!   the image) and scaled by `α`.
//!
//! Bilinear interpolation at `u = (x0 + fx, y0 + fy)`, `x0 = floor(u_x)`, reads the four
//! neighbours, taking the fill value for those outside the image:
//! `top = v(y0, x0) + fx·(v(y0, x0+1) - v(y0, x0))`, `bottom` likewise on row `y0 + 1`, and
//! `top + fy·(bottom - top)`; each interpolation is clamped between its two end points, so
//! every output lies between the least and greatest of the input values and the fill.
//! When `u` falls on a pixel centre (`fx = fy = 0`) the pixel is copied as it is, so whole
//! pixel moves (flips, crops, a rotation by 0) are exact.
//!
//! # Reproducibility
//! The random draws of a sample come from a generator seeded by `(seed, epoch, sample
//! index in the data set)`, so the same seed gives the same bits whatever the batch size,
//! the visiting order or the number of threads.
//!
//! # Example
//! ```
//! use keel_layers::{Augment, Batches, Dataset, Tensor};
//!
//! let images = Tensor::from_vec(&[4, 1, 5, 5], (0..100).map(|v| v as f32).collect())?;
//! let data = Dataset::new(images, vec![0, 1, 0, 1])?;
//! // Shift by up to 2 pixels and rotate by up to 10 degrees either way, filling with 0.
//! let augment = Augment { pad: 2, rotation: (-10.0, 10.0), seed: 7, ..Augment::default() };
//! let mut batches = Batches::shuffled(&data, 2, 1)?.augment(augment)?;
//! let (x, y) = batches.next_batch().unwrap();
//! assert_eq!(x.shape(), &[2, 1, 5, 5]);
//! assert_eq!(y.len(), 2);
//! # Ok::<(), keel_layers::LayerError>(())
//! ```

mod elastic;
mod warp;

use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::prelude::*;

use crate::error::{LayerError, Result};
use crate::tensor::Tensor;
use elastic::Smoothing;
use warp::Warp;

/// What to draw for each sample, each transform off by default: [`Augment::default`] is
/// the identity (it leaves every image bitwise unchanged).
///
/// Ranges `(low, high)` are drawn uniformly; a range with `low == high` gives that value.
/// Validated when attached ([`Augmenter::new`], [`Batches::augment`](super::Batches::augment)).
///
/// # Shapes
/// Samples are images `(C, H, W)`, so features `(samples, C, H, W)`; an augmented batch has
/// the shape of the plain one, `(batch, C, H, W)`, every channel of a sample moved alike.
///
/// ```
/// use keel_layers::{Augment, Batches, Dataset, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// // One 2x3 grey image: rows 0 1 2 and 3 4 5.
/// let image = Tensor::from_vec(&[1, 1, 2, 3], (0..6).map(|v| v as f32).collect())?;
/// let data = Dataset::new(image, vec![0])?;
/// let flip = Augment { flip: 1.0, ..Augment::default() }; // always mirror
/// let mut batches = Batches::sequential(&data, 1)?.augment(flip)?;
/// let (x, _) = batches.next_batch().unwrap();
/// assert_eq!(x.data(), &[2.0, 1.0, 0.0, 5.0, 4.0, 3.0]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Augment {
    /// Probability in `[0, 1]` of mirroring a sample left-right. Leave it 0 for digits and
    /// text, whose mirror images are not samples of the same class.
    pub flip: f32,
    /// Random crop with padding: pad by `pad` pixels of [`Augment::fill`] on each side, crop
    /// `H x W` back at a random position: a shift by a whole number of pixels in
    /// `[-pad, pad]` along each axis.
    pub pad: usize,
    /// Rotation angle range in degrees, counter-clockwise as displayed; each finite.
    pub rotation: (f32, f32),
    /// Scale factor range (1 keeps the size); both positive and finite.
    pub scale: (f32, f32),
    /// Shear angle range along x in degrees; each in `(-90, 90)`.
    pub shear: (f32, f32),
    /// Largest translation as a fraction of the width and of the height, each in `[0, 1]`:
    /// the shift along x is drawn from `[-translate.0·W, translate.0·W]` pixels (sub-pixel).
    pub translate: (f32, f32),
    /// Elastic distortion, or none.
    pub elastic: Option<Elastic>,
    /// The value of pixels that come from outside the image (finite). For normalised images
    /// set it to the normalised background, e.g. `-mean/std` for a black background, so the
    /// background stays background.
    pub fill: f32,
    /// Seeds the draws: equal seeds give equal bits.
    pub seed: u64,
}

impl Default for Augment {
    /// The identity: no flip, no padding, rotation and shear `(0, 0)`, scale `(1, 1)`, no
    /// translation, no elastic distortion; fill 0, seed 0.
    fn default() -> Self {
        Augment {
            flip: 0.0,
            pad: 0,
            rotation: (0.0, 0.0),
            scale: (1.0, 1.0),
            shear: (0.0, 0.0),
            translate: (0.0, 0.0),
            elastic: None,
            fill: 0.0,
            seed: 0,
        }
    }
}

/// Elastic distortion (Simard et al., 2003): per-pixel displacements drawn uniformly in
/// `[-1, 1]`, smoothed by a Gaussian of standard deviation `sigma` pixels and scaled by
/// `alpha` pixels. Simard's MNIST setting is `alpha` 34, `sigma` 4; smaller `alpha` is
/// milder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Elastic {
    /// Scale of the smoothed displacement field, in pixels (at least 0, finite).
    pub alpha: f32,
    /// Standard deviation of the smoothing Gaussian, in pixels (positive, finite).
    pub sigma: f32,
}

impl Augment {
    /// Errors ([`LayerError::Config`], naming the field, what it must be and what came)
    /// unless every parameter is in its range.
    pub fn validate(&self) -> Result<()> {
        let fail = |expected: &str, actual: String| {
            Err(LayerError::Config { model: "augment".into(), expected: expected.into(), actual })
        };
        let ordered = |(low, high): (f32, f32)| low.is_finite() && high.is_finite() && low <= high;
        if !(0.0..=1.0).contains(&self.flip) {
            return fail("flip probability in [0, 1]", format!("{}", self.flip));
        }
        if !ordered(self.rotation) {
            return fail(
                "rotation range (low, high) in degrees, finite, low <= high",
                format!("{:?}", self.rotation),
            );
        }
        if !ordered(self.scale) || self.scale.0 <= 0.0 {
            return fail("scale range (low, high), finite, 0 < low <= high", format!("{:?}", self.scale));
        }
        if !ordered(self.shear) || self.shear.0 <= -90.0 || self.shear.1 >= 90.0 {
            return fail(
                "shear range (low, high) in degrees within (-90, 90), low <= high",
                format!("{:?}", self.shear),
            );
        }
        let fraction = |v: f32| (0.0..=1.0).contains(&v);
        if !fraction(self.translate.0) || !fraction(self.translate.1) {
            return fail("translate fractions (x, y), each in [0, 1]", format!("{:?}", self.translate));
        }
        if let Some(Elastic { alpha, sigma }) = self.elastic {
            if !(alpha.is_finite() && alpha >= 0.0) {
                return fail("elastic alpha finite and at least 0", format!("{alpha}"));
            }
            if !(sigma.is_finite() && sigma > 0.0) {
                return fail("elastic sigma finite and positive", format!("{sigma}"));
            }
        }
        if !self.fill.is_finite() {
            return fail("a finite fill value", format!("{}", self.fill));
        }
        Ok(())
    }
}

/// An [`Augment`] configuration bound to a sample shape `(C, H, W)`, with the buffers it
/// reuses from batch to batch (a displacement field and a smoothing plane per sample of the
/// batch): once it has seen its largest batch it allocates nothing.
///
/// ```
/// use keel_layers::{Augment, Augmenter, Tensor};
/// # fn main() -> keel_layers::Result<()> {
/// let images = Tensor::from_vec(&[3, 1, 4, 4], (0..48).map(|v| v as f32).collect())?;
/// let config = Augment { pad: 1, rotation: (-15.0, 15.0), seed: 3, ..Augment::default() };
/// let mut augmenter = Augmenter::new(config, &[1, 4, 4])?;
/// let (mut a, mut b) = (Tensor::default(), Tensor::default());
/// augmenter.apply(&images, &[2, 0], 0, &mut a)?;
/// assert_eq!(a.shape(), &[2, 1, 4, 4]);
/// // A sample's transform depends on (seed, epoch, index) only, not on the batch.
/// augmenter.apply(&images, &[0], 0, &mut b)?;
/// assert_eq!(&a.data()[16..], b.data());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Augmenter {
    config: Augment,
    channels: usize,
    height: usize,
    width: usize,
    smoothing: Option<Smoothing>,
    fields: Vec<f32>,
}

impl Augmenter {
    /// Binds `config` to samples of shape `sample_shape` `(C, H, W)`; errors
    /// ([`LayerError::Shape`]) if the shape is not 3-D with every size positive, or
    /// ([`LayerError::Config`]) if a parameter is out of range ([`Augment::validate`]).
    pub fn new(config: Augment, sample_shape: &[usize]) -> Result<Self> {
        let &[channels, height, width] = sample_shape else {
            return Err(shape_error(sample_shape));
        };
        if channels == 0 || height == 0 || width == 0 {
            return Err(shape_error(sample_shape));
        }
        config.validate()?;
        let smoothing = config.elastic.map(|elastic| Smoothing::new(elastic, height, width));
        Ok(Augmenter { config, channels, height, width, smoothing, fields: Vec::new() })
    }

    /// The configuration.
    pub fn config(&self) -> &Augment {
        &self.config
    }

    /// Overwrites `out` with the augmented samples `indices` of `source`, in that order: row
    /// `k` of `out` is sample `indices[k]` under the transform drawn for `(seed, epoch,
    /// indices[k])`. Samples run in parallel on the rayon pool; the bits do not depend on
    /// the thread count.
    ///
    /// # Shapes
    /// `source` `(samples, C, H, W)` gives `out` `(indices.len(), C, H, W)` (resized in place,
    /// keeping its allocation when large enough). Errors if `source`'s samples do not have
    /// this augmenter's shape or an index is not below `samples`.
    pub fn apply(&mut self, source: &Tensor, indices: &[usize], epoch: u64, out: &mut Tensor) -> Result<()> {
        let shape = source.shape();
        if shape.len() != 4 || shape[1..] != [self.channels, self.height, self.width] {
            return Err(LayerError::Shape {
                layer: "augment".into(),
                expected: format!("(samples, {}, {}, {})", self.channels, self.height, self.width),
                actual: shape.to_vec(),
            });
        }
        if let Some(&index) = indices.iter().find(|&&index| index >= shape[0]) {
            return Err(LayerError::Data(format!(
                "augment: sample index {index}: expected an index below the {} samples",
                shape[0]
            )));
        }
        self.gather(source, indices, epoch, out);
        Ok(())
    }

    /// [`Augmenter::apply`] on arguments already checked: `source` `(samples, C, H, W)` of
    /// this shape and every index below `samples`.
    pub(crate) fn gather(&mut self, source: &Tensor, indices: &[usize], epoch: u64, out: &mut Tensor) {
        let sample_len = self.channels * self.height * self.width;
        out.resize(&[indices.len(), self.channels, self.height, self.width]);
        let field_len = self.smoothing.as_ref().map_or(0, Smoothing::field_len);
        let mut fields = std::mem::take(&mut self.fields);
        fields.resize(indices.len() * field_len, 0.0);
        let (source, this) = (source.data(), &*self);
        let one = |(row, &index): (&mut [f32], &usize), field: &mut [f32]| {
            let mut rng = StdRng::seed_from_u64(sample_seed(this.config.seed, epoch, index));
            let sample = &source[index * sample_len..(index + 1) * sample_len];
            this.transform(sample, row, field, &mut rng);
        };
        let rows = out.data_mut().par_chunks_mut(sample_len).zip(indices.par_iter());
        if field_len == 0 {
            rows.for_each(|pair| one(pair, &mut []));
        } else {
            rows.zip(fields.par_chunks_mut(field_len)).for_each(|(pair, field)| one(pair, field));
        }
        self.fields = fields;
    }

    /// Writes the transformed `sample` `(C, H, W)` into `out` (same shape), drawing from
    /// `rng`; `field` is the sample's displacement scratch (empty without elastic).
    fn transform(&self, sample: &[f32], out: &mut [f32], field: &mut [f32], rng: &mut StdRng) {
        let warp = Warp::draw(&self.config, self.height, self.width, rng);
        let displacement = self.smoothing.as_ref().map(|smoothing| smoothing.displacement(field, rng));
        warp.resample(sample, out, self.channels, displacement, self.config.fill);
    }
}

/// The shape error of a sample that is not an image `(C, H, W)` with every size positive.
fn shape_error(sample_shape: &[usize]) -> LayerError {
    LayerError::Shape {
        layer: "augment".into(),
        expected: "samples (channels, height, width), each at least 1".into(),
        actual: sample_shape.to_vec(),
    }
}

/// The seed of one sample's generator: `(seed, epoch, index)` mixed by SplitMix64 steps, so
/// nearby triples give unrelated streams.
fn sample_seed(seed: u64, epoch: u64, index: usize) -> u64 {
    splitmix64(splitmix64(splitmix64(seed) ^ epoch) ^ index as u64)
}

/// One step of SplitMix64 (Steele, Lea and Flood, 2014): a bijective mix of 64 bits.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
