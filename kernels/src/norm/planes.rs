//! The plumbing the batch-norm kernels share: per-channel f64 sums over `(n, c, spatial)`
//! tensors and element-wise passes over their `(i, k)` planes (or rows), both written once
//! for every [`SimdF32`] and run on the instruction set of [`current_isa`].
//!
//! Sums: channel `k` holds the `m = n·spatial` values `x[i][k][s]`; planes `i = 0..n` are
//! visited in turn, element `s` of a plane's whole vectors goes into f64 lane
//! `s mod 2·LANES` (two vectors' worth of accumulators, so that two add chains run side by
//! side; an odd last vector goes to the first) and the `spatial mod LANES` tail elements into
//! a separate f64 scalar; at the end the lanes are added in a fixed order, then the tail. The
//! order depends on the vector width only: the same bits on any number of threads, for a
//! given instruction set.
//!
//! Passes: chunks of whole planes, in parallel above the threshold; each plane runs one
//! [`serial_pass`] (the zero-padded tail through the same body).

use core::marker::PhantomData;

use rayon::prelude::*;

use crate::isa::current_isa;
use crate::isa::Isa;
use crate::parallel::{chunk_len, MIN_PARALLEL_ELEMENTS};
use crate::simd::{dispatch, serial_pass, Kernel, Pass, SimdF32, SimdF64};

/// The `R` terms a channel sum adds per element pair `(a, b)` of two tensors, on f64
/// vectors of any width (`F = f64` for tail elements). Every term must be the same
/// expression whatever `F` is, so that tails and vectors agree.
pub(super) trait Terms<const R: usize>: Sync {
    /// The terms of lanes `a`, `b`.
    fn terms<F: SimdF64>(&self, a: F, b: F) -> [F; R];
}

/// `Σ a`.
pub(super) struct Sum;

impl Terms<1> for Sum {
    #[inline(always)]
    fn terms<F: SimdF64>(&self, a: F, _: F) -> [F; 1] {
        [a]
    }
}

/// `Σ (a - mean)²`, the variance's second pass.
pub(super) struct Squares(pub(super) f64);

impl Terms<1> for Squares {
    #[inline(always)]
    fn terms<F: SimdF64>(&self, a: F, _: F) -> [F; 1] {
        let d = a - F::splat(self.0);
        [d * d]
    }
}

/// `Σ dy` and `Σ dy·(x - mean)` from `(a, b) = (dy, x)`: the backward passes' sums.
pub(super) struct GradSums(pub(super) f64);

impl Terms<2> for GradSums {
    #[inline(always)]
    fn terms<F: SimdF64>(&self, dy: F, x: F) -> [F; 2] {
        [dy, dy * (x - F::splat(self.0))]
    }
}

/// One channel's `R` sums, as a [`Kernel`].
struct ChannelSums<'t, 'a, T, const R: usize> {
    terms: &'t T,
    sums: PhantomData<[f64; R]>,
    c: usize,
    spatial: usize,
    k: usize,
    a: &'a [f32],
    b: &'a [f32],
}

impl<T: Terms<R>, const R: usize> Kernel for ChannelSums<'_, '_, T, R> {
    type Output = [f64; R];
    #[inline(always)]
    fn run<V: SimdF32>(self) -> [f64; R] {
        let Self { terms, c, spatial, k, a, b, .. } = self;
        // Per term, four f64 accumulators: the two halves of an even vector, then of an odd
        // one (two independent add chains per half).
        let mut lanes = [[<V::F64 as SimdF64>::splat(0.0); 4]; R];
        let mut tail = [0.0f64; R];
        if spatial == 1 {
            // Every element is a tail element: the order below, without slicing planes of one.
            for j in (k..a.len()).step_by(c) {
                add_scalar(terms, &mut tail, a[j], b[j]);
            }
        } else {
            let step = 2 * V::LANES;
            let body = spatial - spatial % V::LANES;
            let pairs = body - body % step;
            for start in (k * spatial..a.len()).step_by(c * spatial) {
                let (pa, pb) = (&a[start..start + spatial], &b[start..start + spatial]);
                for at in (0..pairs).step_by(step) {
                    add_vector::<V, T, R>(terms, &mut lanes, 0, &pa[at..], &pb[at..]);
                    add_vector::<V, T, R>(terms, &mut lanes, 2, &pa[at + V::LANES..], &pb[at + V::LANES..]);
                }
                if pairs < body {
                    add_vector::<V, T, R>(terms, &mut lanes, 0, &pa[pairs..], &pb[pairs..]);
                }
                for j in body..spatial {
                    add_scalar(terms, &mut tail, pa[j], pb[j]);
                }
            }
        }
        // Plain loops, no closures: a closure would be compiled without the instruction set
        // of the dispatched body and could not inline its intrinsics.
        let mut sums = [0.0f64; R];
        for q in 0..R {
            let [even_low, even_high, odd_low, odd_high] = lanes[q];
            let even = even_low.reduce_add() + even_high.reduce_add();
            let odd = odd_low.reduce_add() + odd_high.reduce_add();
            sums[q] = (even + odd) + tail[q];
        }
        sums
    }
}

/// Adds the terms of one vector of `a` and `b` (the first `V::LANES` values of each) to the
/// accumulators `first` (low half) and `first + 1` (high half) of every term.
#[inline(always)]
fn add_vector<V: SimdF32, T: Terms<R>, const R: usize>(
    terms: &T,
    lanes: &mut [[V::F64; 4]; R],
    first: usize,
    a: &[f32],
    b: &[f32],
) {
    let (wa, wb) = (V::load(a).widen(), V::load(b).widen());
    for half in 0..2 {
        let t = terms.terms(wa[half], wb[half]);
        for q in 0..R {
            lanes[q][first + half] = lanes[q][first + half] + t[q];
        }
    }
}

