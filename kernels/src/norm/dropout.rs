//! Inverted dropout with a counter-based random number generator.
//!
//! Element `j` of a call with `(seed, offset)` has counter `e = offset + j`; it is kept when
//! its 32 random bits, half `e mod 2` of SplitMix64 draw number `⌊e/2⌋` of the stream keyed
//! by `seed` (see [`dropout_keep`]), fall in the top `1 - p` of their range. The decision
//! depends only on `(seed, e)`, never on the order in which elements are visited, so the
//! mask is the same for any thread count and chunking, and a tensor may be processed in
//! pieces by advancing `offset`. One 64-bit draw serves two neighbouring elements, which
//! halves the cost of the generator, the bulk of this kernel's work. Each parallel chunk
//! (mask, then `x·mask·scale`) runs on the instruction set of [`current_isa`]; the output
//! is a single product per element, the same bits on all of them.

use rayon::prelude::*;

use crate::error::{argument_error, check_len, Result};
use crate::isa::current_isa;
use crate::parallel::chunk_len;
use crate::simd::{dispatch, load_padded, store_partial, Kernel, SimdF32, MAX_LANES};

/// SplitMix64's increment (2⁶⁴/φ) and output mix (Steele, Lea, Flood 2014).
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

#[inline(always)]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The drop threshold of probability `p` on the top 32 bits of a draw: `round(p·2³²)`.
/// An element is kept when its bits are `>=` it, with probability `1 - p` to within 2⁻³³.
fn threshold(p: f32) -> u64 {
    (f64::from(p) * 4_294_967_296.0).round() as u64
}

/// Whether the element with counter `index` (`offset + j`) is kept under `seed` and dropout
/// probability `p`: with `d = mix64(mix64(seed) + (⌊index/2⌋ + 1)·γ)` (draw number
/// `⌊index/2⌋` of SplitMix64 seeded with `mix64(seed)`), its high 32 bits for an even
/// `index`, its low 32 bits for an odd one, compared with `round(p·2³²)`. This is the
/// definition the kernels and the reference share.
pub fn dropout_keep(p: f32, seed: u64, index: u64) -> bool {
    let d = draw(mix64(seed), index >> 1);
    let bits = if index & 1 == 0 { d >> 32 } else { d & 0xFFFF_FFFF };
    bits >= threshold(p)
}

/// Draw number `pair` of the stream keyed by `key`.
#[inline(always)]
fn draw(key: u64, pair: u64) -> u64 {
    mix64(key.wrapping_add(pair.wrapping_add(1).wrapping_mul(GOLDEN_GAMMA)))
}

/// Fills `mask` (counters `first..`) with 1 (kept) or 0, one draw per aligned pair of
/// counters; the decisions are those of [`dropout_keep`]. Inlined into the dispatched
/// chunk, where the compiler may vectorise the draws for the chosen instruction set.
#[inline(always)]
fn fill_mask(key: u64, threshold: u64, first: u64, mask: &mut [u8]) {
    let high = |d: u64| u8::from(d >> 32 >= threshold);
    let low = |d: u64| u8::from(d & 0xFFFF_FFFF >= threshold);
    // An odd first counter is the low half of the pair before.
    let (head, rest) = mask.split_at_mut(usize::from(first & 1 == 1).min(mask.len()));
    if let Some(m) = head.first_mut() {
        *m = low(draw(key, first >> 1));
    }
    let pair0 = first.wrapping_add(head.len() as u64) >> 1;
    let done = (rest.len() / 2) as u64;
    let mut pairs = rest.chunks_exact_mut(2);
    for (q, pair) in (&mut pairs).enumerate() {
        let d = draw(key, pair0.wrapping_add(q as u64));
        pair[0] = high(d);
        pair[1] = low(d);
    }
    if let Some(m) = pairs.into_remainder().first_mut() {
        *m = high(draw(key, pair0.wrapping_add(done)));
    }
}

/// The factor kept units are multiplied by: `1/(1 - p)`, and 0 for `p = 1` (everything is
/// dropped; PyTorch returns `x·0` there).
pub fn dropout_scale(p: f32) -> f32 {
    if p < 1.0 {
        1.0 / (1.0 - p)
    } else {
        0.0
    }
}

