//! The images-in-lanes passes on the instruction set of the call: one `#[target_feature]`
//! function per pass and instruction set, into which the generic code of `layout.rs` and
//! `kernels.rs` is inlined for that set's vector, and the `match` that picks it.

use super::kernels::{self, Sizes};
use super::layout::{self, Images, Plane};
use crate::conv::vector::on_vector;
#[cfg(target_arch = "x86_64")]
use crate::conv::vector::{Ymm, Zmm};
use crate::gemm::Activation;
use crate::isa::Isa;

on_vector!(
    /// [`layout::interleave`] on `isa`'s vector.
    interleave(src: &[f32], images: Images, plane: &Plane, dst: &mut [f32]) => layout::interleave
);

on_vector!(
    /// [`layout::deinterleave`] on `isa`'s vector.
    deinterleave(src: &[f32], plane: &Plane, images: Images, dst: &mut [f32]) => layout::deinterleave
);

on_vector!(
    /// [`kernels::correlate`] on `isa`'s vector.
    correlate(
        g: &Sizes,
        activation: Activation,
        inp: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
        out: &mut [f32]
    ) => kernels::correlate
);

on_vector!(
    /// [`kernels::weight_gradient`] on `isa`'s vector.
    weight_gradient(g: &Sizes, groups: &[f32], dweight: &mut [f32]) => kernels::weight_gradient
);
