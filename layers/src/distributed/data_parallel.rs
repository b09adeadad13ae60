//! [`DataParallel`]: a model whose gradients are summed across the ranks of an [`Mpi`]
//! world during its backward pass.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mpi::collective::SystemOperation;
use mpi::request::{Request, Scope};
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Root};

use super::{Collective, Mpi};
use crate::error::{LayerError, Result};
use crate::nn::{Layer, Mode, Param, Sequential};
use crate::tensor::Tensor;

/// Gradients are sent in buckets of about this many values (4 MiB of `f32`), PyTorch
/// DDP's default `bucket_cap_mb` being 25: large enough that a bucket's latency is small
/// beside its transfer, small enough that the first ones overlap the rest of the backward.
pub const DEFAULT_BUCKET_VALUES: usize = 1 << 20;

/// A [`Sequential`] model trained by data parallelism over the ranks of an [`Mpi`] world
/// (PyTorch's `DistributedDataParallel`): every rank holds the whole model and runs it on
/// its own shard of each global batch.
///
/// - Built with rank 0's parameters: [`DataParallel::new`] broadcasts them.
/// - [`Layer::backward`] runs the model's backward layer by layer, from the last; the
///   parameter gradients are grouped, in that order, into buckets of whole layers (at least
///   `bucket_values` values each, the last one smaller), copied into one flat buffer per
///   bucket, and each bucket's sum over the ranks (`MPI_Iallreduce`) starts as soon as its
///   lowest layer is done, while the earlier layers are still differentiated (the pending
///   sums are tested after each layer, as MPI moves them on only inside its calls). Each rank
///   weighs its gradients by its batch size `n_r`, so the result, written back into every
///   parameter's gradient, is the gradient of the mean loss over the global batch,
///   `Σ n_r·g_r / Σ n_r`, whatever the shards' sizes.
/// - Everything else (forward, outputs, parameters and their names) is the model's, so an
///   optimizer, [`fit`](crate::fit) and checkpoints see the model itself; give `fit` the same
///   world in [`FitConfig::data_parallel`](crate::FitConfig::data_parallel) to shard the
///   batches.
///
/// Per step, each rank sends and receives its share of `4·(P + buckets)` bytes for `P`
/// parameter values (a ring allreduce moves `2(N-1)/N` times that over each link).
///
/// The example does not run as a doc test: it needs the processes of `mpirun -np 2`, each
/// building the same model and data.
///
/// ```no_run
/// use std::sync::Arc;
///
/// use keel_layers::distributed::{Collective, DataParallel, Mpi, DEFAULT_BUCKET_VALUES};
/// use keel_layers::{fit, lenet5, Dataset, FitConfig, SeedableRng, Sgd, SgdConfig};
/// use keel_layers::{SoftmaxCrossEntropy, StdRng, Tensor};
///
/// fn train(mpi: &Arc<Mpi>) -> keel_layers::Result<()> {
///     let data = Dataset::new(Tensor::zeros(&[64, 1, 28, 28]), vec![0; 64])?;
///     let lenet = lenet5(&mut StdRng::seed_from_u64(0))?;
///     let mut model = DataParallel::new(lenet, Arc::clone(mpi), DEFAULT_BUCKET_VALUES)?;
///     let mut sgd = Sgd::new(SgdConfig { lr: 0.01, ..SgdConfig::default() })?;
///     // Each rank trains on its half of every batch of 32.
///     let group: Arc<dyn Collective> = mpi.clone();
///     let config = FitConfig { data_parallel: Some(group), epochs: 1, ..FitConfig::default() };
///     fit(&mut model, &mut sgd, &mut SoftmaxCrossEntropy::new(), &data, &data, &config)?;
///     Ok(())
/// }
///
/// fn main() {
///     let mpi = Arc::new(Mpi::init().expect("MPI initialises once per process"));
///     let outcome = train(&mpi);
///     mpi.abort_on_error(outcome);
/// }
/// ```
pub struct DataParallel {
    model: Sequential,
    mpi: Arc<Mpi>,
    buckets: Vec<Bucket>,
    /// Per layer: its bucket and its values' offset there.
    slots: Vec<Slot>,
    /// Time spent waiting for the sums after the model's backward had finished.
    waited: Duration,
}