fn check_p(p: f32) -> Result<()> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(argument_error("p", "0 <= p <= 1", p))
    }
}

/// `y = x·(mask ≠ 0)·scale` (a product, as PyTorch's `x * noise`, so a NaN or infinite `x`
/// gives NaN even where dropped): whole vectors, then the tail through the same body on
/// zero-padded copies.
#[inline(always)]
fn apply_mask<V: SimdF32>(x: &[f32], mask: &[u8], scale: f32, y: &mut [f32]) {
    let scale = V::splat(scale);
    let body = x.len() - x.len() % V::LANES;
    for at in (0..body).step_by(V::LANES) {
        masked(V::load(&x[at..]), V::load_u8(&mask[at..]), scale).store(&mut y[at..]);
    }
    if body < x.len() {
        let mut tail_mask = [0u8; MAX_LANES];
        tail_mask[..x.len() - body].copy_from_slice(&mask[body..]);
        let v = masked(load_padded(&x[body..], 0.0), V::load_u8(&tail_mask), scale);
        store_partial(v, &mut y[body..]);
    }
}

/// `x·scale` where the mask value `m` is non-zero, `x·0` elsewhere.
#[inline(always)]
fn masked<V: SimdF32>(x: V, m: V, scale: V) -> V {
    let zero = V::splat(0.0);
    x * V::select(m.gt(zero), scale, zero)
}

/// One chunk of [`dropout_forward`]: the mask of counters `first..`, then `y`, as a
/// [`Kernel`] (so that both loops are compiled for the chosen instruction set).
struct ForwardChunk<'a, 'o> {
    key: u64,
    threshold: u64,
    first: u64,
    scale: f32,
    x: &'a [f32],
    y: &'o mut [f32],
    mask: &'o mut [u8],
}

impl Kernel for ForwardChunk<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn run<V: SimdF32>(self) {
        fill_mask(self.key, self.threshold, self.first, self.mask);
        apply_mask::<V>(self.x, self.mask, self.scale, self.y);
    }
}

/// One chunk of [`dropout_backward`], as a [`Kernel`].
struct BackwardChunk<'a, 'o> {
    scale: f32,
    dy: &'a [f32],
    mask: &'a [u8],
    dx: &'o mut [f32],
}

impl Kernel for BackwardChunk<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn run<V: SimdF32>(self) {
        apply_mask::<V>(self.dy, self.mask, self.scale, self.dx);
    }
}

/// Inverted dropout forward (training mode; in evaluation mode dropout is the identity and
/// needs no kernel), any shape flattened to `len` elements:
/// - `p`: drop probability in `[0, 1]`; `p = 0` keeps everything (`y = x`), `p = 1` drops
///   everything (`y = x·0`, as PyTorch);
/// - `seed`, `offset`: element `j` uses counter `offset + j` of the stream keyed by `seed`
///   ([`dropout_keep`]); pass a new `offset` (e.g. a running count of drawn elements) or
///   seed at every call so that masks differ between steps;
/// - `x` (len): read; `y` (len): **overwritten** with `x·mask·1/(1 - p)`;
/// - `mask` (len): **overwritten** with 1 (kept) or 0 (dropped), for [`dropout_backward`].
///
/// Errors: `p` outside `[0, 1]` or NaN, `y` or `mask` length not `x.len()`.
///
/// ```
/// use keel_kernels::norm::{dropout_forward, dropout_keep, dropout_scale};
/// # fn main() -> keel_kernels::Result<()> {
/// // x, y, mask: (8), p = 0.5: each unit is dropped (0) or kept and doubled.
/// let x = [1.0; 8];
/// let (mut y, mut mask) = ([0.0; 8], [0u8; 8]);
/// let (seed, offset) = (42, 100);
/// dropout_forward(0.5, seed, offset, &x, &mut y, &mut mask)?;
/// assert_eq!(dropout_scale(0.5), 2.0);
/// assert!(mask.contains(&0) && mask.contains(&1));
/// for j in 0..8 {
///     let kept = dropout_keep(0.5, seed, offset + j as u64);
///     assert_eq!(mask[j], kept as u8);
///     assert_eq!(y[j], if kept { 2.0 } else { 0.0 });
/// }
/// // The mask depends on (seed, offset + j) only: the second half alone gives the same.
/// let (mut y2, mut mask2) = ([0.0; 4], [0u8; 4]);
/// dropout_forward(0.5, seed, offset + 4, &x[4..], &mut y2, &mut mask2)?;
/// assert_eq!((&y2[..], &mask2[..]), (&y[4..], &mask[4..]));
/// # Ok(())
/// # }
/// ```
pub fn dropout_forward(
    p: f32,
    seed: u64,
    offset: u64,
    x: &[f32],
    y: &mut [f32],
    mask: &mut [u8],
) -> Result<()> {
    check_p(p)?;
    let len = x.len();
    check_len(|| format!("y (x len {len})"), len, y.len())?;
    check_len(|| format!("mask (x len {len})"), len, mask.len())?;
    let (key, threshold, scale, isa) = (mix64(seed), threshold(p), dropout_scale(p), current_isa());
    let run = |first: u64, x: &[f32], y: &mut [f32], mask: &mut [u8]| {
        dispatch(isa, ForwardChunk { key, threshold, first, scale, x, y, mask });
    };
    let chunk = chunk_len(len, MAX_LANES);
    if chunk >= len {
        run(offset, x, y, mask);
    } else {
        x.par_chunks(chunk)
            .zip(y.par_chunks_mut(chunk).zip(mask.par_chunks_mut(chunk)))
            .enumerate()
            .for_each(|(i, (x, (y, mask)))| run(offset.wrapping_add((i * chunk) as u64), x, y, mask));
    }
    Ok(())
}

