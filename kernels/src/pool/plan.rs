//! Which code computes a pooling pass: the path plan, as data.

use super::path::PoolPath;
use super::tiled::Tiles;
use super::Pool2dShape;
use crate::isa::Isa;

/// One pass of max or average pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolPass {
    /// [`maxpool2d_forward`](super::maxpool2d_forward).
    MaxForward,
    /// [`maxpool2d_backward`](super::maxpool2d_backward).
    MaxBackward,
    /// [`avgpool2d_forward`](super::avgpool2d_forward).
    AvgForward,
    /// [`avgpool2d_backward`](super::avgpool2d_backward).
    AvgBackward,
}

impl PoolPass {
    /// The four passes.
    pub const ALL: [PoolPass; 4] =
        [PoolPass::MaxForward, PoolPass::MaxBackward, PoolPass::AvgForward, PoolPass::AvgBackward];
}

/// The path `pass` of a pool of `shape` takes on `isa`. Max pool backward on a tiled path
/// falls back to the scatter of [`PoolPath::Windows`] for a mask with an index outside its
/// window (the result is the same; only the speed differs).
///
/// ```
/// use keel_kernels::isa::Isa;
/// use keel_kernels::pool::{plan, Pool2dShape, PoolPass, PoolPath};
///
/// // LeNet's 2x2 pool on 28x28 planes: tiled on every instruction set.
/// let shape = Pool2dShape::square(64, 6, 28, 28, 2, 2, 0);
/// assert_eq!(plan(&shape, PoolPass::MaxForward, Isa::Portable), PoolPath::TiledPortable);
/// ```
pub fn plan(shape: &Pool2dShape, pass: PoolPass, isa: Isa) -> PoolPath {
    let Some(tiles) = Tiles::new(shape) else {
        return PoolPath::Windows;
    };
    match (isa, tiles.k()) {
        (Isa::Avx512, 2) => PoolPath::TiledAvx512,
        (Isa::Avx2, 2) => PoolPath::TiledAvx2,
        _ if pass == PoolPass::MaxBackward => PoolPath::Windows,
        _ => PoolPath::TiledPortable,
    }
}