/// The layers `layers` (descending order of backward) and their gradients, flat, with this
/// rank's batch size last.
struct Bucket {
    layers: Range<usize>,
    send: Vec<f32>,
    received: Vec<f32>,
}

impl Bucket {
    /// Writes the rank's batch size `weight` last; the buffers to send and receive into.
    fn sealed(&mut self, weight: f32) -> (&[f32], &mut [f32]) {
        if let Some(last) = self.send.last_mut() {
            *last = weight;
        }
        (&self.send, &mut self.received)
    }
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    bucket: usize,
    offset: usize,
}

impl DataParallel {
    /// Wraps `model`, every rank's parameters set to rank 0's (`MPI_Bcast`), gradients to be
    /// sent in buckets of at least `bucket_values` values ([`DEFAULT_BUCKET_VALUES`]).
    ///
    /// Every rank must build the same architecture (as with PyTorch, a mismatch is not
    /// detected before the broadcast fails). Errors ([`LayerError::Argument`]) if
    /// `bucket_values` is 0.
    pub fn new(mut model: Sequential, mpi: Arc<Mpi>, bucket_values: usize) -> Result<Self> {
        if bucket_values == 0 {
            return Err(LayerError::Argument {
                owner: "data_parallel".into(),
                what: "bucket_values".into(),
                expected: "at least 1".into(),
                actual: "0".into(),
            });
        }
        let world = mpi.world();
        let root = world.process_at_rank(0);
        model.visit_params(&mut |_, param: &mut Param| root.broadcast_into(param.value.data_mut()));
        let sizes: Vec<usize> =
            model.layers_mut().iter_mut().map(|layer| param_values(layer.as_mut())).collect();
        let (buckets, slots) = plan_buckets(&sizes, bucket_values);
        Ok(DataParallel { model, mpi, buckets, slots, waited: Duration::ZERO })
    }

    /// The model inside.
    pub fn model(&self) -> &Sequential {
        &self.model
    }

    /// The model inside, e.g. to save it on rank 0.
    pub fn model_mut(&mut self) -> &mut Sequential {
        &mut self.model
    }

    /// The number of gradient buckets per step.
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// The values each step sums across ranks: every parameter's, and one batch size per
    /// bucket.
    pub fn values_per_step(&self) -> usize {
        self.buckets.iter().map(|bucket| bucket.send.len()).sum()
    }

    /// The time backward has spent waiting for the sums once the model's own backward was
    /// done (the communication that did not overlap it), since the wrapper was built.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

/// The number of parameter values of `layer`.
fn param_values(layer: &mut dyn Layer) -> usize {
    let mut values = 0;
    layer.visit_params(&mut |_, param| values += param.value.len());
    values
}

/// Buckets over layers of `sizes` values, filled from the last layer down, each closed once
/// it holds at least `bucket_values` values; and each layer's place in them.
fn plan_buckets(sizes: &[usize], bucket_values: usize) -> (Vec<Bucket>, Vec<Slot>) {
    let mut buckets = Vec::new();
    let mut slots = vec![Slot { bucket: 0, offset: 0 }; sizes.len()];
    let (mut top, mut filled) = (sizes.len(), 0);
    for index in (0..sizes.len()).rev() {
        slots[index] = Slot { bucket: buckets.len(), offset: filled };
        filled += sizes[index];
        if filled >= bucket_values || index == 0 {
            // One more value: the rank's batch size.
            buckets.push(Bucket {
                layers: index..top,
                send: vec![0.0; filled + 1],
                received: vec![0.0; filled + 1],
            });
            (top, filled) = (index, 0);
        }
    }
    (buckets, slots)
}

/// Starts the sum over the ranks of `bucket`'s values, this rank's batch size `weight` last
/// (`MPI_Iallreduce`).
fn start_sum<'a, S: Scope<'a>>(
    world: &SimpleCommunicator,
    scope: S,
    bucket: &'a mut Bucket,
    weight: f32,
) -> Request<'a, [f32], S> {
    let (send, received) = bucket.sealed(weight);
    world.immediate_all_reduce_into(scope, send, received, SystemOperation::sum())
}

