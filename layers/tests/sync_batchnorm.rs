//! `BatchNorm::synchronized`: two ranks (threads here, summing through a barrier) holding
//! halves of a batch compute what one batch norm computes over the whole batch, forward
//! (outputs, running statistics) and backward (the input gradient of each rank's mean loss,
//! and parameter gradients that, weighed by the ranks' batch sizes, sum to the whole's);
//! with a group of one it is the plain layer; `Layer::synchronize_batch_norm` reaches every
//! batch norm of a model, inside branches too.

use std::sync::{Arc, Barrier, Mutex};

use keel_layers::distributed::Collective;
use keel_layers::{BatchNorm, Branches, Layer, Merge, Mode, Result, Sequential, Tensor};

/// Ranks on threads of one process: `sum` adds every rank's values under a lock, waits for
/// all, reads the total, and clears it for the next call.
#[derive(Debug)]
struct Threads {
    rank: usize,
    ranks: usize,
    barrier: Arc<Barrier>,
    total: Arc<Mutex<Vec<f64>>>,
}

impl Threads {
    fn group(ranks: usize) -> Vec<Threads> {
        let (barrier, total) = (Arc::new(Barrier::new(ranks)), Arc::new(Mutex::new(Vec::new())));
        (0..ranks)
            .map(|rank| Threads { rank, ranks, barrier: Arc::clone(&barrier), total: Arc::clone(&total) })
            .collect()
    }
}

impl Collective for Threads {
    fn rank(&self) -> usize {
        self.rank
    }
    fn ranks(&self) -> usize {
        self.ranks
    }
    fn sum(&self, values: &mut [f64]) -> Result<()> {
        {
            let mut total = self.total.lock().unwrap();
            total.resize(values.len(), 0.0);
            total.iter_mut().zip(values.iter()).for_each(|(t, v)| *t += v);
        }
        self.barrier.wait();
        values.copy_from_slice(&self.total.lock().unwrap());
        self.barrier.wait();
        if self.rank == 0 {
            self.total.lock().unwrap().clear();
        }
        self.barrier.wait();
        Ok(())
    }
}

/// Values in [-1, 1) shifted by `shift`, from a multiplicative hash.
fn values(len: usize, seed: u32, shift: f32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            ((i as u32 ^ seed).wrapping_mul(2_654_435_761) >> 8) as f32 / (1u32 << 23) as f32 - 1.0 + shift
        })
        .collect()
}

/// What a batch norm gives for input `x` and output gradient `dy`.
struct Run {
    y: Vec<f32>,
    dx: Vec<f32>,
    dgamma: Vec<f32>,
    dbeta: Vec<f32>,
    running: Vec<f32>,
}

fn run(mut bn: BatchNorm, x: &Tensor, dy: &Tensor) -> Run {
    bn.weight.value = Tensor::from_vec(&[3], vec![1.5, -0.5, 2.0]).unwrap();
    bn.bias.value = Tensor::from_vec(&[3], vec![0.1, 0.2, -0.3]).unwrap();
    bn.forward(x, Mode::Train).unwrap();
    bn.backward(x, dy).unwrap();
    let running = [bn.running_mean().data(), bn.running_var().data()].concat();
    Run {
        y: bn.output().data().to_vec(),
        dx: bn.grad_input().data().to_vec(),
        dgamma: bn.weight.grad.data().to_vec(),
        dbeta: bn.bias.grad.data().to_vec(),
        running,
    }
}

fn assert_close(what: &str, got: &[f32], expected: &[f32], tolerance: f32) {
    assert_eq!(got.len(), expected.len(), "{what}");
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!((g - e).abs() <= tolerance * e.abs().max(1.0), "{what}[{i}]: {g} vs {e}");
    }
}

/// Rows `rows` of a `(n, 3, 4, 5)` tensor.
fn rows(t: &Tensor, rows: std::ops::Range<usize>) -> Tensor {
    let per = t.len() / t.shape()[0];
    Tensor::from_vec(&[rows.len(), 3, 4, 5], t.data()[rows.start * per..rows.end * per].to_vec()).unwrap()
}

