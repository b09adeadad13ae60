//! The convolution work of `benches/conv.rs` and `examples/peer_timings.rs` (each includes
//! this file by path, beside `gemm_shapes.rs`, whose operand fill it uses): the shapes of
//! `PEERS.md` and keel's forward and training-step calls on one set of buffers.
#![allow(dead_code)] // the example runs keel's paths only, the bench the references too

use std::hint::black_box;

use keel::kernels::conv::{
    conv2d_backward_data, conv2d_backward_weight, conv2d_forward, reference, Conv2dShape,
};

use super::direct_loops;
use super::gemm_shapes::filled;

/// The convolutions of `PEERS.md`, by letter: A = b64 1x28x28→6 5x5 p2 (LeNet-5's first
/// layer), B = b64 6x14x14→16 5x5 (its second), C = b32 64x32x32→64 3x3 p1 (a VGG/ResNet
/// block), D = b8 128x56x56→128 3x3 p1 (a ResNet stage-2 block).
pub fn peer_conv_shapes() -> [(char, Conv2dShape); 4] {
    [
        ('A', Conv2dShape::new(64, 1, 28, 28, 6, 5, 5).with_pad(2)),
        ('B', Conv2dShape::new(64, 6, 14, 14, 16, 5, 5)),
        ('C', Conv2dShape::new(32, 64, 32, 32, 64, 3, 3).with_pad(1)),
        ('D', Conv2dShape::new(8, 128, 56, 56, 128, 3, 3).with_pad(1)),
    ]
}

/// Inputs, parameters and gradient buffers of one shape.
pub struct Buffers {
    pub x: Vec<f32>,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub y: Vec<f32>,
    pub dy: Vec<f32>,
    pub dx: Vec<f32>,
    pub dweight: Vec<f32>,
    pub dbias: Vec<f32>,
}

impl Buffers {
    pub fn new(s: &Conv2dShape) -> Self {
        Self {
            x: filled(s.x_len(), 1),
            weight: filled(s.weight_len(), 2),
            bias: filled(s.c_out, 3),
            y: vec![0.0; s.y_len()],
            dy: filled(s.y_len(), 4),
            dx: vec![0.0; s.x_len()],
            dweight: vec![0.0; s.weight_len()],
            dbias: vec![0.0; s.c_out],
        }
    }

    /// keel's forward pass, bias included.
    pub fn keel_forward(&mut self, s: &Conv2dShape, workspace: &mut [f32]) {
        conv2d_forward(s, black_box(&self.x), &self.weight, Some(&self.bias), &mut self.y, workspace)
            .unwrap();
    }

    /// keel's training step of the layer: forward, then the gradients dX, dW and db.
    pub fn keel_step(&mut self, s: &Conv2dShape, workspace: &mut [f32]) {
        self.keel_forward(s, workspace);
        conv2d_backward_data(s, black_box(&self.dy), &self.weight, &mut self.dx, workspace).unwrap();
        conv2d_backward_weight(s, &self.x, &self.dy, &mut self.dweight, Some(&mut self.dbias), workspace)
            .unwrap();
    }

    pub fn reference_forward(&mut self, s: &Conv2dShape) {
        reference::conv2d_forward(s, black_box(&self.x), &self.weight, Some(&self.bias), &mut self.y)
            .unwrap();
    }

    /// The plain f32 loops' forward (`direct_loops.rs`), bias included.
    pub fn loops_forward(&mut self, s: &Conv2dShape) {
        direct_loops::forward(s, black_box(&self.x), &self.weight, &self.bias, &mut self.y);
    }

    /// The plain f32 loops' training step: forward, dX, dW and db.
    pub fn loops_step(&mut self, s: &Conv2dShape) {
        self.loops_forward(s);
        direct_loops::backward_data(s, black_box(&self.dy), &self.weight, &mut self.dx);
        direct_loops::backward_weight(s, &self.x, &self.dy, &mut self.dweight, &mut self.dbias);
    }

    /// Runs the plain loops' step and the reference's and panics unless every output agrees
    /// within `1e-4·(1 + |reference|)` (f32 sums of at most a few thousand terms of order 1),
    /// so that the baseline a table quotes computes the convolution.
    pub fn check_loops_against_reference(&mut self, s: &Conv2dShape) {
        self.dweight.fill(0.0);
        self.dbias.fill(0.0);
        self.loops_step(s);
        let loops = [self.y.clone(), self.dx.clone(), self.dweight.clone(), self.dbias.clone()];
        self.dweight.fill(0.0);
        self.dbias.fill(0.0);
        self.reference_step(s);
        let reference = [&self.y, &self.dx, &self.dweight, &self.dbias];
        for (name, (got, want)) in ["y", "dx", "dweight", "dbias"].iter().zip(loops.iter().zip(reference)) {
            for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                    "direct loops' {name}[{i}] = {g}, reference {w}"
                );
            }
        }
    }

    pub fn reference_step(&mut self, s: &Conv2dShape) {
        self.reference_forward(s);
        reference::conv2d_backward_data(s, black_box(&self.dy), &self.weight, &mut self.dx).unwrap();
        reference::conv2d_backward_weight(s, &self.x, &self.dy, &mut self.dweight, Some(&mut self.dbias))
            .unwrap();
    }
}
