//! A steady-state training step allocates nothing on the heap, on a pool of one thread and
//! on one of two: after five warm-up steps on a pool (which size every buffer: layer outputs
//! and gradients, workspaces, optimizer state, the GEMM's shared packing buffers, one per
//! pool thread), five further steps on it make no allocation at all. Checked on every model
//! the README names, each with the optimizer and loss its example trains it with (VGG and
//! AlexNet, which have no example, with RMSprop and SGD with momentum): the main
//! job's LeNet-5 with batch norm and dropout (its own model and Adam with weight decay, from
//! `examples/common/main_job.rs`), plain LeNet-5 and LeNet-5 with frozen convolutions
//! (`transfer_digits`), the small ResNet, Inception (GoogLeNet), VGG and AlexNet networks, an
//! MLP with dropout (`deep_mlp`), softmax and logistic regression (SGD, with momentum and
//! without; binary cross-entropy), a stack of recurrent layers, recurrent layers with a
//! many-to-one head (`LastStep` as `lstm_mnist`, `MeanOverTime`) and the character language
//! model of `char_lm` (embedding, LSTM, gradient clipping); nor do forward and backward of
//! the attentions under a mask, nor do warm epochs of augmented mini-batches (shift,
//! rotation, elastic distortion). Counted by a global allocator over every thread, so this
//! file holds a single test (nothing else runs in its process meanwhile). A `Vec` planted in
//! batch norm's backward fails it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use keel::kernels::optim::{AdamConfig, RmspropConfig, SgdConfig};
use keel::layers::models::{
    alexnet, inception, resnet, vgg, AlexNetConfig, InceptionConfig, ResNetConfig, VggConfig,
};
use keel::layers::{
    clip_grad_norm, freeze, lenet5, zero_grad, Activation, ActivationKind, Adam, AdditiveAttention,
    AttentionMask, Augment, Batches, BceWithLogits, Dataset, Dense, Dropout, Elastic, Embedding, Flatten,
    FlattenSteps, Gru, Init, LastStep, Layer, Loss, Lstm, MeanOverTime, Mode, Optimizer, RecurrentConfig,
    RmsProp, Rnn, RnnConfig, ScaledDotProductAttention, Sequential, Sgd, SoftmaxCrossEntropy, Tensor,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

#[path = "../examples/common/main_job.rs"]
#[allow(dead_code)] // the test takes the main job's model and optimizer, not its data or summary
mod main_job;

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

/// One training step: gradients zeroed, forward, loss, backward, the gradients clipped to
/// the norm `clip` (if any), the update.
fn step<L: Loss>(
    model: &mut Sequential,
    optimizer: &mut dyn Optimizer,
    loss: &mut L,
    x: &Tensor,
    target: &L::Target,
    clip: Option<f32>,
) {
    zero_grad(model);
    model.forward(x, Mode::Train).unwrap();
    loss.forward(model.output(), target).unwrap();
    let grad = loss.backward(target).unwrap();
    model.backward(x, grad).unwrap();
    if let Some(max_norm) = clip {
        clip_grad_norm(model, max_norm).unwrap();
    }
    optimizer.step(model).unwrap();
}

/// Runs `work` on each pool `warm` times, then `counted` times more, and asserts that the
/// counted runs made no allocation on any thread.
fn assert_warm_runs_allocate_nothing(
    what: &str,
    pools: &[rayon::ThreadPool],
    warm: usize,
    counted: usize,
    mut work: impl FnMut() + Send,
) {
    for pool in pools {
        pool.install(|| {
            (0..warm).for_each(|_| work());
            let before = ALLOCATIONS.load(Ordering::SeqCst);
            (0..counted).for_each(|_| work());
            let made = ALLOCATIONS.load(Ordering::SeqCst) - before;
            let threads = pool.current_num_threads();
            assert_eq!(made, 0, "{what}: {made} allocations in {counted} warm runs on {threads} thread(s)");
        });
    }
}

/// A model the README names, trained with softmax cross-entropy on `labels` by `optimizer`,
/// its gradients clipped to the norm `clip` when given.
struct Case {
    model: Sequential,
    optimizer: Box<dyn Optimizer + Send>,
    x: Tensor,
    labels: Vec<u32>,
    clip: Option<f32>,
}

impl Case {
    fn new(
        model: Sequential,
        optimizer: impl Optimizer + Send + 'static,
        (x, labels): (Tensor, Vec<u32>),
    ) -> Self {
        Case { model, optimizer: Box::new(optimizer), x, labels, clip: None }
    }
}

fn adam() -> Adam {
    Adam::new(AdamConfig::default()).unwrap()
}

#[test]
fn steady_state_training_steps_allocate_nothing() {
    // Pools of two threads and one, built once: their threads start here, outside any count.
    // Two threads first: warmed on one thread first, the GEMM's spare packing buffers and
    // shared operand stores are made for one, and parts nested under rayon's work stealing on
    // two threads then make more now and then after the warm-up (docs/testing.md).
    let pools = [2, 1].map(|threads| rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap());
    // The counter sees this thread's allocations (else every count below is vacuous).
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    std::hint::black_box(vec![0u8; 16]);
    assert!(ALLOCATIONS.load(Ordering::SeqCst) > before, "the counting allocator is not in use");

    for mut case in cases() {
        let name = case.model.name();
        let mut loss = SoftmaxCrossEntropy::new();
        assert_warm_runs_allocate_nothing(&name, &pools, 5, 5, || {
            let Case { model, optimizer, x, labels, clip } = &mut case;
            step(model, optimizer.as_mut(), &mut loss, x, labels, *clip);
        });
        assert!(case.optimizer.learning_rate() > 0.0);
    }
    logistic_regression_steps_allocate_nothing(&pools);
    attention_steps_allocate_nothing(&pools);
    augmented_batches_allocate_nothing(&pools);
}

/// The models trained with softmax cross-entropy, their optimizers and batches.
fn cases() -> Vec<Case> {
    let mut rng = StdRng::seed_from_u64(3);
    let images = |n: usize| batch(&[n, 1, 28, 28]);
    // The main job: LeNet-5 with batch norm and dropout, Adam with weight decay, its batch.
    let main_job = Case::new(
        main_job::model().unwrap(),
        main_job::optimizer().unwrap(),
        images(main_job::fit_config().batch_size),
    );
    // transfer_digits: LeNet-5 with its convolutions frozen.
    let mut frozen = lenet5(&mut rng).unwrap();
    for name in ["0", "2"] {
        assert!(freeze(&mut frozen, name).unwrap() > 0);
    }
    let vgg_config = VggConfig::small_mnist();
    let alexnet_config = AlexNetConfig {
        in_channels: 1,
        input_size: 63,
        widths: [8, 16, 16, 16, 16],
        hidden: 32,
        ..AlexNetConfig::imagenet(10)
    };
    // deep_mlp: dense layers with ReLU and dropout (the README's 784-256-128-10 MLP).
    let mlp = Sequential::new()
        .push(Dense::new(784, 256, Init::He, &mut rng).unwrap())
        .push(Activation::new(ActivationKind::Relu))
        .push(Dropout::new(0.2, 1).unwrap())
        .push(Dense::new(256, 128, Init::He, &mut rng).unwrap())
        .push(Activation::new(ActivationKind::Relu))
        .push(Dropout::new(0.2, 2).unwrap())
        .push(Dense::new(128, 10, Init::He, &mut rng).unwrap());
    let mlp_adam = Adam::new(AdamConfig { weight_decay: 1e-4, ..AdamConfig::default() }).unwrap();
    let softmax_regression = Sequential::new().push(Dense::new(64, 10, Init::Zeros, &mut rng).unwrap());
    let momentum = Sgd::new(SgdConfig { lr: 0.05, momentum: 0.9, ..SgdConfig::default() }).unwrap();
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
    // char_lm: token ids (seq, batch) -> embedding -> LSTM -> one row per step -> logits over
    // a vocabulary of 28, gradients clipped to norm 1.
    let vocabulary = 28;
    let char_lm = Sequential::new()
        .push(Embedding::new(vocabulary, 16, None, &mut rng).unwrap())
        .push(Lstm::new(RecurrentConfig::new(16, 64), &mut rng).unwrap())
        .push(FlattenSteps::new())
        .push(Dense::new(64, vocabulary, Init::Xavier, &mut rng).unwrap());
    let (seq, words) = (7, 32);
    let tokens: Vec<u32> = (0..seq * words).map(|i| (i * 7 % vocabulary) as u32).collect();
    let token_ids = Tensor::from_vec(&[seq, words], tokens.iter().map(|&t| t as f32).collect()).unwrap();
    let next_tokens = tokens.iter().map(|&t| (t + 1) % vocabulary as u32).collect();
    vec![
        main_job,
        Case::new(lenet5(&mut rng).unwrap(), adam(), images(64)),
        Case::new(frozen, adam(), images(32)),
        Case::new(resnet(&ResNetConfig::small_mnist(), &mut rng).unwrap(), adam(), images(16)),
        Case::new(inception(&InceptionConfig::small_mnist(), &mut rng).unwrap(), adam(), images(16)),
        Case::new(
            vgg(&vgg_config, &mut rng).unwrap(),
            RmsProp::new(RmspropConfig::default()).unwrap(),
            images(16),
        ),
        Case::new(alexnet(&alexnet_config, &mut rng).unwrap(), momentum.clone(), batch(&[8, 1, 63, 63])),
        Case::new(mlp, mlp_adam, batch(&[128, 784])),
        Case::new(softmax_regression, momentum, batch(&[128, 64])),
        Case::new(recurrent, adam(), batch(&[32, 8, 16])),
        Case::new(last_step, adam(), batch(&[32, 8, 16])),
        // Time-major: 8 steps of a batch of 32, so 32 labels.
        Case::new(mean_over_time, adam(), (batch(&[8, 32, 16]).0, batch(&[32]).1)),
        Case { clip: Some(1.0), ..Case::new(char_lm, adam(), (token_ids, next_tokens)) },
    ]
}

/// Logistic regression (`logistic_regression`: one dense unit, binary cross-entropy on the
/// logits, plain SGD) on `pools`: part of the single test above, as the counter is global.
fn logistic_regression_steps_allocate_nothing(pools: &[rayon::ThreadPool]) {
    let mut rng = StdRng::seed_from_u64(4);
    let mut model = Sequential::new().push(Dense::new(64, 1, Init::Zeros, &mut rng).unwrap());
    let mut sgd = Sgd::new(SgdConfig { lr: 0.1, ..SgdConfig::default() }).unwrap();
    let mut loss = BceWithLogits::new();
    let (x, labels) = batch(&[128, 64]);
    let targets =
        Tensor::from_vec(&[128, 1], labels.iter().map(|&l| f32::from(l % 2 == 0)).collect()).unwrap();
    assert_warm_runs_allocate_nothing("logistic regression", pools, 5, 5, || {
        step(&mut model, &mut sgd, &mut loss, &x, &targets, None);
    });
}

/// Forward and backward of both attentions under a key padding mask, on `pools`: part of the
/// single test above, as the counter is global.
fn attention_steps_allocate_nothing(pools: &[rayon::ThreadPool]) {
    let mut rng = StdRng::seed_from_u64(5);
    let (batch_size, q_len, k_len, d, d_v) = (16, 12, 20, 32, 24);
    let (q, _) = batch(&[batch_size, q_len, d]);
    let (k, _) = batch(&[batch_size, k_len, d]);
    let (v, _) = batch(&[batch_size, k_len, d_v]);
    let (grad, _) = batch(&[batch_size, q_len, d_v]);
    let padded: Vec<bool> = (0..batch_size * k_len).map(|i| i % k_len >= k_len - i / k_len % 4).collect();
    let mut dot = ScaledDotProductAttention::new();
    let mut additive = AdditiveAttention::new(d, d, 16, Init::Xavier, &mut rng).unwrap();
    let step = || {
        let mask = Some(AttentionMask::KeyPadding(&padded));
        dot.forward(&q, &k, &v, mask).unwrap();
        dot.backward(&q, &k, &v, &grad).unwrap();
        additive.visit_params(&mut |_, param| param.zero_grad());
        additive.forward(&q, &k, &v, mask).unwrap();
        additive.backward(&q, &k, &v, &grad).unwrap();
    };
    assert_warm_runs_allocate_nothing("attention", pools, 5, 5, step);
}

/// Epochs of augmented mini-batches (shift, rotation, elastic distortion) on `pools`, once
/// the first epoch has sized the batch tensors and displacement fields: part of the single
/// test above, as the counter is global.
fn augmented_batches_allocate_nothing(pools: &[rayon::ThreadPool]) {
    let (images, labels) = batch(&[50, 2, 12, 12]);
    let data = Dataset::new(images, labels).unwrap();
    let elastic = Some(Elastic { alpha: 8.0, sigma: 3.0 });
    let augment =
        Augment { flip: 0.5, pad: 2, rotation: (-10.0, 10.0), elastic, fill: -0.5, ..Augment::default() };
    let mut batches = Batches::shuffled(&data, 16, 2).unwrap().augment(augment).unwrap();
    let epoch = || {
        batches.start_epoch();
        let mut sum = 0.0;
        while let Some((x, _)) = batches.next_batch() {
            sum += x.data()[0];
        }
        assert!(sum.is_finite());
    };
    assert_warm_runs_allocate_nothing("augmented batches", pools, 1, 3, epoch);
}
