//! The GEMM shapes and operand fill shared by `benches/gemm.rs`, `examples/gemm_interleaved.rs`
//! and `examples/peer_timings.rs` (each includes this file by path); `benches/conv.rs` takes
//! the fill (through `conv_work.rs`).
#![allow(dead_code)] // the conv bench uses the fill only

/// Square sizes, the network shapes of PEERS.md, and two dense layers on a batch of one
/// (matrix-vector products): (m, n, k).
pub const SHAPES: &[(usize, usize, usize)] = &[
    (64, 64, 64),
    (256, 256, 256),
    (512, 512, 512),
    (1024, 1024, 1024),
    (2048, 2048, 2048),
    (64, 128, 784),
    (128, 64, 128),
    (256, 10, 64),
    (16, 6400, 150),
    (64, 32768, 576),
    (128, 25088, 1152),
    (1, 1024, 256),
    (1, 4096, 1024),
];

/// `len` floats in [-0.5, 0.5), a cheap deterministic fill with both signs (a product must
/// not run on zeros), different for each `seed`.
pub fn filled(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / (1 << 24) as f32 - 0.5
        })
        .collect()
}