/// Adds the terms of one element pair to the scalar tail sums.
#[inline(always)]
fn add_scalar<T: Terms<R>, const R: usize>(terms: &T, tail: &mut [f64; R], a: f32, b: f32) {
    let t = terms.terms(f64::from(a), f64::from(b));
    for q in 0..R {
        tail[q] += t[q];
    }
}

/// The sums `Σ terms(a, b)` over channel `k` of the `(n, c, spatial)` tensors `a` and `b`
/// (pass the same tensor twice for one-tensor sums), on instruction set `isa`.
pub(super) fn channel_sums<T: Terms<R>, const R: usize>(
    isa: Isa,
    (c, spatial, k): (usize, usize, usize),
    a: &[f32],
    b: &[f32],
    terms: &T,
) -> [f64; R] {
    dispatch(isa, ChannelSums { terms, sums: PhantomData, c, spatial, k, a, b })
}

/// Runs `f(channel, item)` for every channel, in parallel when the tensor (`total`
/// elements) is big enough.
pub(super) fn for_each_channel<T: Send>(
    total: usize,
    items: impl IndexedParallelIterator<Item = T>,
    f: impl Fn(usize, T) + Sync + Send,
) {
    if total >= MIN_PARALLEL_ELEMENTS {
        items.enumerate().for_each(|(k, item)| f(k, item));
    } else {
        // A minimum piece length of usize::MAX never splits: rayon then folds the items in
        // order on the calling thread, without entering the pool.
        items.with_min_len(usize::MAX).enumerate().for_each(|(k, item)| f(k, item));
    }
}

/// The vectors at `at` of every input of a pass, in a plain loop (array `map` takes a
/// closure, which would be compiled without the instruction set of the dispatched body).
#[inline(always)]
pub(super) fn loads<V: SimdF32, const I: usize>(inputs: &[&[f32]; I], at: usize) -> [V; I] {
    let mut vectors = [V::splat(0.0); I];
    for k in 0..I {
        vectors[k] = V::load(&inputs[k][at..]);
    }
    vectors
}

/// The element-wise work on one plane of `T` input tensors and one output tensor.
pub(super) trait PlaneBody<const T: usize>: Sync {
    /// Writes plane `plane` (the `plane`-th run of `plane_len` elements, see
    /// [`for_each_plane`]) of the output from the same plane of the inputs.
    fn plane<V: SimdF32>(&self, plane: usize, out: &mut [f32], inputs: [&[f32]; T]);
}

/// [`PlaneBody`] of `(n, c, spatial)` planes that runs `pass_of(k)`, the pass with channel
/// `k = plane mod c`'s coefficients, over each.
pub(super) struct ChannelPlanes<F> {
    pub(super) c: usize,
    pub(super) pass_of: F,
}

impl<F, P, const T: usize> PlaneBody<T> for ChannelPlanes<F>
where
    F: Fn(usize) -> P + Sync,
    P: Pass<T, 1>,
{
    #[inline(always)]
    fn plane<V: SimdF32>(&self, plane: usize, out: &mut [f32], inputs: [&[f32]; T]) {
        serial_pass::<V, P, T, 1>(&(self.pass_of)(plane % self.c), inputs, [out]);
    }
}

/// A chunk of whole planes, as a [`Kernel`].
struct PlaneChunk<'p, 'o, 'a, B, const T: usize> {
    body: &'p B,
    plane_len: usize,
    first_plane: usize,
    out: &'o mut [f32],
    inputs: [&'a [f32]; T],
}

impl<B: PlaneBody<T>, const T: usize> Kernel for PlaneChunk<'_, '_, '_, B, T> {
    type Output = ();
    #[inline(always)]
    fn run<V: SimdF32>(self) {
        for (q, out) in self.out.chunks_mut(self.plane_len).enumerate() {
            let at = q * self.plane_len;
            let inputs = self.inputs.map(|s| &s[at..at + out.len()]);
            self.body.plane::<V>(self.first_plane + q, out, inputs);
        }
    }
}

/// Runs `body` over the consecutive planes of `plane_len` elements of `out` and of the
/// `inputs` (all as long as `out`): `(i, k)` planes of `spatial` elements, or whole rows of
/// `c` elements when `spatial = 1`. Groups of whole planes run in parallel above the
/// threshold, each on the instruction set of [`current_isa`] (taken on the calling thread).
pub(super) fn for_each_plane<B: PlaneBody<T>, const T: usize>(
    plane_len: usize,
    out: &mut [f32],
    inputs: [&[f32]; T],
    body: &B,
) {
    let isa = current_isa();
    let total = out.len();
    // A multiple of `plane_len` (or everything), so chunks hold whole planes.
    let chunk = chunk_len(total, plane_len);
    if chunk >= total {
        dispatch(isa, PlaneChunk { body, plane_len, first_plane: 0, out, inputs });
    } else {
        out.par_chunks_mut(chunk).enumerate().for_each(|(i, out)| {
            let at = i * chunk;
            let inputs = inputs.map(|s| &s[at..at + out.len()]);
            dispatch(isa, PlaneChunk { body, plane_len, first_plane: at / plane_len, out, inputs });
        });
    }
}
