//! The Winograd path's vector code on the instruction set of the call: one
//! `#[target_feature]` function per step and instruction set (plain code on the portable one),
//! into which the generic code of `layout.rs` and `tiles.rs` is inlined for that set's vector.

use super::layout::{self, Geometry};
use super::tiles;
use crate::conv::vector::{on_vector, Lanes8};
#[cfg(target_arch = "x86_64")]
use crate::conv::vector::{Ymm, Zmm};
use crate::gemm::Activation;
use crate::isa::Isa;

on_vector!(
    /// [`layout::to_blocks`] on `isa`'s vector.
    to_blocks(
        src: &[f32],
        channels: usize,
        plane: (usize, usize),
        corner: (usize, usize),
        padded: (usize, usize),
        dst: &mut [f32]
    ) => layout::to_blocks; portable: Lanes8
);

on_vector!(
    /// [`tiles::input_tiles`] on `isa`'s vector.
    input_tiles(g: &Geometry, input: &[f32], rows: (usize, usize), first_tile: usize, points: &mut [f32])
        => tiles::input_tiles; portable: Lanes8
);

on_vector!(
    /// [`tiles::output_row`] on `isa`'s vector.
    output_row(
        g: &Geometry,
        points: &[f32],
        at: (usize, usize),
        epilogue: (&[f32], Activation),
        out_rows: &mut [f32],
        y: &mut [f32]
    ) => tiles::output_row; portable: Lanes8
);

on_vector!(
    /// [`tiles::gradient_tiles`] on `isa`'s vector.
    gradient_tiles(g: &Geometry, gradient: &[f32], rows: (usize, usize), first_tile: usize, points: &mut [f32])
        => tiles::gradient_tiles; portable: Lanes8
);

on_vector!(
    /// [`tiles::filter_tiles`] on `isa`'s vector.
    filter_tiles(g: &Geometry, weight: &[f32], flipped: bool, packed: &mut [f32]) => tiles::filter_tiles; portable: Lanes8
);

on_vector!(
    /// [`tiles::add_filter_gradients`] on `isa`'s vector.
    add_filter_gradients(g: &Geometry, du: &[f32], dweight: &mut [f32]) => tiles::add_filter_gradients; portable: Lanes8
);
