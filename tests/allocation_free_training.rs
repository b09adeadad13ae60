//! A steady-state training step allocates nothing on the heap: after five warm-up steps
//! (which size every buffer: layer outputs and gradients, workspaces, optimizer state, the
//! GEMM's shared packing buffers, one per pool thread), further steps of LeNet-5, of the
//! small ResNet and Inception networks (branches merged by a sum and by a concatenation), of an
//! MLP, of a stack of recurrent layers and of recurrent layers with a many-to-one head
//! (`LastStep`, `MeanOverTime`), on a 2-thread pool, make no allocation at all; nor do forward
//! and backward of the attentions under a mask, nor do warm epochs of augmented mini-batches
//! (shift, rotation, elastic distortion). Counted by a global allocator over every
//! thread, so this file holds a single test (nothing else runs in its process meanwhile).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use keel::kernels::optim::AdamConfig;
use keel::layers::models::{inception, resnet, InceptionConfig, ResNetConfig};
use keel::layers::{
    lenet5, zero_grad, Activation, ActivationKind, Adam, AdditiveAttention, AttentionMask, Augment, Batches,
    Dataset, Dense, Elastic, Flatten, Gru, Init, LastStep, Layer, Loss, Lstm, MeanOverTime, Mode, Optimizer,
    RecurrentConfig, Rnn, RnnConfig, ScaledDotProductAttention, Sequential, SoftmaxCrossEntropy, Tensor,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// The system allocator, counting allocations and reallocations on every thread.
struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`, so the `GlobalAlloc` contract holds
// as it does for `System`; the counter has no effect on memory.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's `layout` obligations are passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn batch(shape: &[usize]) -> (Tensor, Vec<u32>) {
    let len: usize = shape.iter().product();
    let values = (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 8) as f32 / (1u32 << 23) as f32 - 1.0)
        .collect();
    (Tensor::from_vec(shape, values).unwrap(), (0..shape[0] as u32).map(|i| i % 10).collect())
}

fn step(model: &mut Sequential, adam: &mut Adam, loss: &mut SoftmaxCrossEntropy, x: &Tensor, labels: &[u32]) {
    zero_grad(model);
    model.forward(x, Mode::Train).unwrap();
    loss.forward(model.output(), labels).unwrap();
    let grad = loss.backward(labels).unwrap();
    model.backward(x, grad).unwrap();
    adam.step(model).unwrap();
}

#[test]
fn steady_state_training_steps_allocate_nothing() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let mlp = Sequential::new()
        .push(Dense::new(784, 256, Init::He, &mut rng).unwrap())
        .push(Activation::new(ActivationKind::Relu))
        .push(Dense::new(256, 10, Init::He, &mut rng).unwrap());
    // Rnn -> Gru (bidirectional) -> Lstm (2 layers, dropout) on (batch, seq, features) input.
    let rnn = RnnConfig {
        recurrent: RecurrentConfig::new(16, 24).with_batch_first(true),
        ..RnnConfig::new(16, 24)
    };
    let gru = RecurrentConfig::new(24, 20).with_batch_first(true).with_bidirectional(true);
    let lstm = RecurrentConfig::new(40, 32).with_batch_first(true).with_layers(2).with_dropout(0.2);
    let recurrent = Sequential::new()
        .push(Rnn::new(rnn, &mut rng).unwrap())
        .push(Gru::new(gru, &mut rng).unwrap())
        .push(Lstm::new(lstm, &mut rng).unwrap())
        .push(Flatten::new())
        .push(Dense::new(8 * 32, 10, Init::He, &mut rng).unwrap());
    // Many-to-one: a bidirectional LSTM's last step, a time-major GRU's mean over time.
    let bidirectional = RecurrentConfig::new(16, 24).with_batch_first(true).with_bidirectional(true);
    let last_step = Sequential::new()
        .push(Lstm::new(bidirectional, &mut rng).unwrap())
        .push(LastStep::for_config(&bidirectional))
        .push(Dense::new(2 * 24, 10, Init::He, &mut rng).unwrap());
    let time_major = RecurrentConfig::new(16, 24);
    let mean_over_time = Sequential::new()
        .push(Gru::new(time_major, &mut rng).unwrap())
        .push(MeanOverTime::for_config(&time_major))
        .push(Dense::new(24, 10, Init::He, &mut rng).unwrap());
    let cases = [
        (lenet5(&mut rng).unwrap(), batch(&[64, 1, 28, 28])),
        (resnet(&ResNetConfig::small_mnist(), &mut rng).unwrap(), batch(&[16, 1, 28, 28])),
        (inception(&InceptionConfig::small_mnist(), &mut rng).unwrap(), batch(&[16, 1, 28, 28])),
        (mlp, batch(&[128, 784])),
        (recurrent, batch(&[32, 8, 16])),
        (last_step, batch(&[32, 8, 16])),
        // Time-major: 8 steps of a batch of 32, so 32 labels.
        (mean_over_time, (batch(&[8, 32, 16]).0, batch(&[32]).1)),
    ];
    for (mut model, (x, labels)) in cases {
        let mut adam = Adam::new(AdamConfig::default()).unwrap();
        let mut loss = SoftmaxCrossEntropy::new();
        pool.install(|| {
            for _ in 0..5 {
                step(&mut model, &mut adam, &mut loss, &x, &labels);
            }
            let before = ALLOCATIONS.load(Ordering::SeqCst);
            for _ in 0..5 {
                step(&mut model, &mut adam, &mut loss, &x, &labels);
            }
            let made = ALLOCATIONS.load(Ordering::SeqCst) - before;
            assert_eq!(made, 0, "{}: {made} allocations in 5 steady-state steps", model.name());
        });
        assert!(adam.learning_rate() > 0.0);
    }
    attention_steps_allocate_nothing(&pool);
    augmented_batches_allocate_nothing(&pool);
}

/// Forward and backward of both attentions under a key padding mask, on `pool`: part of the
/// single test above, as the counter is global.
fn attention_steps_allocate_nothing(pool: &rayon::ThreadPool) {
    let mut rng = StdRng::seed_from_u64(5);
    let (batch_size, q_len, k_len, d, d_v) = (16, 12, 20, 32, 24);
    let (q, _) = batch(&[batch_size, q_len, d]);
    let (k, _) = batch(&[batch_size, k_len, d]);
    let (v, _) = batch(&[batch_size, k_len, d_v]);
    let (grad, _) = batch(&[batch_size, q_len, d_v]);
    let padded: Vec<bool> = (0..batch_size * k_len).map(|i| i % k_len >= k_len - i / k_len % 4).collect();
    let mut dot = ScaledDotProductAttention::new();
    let mut additive = AdditiveAttention::new(d, d, 16, Init::Xavier, &mut rng).unwrap();
    let mut step = || {
        let mask = Some(AttentionMask::KeyPadding(&padded));
        dot.forward(&q, &k, &v, mask).unwrap();
        dot.backward(&q, &k, &v, &grad).unwrap();
        additive.visit_params(&mut |_, param| param.zero_grad());
        additive.forward(&q, &k, &v, mask).unwrap();
        additive.backward(&q, &k, &v, &grad).unwrap();
    };
    pool.install(|| {
        let cold = ALLOCATIONS.load(Ordering::SeqCst);
        for _ in 0..5 {
            step();
        }
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        assert!(before > cold, "the warm-up sized no buffer: the counter saw nothing");
        for _ in 0..5 {
            step();
        }
        let made = ALLOCATIONS.load(Ordering::SeqCst) - before;
        assert_eq!(made, 0, "attention: {made} allocations in 5 steady-state steps");
    });
}

/// Epochs of augmented mini-batches (shift, rotation, elastic distortion) on `pool`, once
/// the first epoch has sized the batch tensors and displacement fields: part of the single
/// test above, as the counter is global.
fn augmented_batches_allocate_nothing(pool: &rayon::ThreadPool) {
    let (images, labels) = batch(&[50, 2, 12, 12]);
    let data = Dataset::new(images, labels).unwrap();
    let elastic = Some(Elastic { alpha: 8.0, sigma: 3.0 });
    let augment =
        Augment { flip: 0.5, pad: 2, rotation: (-10.0, 10.0), elastic, fill: -0.5, ..Augment::default() };
    let mut batches = Batches::shuffled(&data, 16, 2).unwrap().augment(augment).unwrap();
    let mut epoch = || {
        batches.start_epoch();
        let mut sum = 0.0;
        while let Some((x, _)) = batches.next_batch() {
            sum += x.data()[0];
        }
        assert!(sum.is_finite());
    };
    pool.install(|| {
        let cold = ALLOCATIONS.load(Ordering::SeqCst);
        epoch();
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        assert!(before > cold, "the first epoch sized no buffer: the counter saw nothing");
        (0..3).for_each(|_| epoch());
        let made = ALLOCATIONS.load(Ordering::SeqCst) - before;
        assert_eq!(made, 0, "augmented batches: {made} allocations in 3 warm epochs");
    });
}