/// Tests each pending request once (`MPI_Test`), dropping those that have completed.
fn progress<'a, R: ?Sized, S: Scope<'a>>(requests: &mut [Option<Request<'a, R, S>>]) {
    for slot in requests.iter_mut() {
        if let Some(request) = slot.take() {
            *slot = request.test().err();
        }
    }
}

/// Copies the gradients of `layer`, times `weight`, into `values` from `offset`.
fn gather_grads(layer: &mut dyn Layer, weight: f32, values: &mut [f32], mut offset: usize) {
    layer.visit_params(&mut |_, param| {
        let grad = param.grad.data();
        for (to, &g) in values[offset..offset + grad.len()].iter_mut().zip(grad) {
            *to = g * weight;
        }
        offset += grad.len();
    });
}

impl Layer for DataParallel {
    fn name(&self) -> String {
        format!("data_parallel(rank {} of {}, {})", self.mpi.rank(), self.mpi.ranks(), self.model.name())
    }

    fn forward(&mut self, input: &Tensor, mode: Mode) -> Result<()> {
        self.model.forward(input, mode)
    }

    /// The model's backward, then every parameter gradient replaced by the batch-weighted
    /// mean over the ranks (see the type's docs).
    fn backward(&mut self, input: &Tensor, grad_output: &Tensor) -> Result<()> {
        let weight = input.shape().first().copied().unwrap_or(0) as f32;
        let world = self.mpi.world();
        let DataParallel { model, buckets, slots, waited, .. } = self;
        let outcome = mpi::request::scope(|scope| {
            let mut requests = Vec::with_capacity(buckets.len());
            let mut unsent = buckets.iter_mut();
            let mut open = unsent.next();
            // The lowest layer backward has reached: those below it have not run.
            let mut lowest = slots.len();
            let outcome = model.backward_each(input, grad_output, |index, layer| {
                lowest = index;
                // MPI advances a non-blocking sum only inside MPI calls: testing the pending
                // ones after each layer moves them on while backward goes down the model.
                progress(&mut requests);
                let Some(bucket) = open.take() else { return Ok(()) };
                gather_grads(layer, weight, &mut bucket.send, slots[index].offset);
                if index == bucket.layers.start {
                    requests.push(Some(start_sum(&world, scope, bucket, weight)));
                    open = unsent.next();
                } else {
                    open = Some(bucket);
                }
                Ok(())
            });
            // Layers below the first trainable one (no backward when the input gradient is
            // off) still send what their gradients hold, so every rank starts every bucket.
            for bucket in open.into_iter().chain(unsent) {
                let unvisited = bucket.layers.start..bucket.layers.end.min(lowest);
                let layers = model.layers_mut()[unvisited.clone()].iter_mut().zip(&slots[unvisited]);
                for (layer, slot) in layers {
                    gather_grads(layer.as_mut(), weight, &mut bucket.send, slot.offset);
                }
                requests.push(Some(start_sum(&world, scope, bucket, weight)));
            }
            let start = Instant::now();
            for request in requests.into_iter().flatten() {
                request.wait();
            }
            (outcome, start.elapsed())
        });
        let (outcome, elapsed) = outcome;
        *waited += elapsed;
        outcome?;
        for (index, layer) in model.layers_mut().iter_mut().enumerate() {
            let Slot { bucket, mut offset } = slots[index];
            let received = &buckets[bucket].received;
            let total = received[received.len() - 1];
            layer.visit_params(&mut |_, param| {
                let grad = param.grad.data_mut();
                let len = grad.len();
                for (g, &sum) in grad.iter_mut().zip(&received[offset..offset + len]) {
                    *g = sum / total;
                }
                offset += len;
            });
        }
        Ok(())
    }

    fn output(&self) -> &Tensor {
        self.model.output()
    }

    fn grad_input(&self) -> &Tensor {
        self.model.grad_input()
    }

    fn set_input_grad(&mut self, needed: bool) {
        self.model.set_input_grad(needed);
    }

    fn set_batch_offset(&mut self, rows: usize) {
        self.model.set_batch_offset(rows);
    }

    fn synchronize_batch_norm(&mut self, group: &Arc<dyn Collective>) {
        self.model.synchronize_batch_norm(group);
    }

    fn visit_params(&mut self, visit: &mut dyn FnMut(&str, &mut Param)) {
        self.model.visit_params(visit);
    }
}
