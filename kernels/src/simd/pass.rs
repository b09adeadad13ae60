//! The one driver of the element-wise passes: [`run_pass`] applies a [`Pass`] (a body
//! generic over the vector type) to every element of a set of equal-length slices, in
//! parallel chunks, on the instruction set its caller resolved; plus the
//! [`Map1`] / [`Map2`] shorthands of the activations.

use crate::isa::Isa;
use crate::parallel::chunk_len;

use super::{dispatch, Kernel, SimdF32, MAX_LANES};

/// One element-wise step on `V::LANES` elements: reads `inputs`, reads and/or writes
/// `outputs` (a body that only writes an output never uses its old value, so NaN in it does
/// not leak). A slice may be empty (a state the configuration does not use): the body must
/// not touch it.
pub(crate) trait Pass<const I: usize, const O: usize>: Sync {
    /// Processes the `V::LANES` elements from `at` of every slice the body uses.
    fn apply<V: SimdF32>(&self, at: usize, inputs: &[&[f32]; I], outputs: &mut [&mut [f32]; O]);
}

/// The length of the pass: that of its longest slice (the others are as long, or empty).
fn pass_len<const I: usize, const O: usize>(inputs: &[&[f32]; I], outputs: &[&mut [f32]; O]) -> usize {
    let len = inputs.iter().map(|s| s.len()).chain(outputs.iter().map(|s| s.len())).max().unwrap_or(0);
    debug_assert!(inputs.iter().all(|s| s.is_empty() || s.len() == len));
    debug_assert!(outputs.iter().all(|s| s.is_empty() || s.len() == len));
    len
}

/// Runs `pass` over one chunk with vectors `V`: whole vectors, then the tail (fewer than
/// `V::LANES` elements) through the same body on zero-padded copies, of which only the real
/// lanes are copied back. Also the driver of passes that a kernel runs itself, inside its
/// own [`Kernel`] (e.g. one pass per batch-norm plane with that plane's coefficients).
#[inline(always)]
pub(crate) fn serial_pass<V: SimdF32, P: Pass<I, O>, const I: usize, const O: usize>(
    pass: &P,
    inputs: [&[f32]; I],
    mut outputs: [&mut [f32]; O],
) {
    let len = pass_len(&inputs, &outputs);
    let body = len - len % V::LANES;
    for at in (0..body).step_by(V::LANES) {
        pass.apply::<V>(at, &inputs, &mut outputs);
    }
    let tail = len - body;
    if tail == 0 {
        return;
    }
    let mut input_pads = [[0.0f32; MAX_LANES]; I];
    for (pad, s) in input_pads.iter_mut().zip(&inputs) {
        if !s.is_empty() {
            pad[..tail].copy_from_slice(&s[body..]);
        }
    }
    let mut output_pads = [[0.0f32; MAX_LANES]; O];
    for (pad, s) in output_pads.iter_mut().zip(&outputs) {
        if !s.is_empty() {
            pad[..tail].copy_from_slice(&s[body..]);
        }
    }
    let padded_inputs: [&[f32]; I] =
        core::array::from_fn(|k| if inputs[k].is_empty() { &[][..] } else { &input_pads[k][..] });
    let mut pads = output_pads.iter_mut();
    let mut padded_outputs: [&mut [f32]; O] = core::array::from_fn(|k| {
        let pad = pads.next().expect("one pad per output");
        if outputs[k].is_empty() {
            &mut [][..]
        } else {
            &mut pad[..]
        }
    });
    pass.apply::<V>(0, &padded_inputs, &mut padded_outputs);
    for (s, pad) in outputs.iter_mut().zip(&padded_outputs) {
        if !s.is_empty() {
            s[body..].copy_from_slice(&pad[..tail]);
        }
    }
}

/// One chunk of a pass, as a [`Kernel`] for [`dispatch`].
struct Chunk<'p, 'a, 'b, P, const I: usize, const O: usize> {
    pass: &'p P,
    inputs: [&'a [f32]; I],
    outputs: [&'b mut [f32]; O],
}

impl<P: Pass<I, O>, const I: usize, const O: usize> Kernel for Chunk<'_, '_, '_, P, I, O> {
    type Output = ();
    #[inline(always)]
    fn run<V: SimdF32>(self) {
        serial_pass::<V, P, I, O>(self.pass, self.inputs, self.outputs);
    }
}