/// Inverted dropout backward: `dx = dy·(mask ≠ 0)·1/(1 - p)` (0 where `p = 1`).
/// - `mask` (len): the forward's mask, read (non-zero = kept); `dy` (len): read;
/// - `dx` (len): **overwritten**.
///
/// Errors: `p` outside `[0, 1]` or NaN, `dy` or `dx` length not `mask.len()`.
///
/// ```
/// use keel_kernels::norm::dropout_backward;
/// # fn main() -> keel_kernels::Result<()> {
/// // mask (saved by the forward), dy, dx: (4), p = 0.75: kept units scale by 4.
/// let mut dx = [f32::NAN; 4]; // overwritten, never read
/// dropout_backward(0.75, &[1, 0, 0, 1], &[1.0, 2.0, 3.0, 0.5], &mut dx)?;
/// assert_eq!(dx, [4.0, 0.0, 0.0, 2.0]);
/// # Ok(())
/// # }
/// ```
pub fn dropout_backward(p: f32, mask: &[u8], dy: &[f32], dx: &mut [f32]) -> Result<()> {
    check_p(p)?;
    let len = mask.len();
    check_len(|| format!("dy (mask len {len})"), len, dy.len())?;
    check_len(|| format!("dx (mask len {len})"), len, dx.len())?;
    let (scale, isa) = (dropout_scale(p), current_isa());
    let run = |dy: &[f32], mask: &[u8], dx: &mut [f32]| dispatch(isa, BackwardChunk { scale, dy, mask, dx });
    let chunk = chunk_len(len, MAX_LANES);
    if chunk >= len {
        run(dy, mask, dx);
    } else {
        dy.par_chunks(chunk)
            .zip(mask.par_chunks(chunk).zip(dx.par_chunks_mut(chunk)))
            .for_each(|(dy, (mask, dx))| run(dy, mask, dx));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The draws are SplitMix64's: seeded with 0, its published first outputs; and a mask
    /// decision follows from the halves of a draw as documented (seed 42: draw 0 is
    /// 0x989b3f13_0a063869, computed independently).
    #[test]
    fn draws_are_splitmix64_and_decide_by_their_halves() {
        assert_eq!(draw(0, 0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(draw(0, 1), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(draw(0, 2), 0x06C4_5D18_8009_454F);
        assert_eq!(draw(mix64(42), 0), 0x989B_3F13_0A06_3869);
        // p = 0.5: kept when the 32 bits are >= 2³¹.
        assert!(dropout_keep(0.5, 42, 0), "high half 0x989b3f13");
        assert!(!dropout_keep(0.5, 42, 1), "low half 0x0a063869");
        assert_eq!(threshold(0.5), 1 << 31);
        assert_eq!(threshold(1.0), 1 << 32);
    }
}
