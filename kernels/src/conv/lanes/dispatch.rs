//! The images-in-lanes passes on the instruction set of the call: one `#[target_feature]`
//! function per pass and instruction set, into which the generic code of `layout.rs` and
//! `kernels.rs` is inlined for that set's vector, and the `match` that picks it.

use super::kernels::{self, Sizes};
use super::layout::{self, Images, Plane};
#[cfg(target_arch = "x86_64")]
use crate::conv::vector::{ConvVector, Ymm, Zmm};
use crate::gemm::Activation;
use crate::isa::Isa;

/// Images per lane group on `isa` (its vector's lanes), or 0 where the path does not exist.
pub(super) fn lanes(isa: Isa) -> usize {
    #[cfg(target_arch = "x86_64")]
    match isa {
        Isa::Avx512 => Zmm::LANES,
        Isa::Avx2 => Ymm::LANES,
        Isa::Portable => 0,
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = isa;
        0
    }
}

/// `pub(super) unsafe fn $name(isa, args)`: the generic `$generic::<V>(args)` on the vector of
/// `isa`, inside a `#[target_feature]` function of that instruction set.
macro_rules! on_vector {
    ($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*) => $($generic:ident)::+) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// The CPU has `isa`, and `isa` has a vector here ([`lanes`] is not 0).
        pub(super) unsafe fn $name(isa: Isa, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) {
                    // SAFETY: the CPU has AVX-512F (this function's feature).
                    unsafe { $($generic)::+::<Zmm>($($arg),*) }
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    // SAFETY: the CPU has AVX2 and FMA (this function's features).
                    unsafe { $($generic)::+::<Ymm>($($arg),*) }
                }
                match isa {
                    // SAFETY: the CPU has `isa` (this function's contract).
                    Isa::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    Isa::Avx2 => return unsafe { avx2($($arg),*) },
                    Isa::Portable => {}
                }
            }
            $(let _ = $arg;)*
            unreachable!("images in lanes on {isa:?}, which has no vector for them")
        }
    };
}

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