// Tolerances: the group's statistics are the same f64 sums in another order (parts then
// their total), the outputs and gradients f32 passes over them: a few ulp, 1e-5 relative.
#[test]
fn two_ranks_of_a_batch_compute_what_one_batch_norm_does() {
    let n = 7; // 3 and 4 rows: unequal parts
    let x = Tensor::from_vec(&[n, 3, 4, 5], values(n * 60, 1, 3.0)).unwrap();
    let u = Tensor::from_vec(&[n, 3, 4, 5], values(n * 60, 2, 0.0)).unwrap();
    // The whole batch: the gradient of the mean over n samples of <u_i, y_i>.
    let dy_whole = Tensor::from_vec(&[n, 3, 4, 5], u.data().iter().map(|v| v / n as f32).collect()).unwrap();
    let whole = run(BatchNorm::new_2d(3), &x, &dy_whole);

    let parts = [0..3, 3..n];
    let results: Vec<(usize, Run)> = std::thread::scope(|scope| {
        let handles: Vec<_> = Threads::group(2)
            .into_iter()
            .zip(parts.clone())
            .map(|(member, part)| {
                let (x, u) = (rows(&x, part.clone()), rows(&u, part.clone()));
                scope.spawn(move || {
                    let rows = part.len();
                    // Each rank's own mean loss over its rows.
                    let dy = Tensor::from_vec(u.shape(), u.data().iter().map(|v| v / rows as f32).collect())
                        .unwrap();
                    let bn = BatchNorm::new_2d(3).synchronized(Arc::new(member));
                    (rows, run(bn, &x, &dy))
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });

    let per = 60;
    for ((rows, part), range) in results.iter().zip(parts) {
        let span = range.start * per..range.end * per;
        assert_close("y", &part.y, &whole.y[span.clone()], 1e-5);
        // This rank's mean loss is (n / rows) times its share of the whole's.
        let scale = n as f32 / *rows as f32;
        let expected: Vec<f32> = whole.dx[span].iter().map(|g| g * scale).collect();
        assert_close("dx", &part.dx, &expected, 1e-5);
        assert_close("running statistics", &part.running, &whole.running, 1e-6);
    }
    // Parameter gradients weighed by rows and summed, as data-parallel training does.
    let combine = |pick: fn(&Run) -> &Vec<f32>| -> Vec<f32> {
        (0..3)
            .map(|k| results.iter().map(|(rows, r)| *rows as f32 * pick(r)[k]).sum::<f32>() / n as f32)
            .collect()
    };
    assert_close("dgamma", &combine(|r| &r.dgamma), &whole.dgamma, 1e-5);
    assert_close("dbeta", &combine(|r| &r.dbeta), &whole.dbeta, 1e-5);
}

#[test]
fn a_group_of_one_is_the_plain_layer() {
    let x = Tensor::from_vec(&[5, 3, 4, 5], values(300, 3, -2.0)).unwrap();
    let dy = Tensor::from_vec(&[5, 3, 4, 5], values(300, 4, 0.0)).unwrap();
    let plain = run(BatchNorm::new_2d(3), &x, &dy);
    let member = Threads::group(1).pop().unwrap();
    let alone = run(BatchNorm::new_2d(3).synchronized(Arc::new(member)), &x, &dy);
    assert_close("y", &alone.y, &plain.y, 1e-6);
    assert_close("dx", &alone.dx, &plain.dx, 1e-6);
    assert_close("dgamma", &alone.dgamma, &plain.dgamma, 1e-6);
    assert_close("dbeta", &alone.dbeta, &plain.dbeta, 1e-6);
    assert_eq!(alone.running, plain.running);
}

#[test]
fn synchronize_batch_norm_reaches_every_batch_norm_of_a_model() {
    let model = || {
        Sequential::new()
            .push(BatchNorm::new_2d(3))
            .push(Branches::new(Merge::Add).branch("norm", BatchNorm::new_2d(3)).unwrap().identity())
    };
    let n = 6;
    let x = Tensor::from_vec(&[n, 3, 4, 5], values(n * 60, 5, 1.0)).unwrap();
    let mut whole = model();
    whole.forward(&x, Mode::Train).unwrap();
    let outputs: Vec<Vec<f32>> = std::thread::scope(|scope| {
        let handles: Vec<_> = Threads::group(2)
            .into_iter()
            .zip([0..2, 2..n])
            .map(|(member, part)| {
                let x = rows(&x, part);
                scope.spawn(move || {
                    let group: Arc<dyn Collective> = Arc::new(member);
                    let mut converted = model();
                    converted.synchronize_batch_norm(&group);
                    converted.forward(&x, Mode::Train).unwrap();
                    converted.output().data().to_vec()
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });
    assert_close("y", &outputs.concat(), whole.output().data(), 1e-5);
}