/// Splits every non-empty slice at `mid` (an empty slice stays empty on both sides).
#[allow(clippy::type_complexity)]
fn split<'a, 'b, const I: usize, const O: usize>(
    inputs: [&'a [f32]; I],
    outputs: [&'b mut [f32]; O],
    mid: usize,
) -> (([&'a [f32]; I], [&'b mut [f32]; O]), ([&'a [f32]; I], [&'b mut [f32]; O])) {
    let in_lo = inputs.map(|s| &s[..mid.min(s.len())]);
    let in_hi = inputs.map(|s| &s[mid.min(s.len())..]);
    let mut out_lo: [&'b mut [f32]; O] = core::array::from_fn(|_| <&mut [f32]>::default());
    let mut out_hi: [&'b mut [f32]; O] = core::array::from_fn(|_| <&mut [f32]>::default());
    for ((s, lo), hi) in outputs.into_iter().zip(&mut out_lo).zip(&mut out_hi) {
        let (a, b) = s.split_at_mut(mid.min(s.len()));
        *lo = a;
        *hi = b;
    }
    ((in_lo, out_lo), (in_hi, out_hi))
}

/// Splits the pass in halves at chunk boundaries down to single chunks of `chunk` elements
/// (a multiple of [`MAX_LANES`]; the last may be shorter), run in parallel.
fn split_recursive<P: Pass<I, O>, const I: usize, const O: usize>(
    isa: Isa,
    pass: &P,
    chunk: usize,
    len: usize,
    inputs: [&[f32]; I],
    outputs: [&mut [f32]; O],
) {
    if len <= chunk {
        return dispatch(isa, Chunk { pass, inputs, outputs });
    }
    let mid = len.div_ceil(chunk).div_ceil(2) * chunk;
    let ((in_lo, out_lo), (in_hi, out_hi)) = split(inputs, outputs, mid);
    rayon::join(
        || split_recursive(isa, pass, chunk, mid, in_lo, out_lo),
        || split_recursive(isa, pass, chunk, len - mid, in_hi, out_hi),
    );
}

/// Applies `pass` to every element of `inputs` and `outputs` (each of one common length, or
/// empty) on the instruction set `isa` (which the CPU must have), in parallel chunks
/// of [`chunk_len`] above the threshold. Chunk boundaries are multiples of [`MAX_LANES`]
/// and the tail goes through the same body, so the result does not depend on the split.
pub(crate) fn run_pass<P: Pass<I, O>, const I: usize, const O: usize>(
    isa: Isa,
    pass: &P,
    inputs: [&[f32]; I],
    outputs: [&mut [f32]; O],
) {
    let len = pass_len(&inputs, &outputs);
    if len == 0 {
        return;
    }
    split_recursive(isa, pass, chunk_len(len, MAX_LANES), len, inputs, outputs);
}

/// A one-operand element-wise function, `y = f(x)`.
pub(crate) trait Map1: Sync {
    /// `f` on one vector.
    fn map<V: SimdF32>(&self, x: V) -> V;
}

/// A two-operand element-wise function, `out = f(a, b)`.
pub(crate) trait Map2: Sync {
    /// `f` on one vector of each operand.
    fn map<V: SimdF32>(&self, a: V, b: V) -> V;
}

/// `y = f(x)` as a pass.
struct Unary<'a, F>(&'a F);

impl<F: Map1> Pass<1, 1> for Unary<'_, F> {
    #[inline(always)]
    fn apply<V: SimdF32>(&self, at: usize, inputs: &[&[f32]; 1], outputs: &mut [&mut [f32]; 1]) {
        self.0.map(V::load(&inputs[0][at..])).store(&mut outputs[0][at..]);
    }
}

/// `x = f(x)` as a pass.
struct InPlace<'a, F>(&'a F);

impl<F: Map1> Pass<0, 1> for InPlace<'_, F> {
    #[inline(always)]
    fn apply<V: SimdF32>(&self, at: usize, _: &[&[f32]; 0], outputs: &mut [&mut [f32]; 1]) {
        self.0.map(V::load(&outputs[0][at..])).store(&mut outputs[0][at..]);
    }
}

/// `out = f(a, b)` as a pass.
struct Binary<'a, F>(&'a F);

impl<F: Map2> Pass<2, 1> for Binary<'_, F> {
    #[inline(always)]
    fn apply<V: SimdF32>(&self, at: usize, inputs: &[&[f32]; 2], outputs: &mut [&mut [f32]; 1]) {
        let (a, b) = (V::load(&inputs[0][at..]), V::load(&inputs[1][at..]));
        self.0.map(a, b).store(&mut outputs[0][at..]);
    }
}

/// `y[i] = f(x[i])`; `x` and `y` of the same length (checked by the caller), `y` not read.
pub(crate) fn map_unary(isa: Isa, x: &[f32], y: &mut [f32], f: &impl Map1) {
    debug_assert_eq!(x.len(), y.len());
    run_pass(isa, &Unary(f), [x], [y]);
}

/// `x[i] = f(x[i])` in place.
pub(crate) fn map_inplace(isa: Isa, x: &mut [f32], f: &impl Map1) {
    run_pass(isa, &InPlace(f), [], [x]);
}

/// `out[i] = f(a[i], b[i])`; the three of the same length (checked by the caller), `out`
/// not read.
pub(crate) fn map_binary(isa: Isa, a: &[f32], b: &[f32], out: &mut [f32], f: &impl Map2) {
    debug_assert!(a.len() == out.len() && b.len() == out.len());
    run_pass(isa, &Binary(f), [a, b], [out]);
}

/// `y = f(y, x)` in place as a pass (an accumulation).
struct Accumulating<'a, F>(&'a F);

impl<F: Map2> Pass<1, 1> for Accumulating<'_, F> {
    #[inline(always)]
    fn apply<V: SimdF32>(&self, at: usize, inputs: &[&[f32]; 1], outputs: &mut [&mut [f32]; 1]) {
        let (y, x) = (V::load(&outputs[0][at..]), V::load(&inputs[0][at..]));
        self.0.map(y, x).store(&mut outputs[0][at..]);
    }
}

/// `y[i] = f(y[i], x[i])`; `x` and `y` of the same length (checked by the caller).
pub(crate) fn map_accumulate(isa: Isa, x: &[f32], y: &mut [f32], f: &impl Map2) {
    debug_assert_eq!(x.len(), y.len());
    run_pass(isa, &Accumulating(f), [x], [y]);
}

/// `x·c`: gradient scaling, clipping by norm, the `1/batch` of the loss gradients.
pub(crate) struct Scale(pub(crate) f32);

impl Map1 for Scale {
    #[inline(always)]
    fn map<V: SimdF32>(&self, x: V) -> V {
        x * V::splat(self.0)
    }
}
