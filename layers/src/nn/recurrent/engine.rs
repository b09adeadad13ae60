//! The engine shared by [`super::Rnn`], [`super::Gru`] and [`super::Lstm`]: a stack of
//! layers, each of one or two directions ([`Unit`]s), run through time with the kernels of
//! [`keel_kernels::rnn`] (see the module docs of [`super`] for the design).

use keel_kernels::gemm::PackedB;
use keel_kernels::parallel::{serial, MIN_PARALLEL_ELEMENTS};
use keel_kernels::rnn;
use rand::rngs::StdRng;
use rand::RngExt;
use rayon::prelude::*;

use super::parts::Parts;
use super::pass::{slot, Cell, Dims, StepGrads};
use super::steps::{BackwardBufs, BackwardSteps, ForwardBufs, ForwardSteps};
use super::RecurrentConfig;
use crate::error::{LayerError, Result};
use crate::nn::{ensure_forward_ran, Dropout, Init, Layer, Mode, Param};
use crate::tensor::Tensor;

/// Runs the time loop `steps` of a unit left in one part ([`Parts`]): with each kernel call
/// free to split across the pool when a step's fused cell splits too (its gate values,
/// weighted by [`rnn::GATE_FORWARD_COST`] for the gated cells, reach the element-wise
/// threshold [`MIN_PARALLEL_ELEMENTS`]), else on the calling thread alone ([`serial`]). A step is a
/// chain of small dependent calls: a split GEMM followed by a one-thread cell only hands half
/// of the gates to the other core and back every step, and runs slower on two threads than
/// on one (see `docs/tuning.md`). The bits are the same either way.
fn on_step_threads(dims: Dims<'_>, cell: Cell, steps: impl FnOnce() -> Result<()>) -> Result<()> {
    let cost = match cell {
        // The plain cell is one activation pass over the step's values.
        Cell::Rnn(_) => 1,
        Cell::Gru | Cell::Lstm => rnn::GATE_FORWARD_COST,
    };
    let work = dims.batch.saturating_mul(cell.gates() * dims.hidden).saturating_mul(cost);
    if work >= MIN_PARALLEL_ELEMENTS {
        steps()
    } else {
        serial(steps)
    }
}

/// The rows `range` of an optional state tensor.
fn state_rows(state: &Option<Tensor>, range: std::ops::Range<usize>) -> Option<&[f32]> {
    state.as_ref().map(|s| &s.data()[range])
}

/// `dst (b, a, inner) = src (a, b, inner)` with the first two axes swapped (batch-first and
/// time-major layouts).
fn swap_axes(src: &[f32], (a, b, inner): (usize, usize, usize), dst: &mut [f32]) {
    for i in 0..a {
        for j in 0..b {
            dst[(j * a + i) * inner..][..inner].copy_from_slice(&src[(i * b + j) * inner..][..inner]);
        }
    }
}

/// One layer in one direction: its parameters in PyTorch's order and names, and the
/// per-step buffers of the last forward, resized in place (no allocation in steady state).
/// The per-step buffers hold one block per part of the batch ([`Parts`]), each `(seq, rows,
/// ·)` or `(seq + 1, rows, H)`: with one part, the shapes written below.
#[derive(Debug, Clone)]
struct Unit {
    /// `weight_ih_l{k}`, `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}` (+ `_reverse`),
    /// built once so that visiting the parameters allocates nothing.
    names: [String; 4],
    /// `weight_ih (G·H, input)`, `weight_hh (G·H, H)`, `bias_ih (G·H)`, `bias_hh (G·H)`.
    params: [Param; 4],
    /// Input features of this layer: the stack's input, or `directions·hidden` above it.
    input_size: usize,
    /// Runs from the last step to the first.
    reverse: bool,
    /// `(seq, batch, G·H)`: the input projection of every step, then (RNN, LSTM) each step's
    /// whole pre-activation; backward overwrites it with the gate gradients (GRU: `dgi`).
    gates: Vec<f32>,
    /// GRU only, `(seq, batch, 3·H)`: each step's recurrent projection `gh`, then `dgh`.
    hidden_gates: Vec<f32>,
    /// `(seq, batch, cache_width·H)`: what the cell's backward needs.
    cache: Vec<f32>,
    /// `(seq + 1, batch, H)`: hidden states in time order (see [`slots`]).
    hs: Vec<f32>,
    /// LSTM only, `(seq + 1, batch, H)`: cell states in time order.
    cs: Vec<f32>,
    /// `weight_hh` packed once per forward for the recurrent GEMM of every step.
    packed_hh: PackedB,
    /// How the last forward split the batch rows (see [`Parts`]): the layout of every
    /// per-step buffer above.
    parts: Parts,
    /// Several parts: the input rows in the parts' order, and `dx` in that order.
    x_parts: Vec<f32>,
    dx_parts: Vec<f32>,
}

impl Unit {
    fn new(
        cell: Cell,
        (layer, reverse): (usize, bool),
        input_size: usize,
        hidden: usize,
        rng: &mut StdRng,
    ) -> Self {
        let suffix = if reverse { "_reverse" } else { "" };
        let names =
            ["weight_ih", "weight_hh", "bias_ih", "bias_hh"].map(|name| format!("{name}_l{layer}{suffix}"));
        let width = cell.gates() * hidden;
        // PyTorch: every weight and bias uniform in ±1/√hidden.
        let bound = 1.0 / (hidden as f32).sqrt();
        let init = Init::Uniform { low: -bound, high: bound };
        let params = [vec![width, input_size], vec![width, hidden], vec![width], vec![width]].map(|shape| {
            let mut value = Tensor::zeros(&shape);
            init.fill(value.data_mut(), input_size, hidden, rng);
            Param::new(value)
        });
        Unit {
            names,
            params,
            input_size,
            reverse,
            gates: Vec::new(),
            hidden_gates: Vec::new(),
            cache: Vec::new(),
            hs: Vec::new(),
            cs: Vec::new(),
            packed_hh: PackedB::default(),
            parts: Parts::default(),
            x_parts: Vec::new(),
            dx_parts: Vec::new(),
        }
    }

    /// Runs the unit over `x (seq, batch, input)` from the initial states (zero when
    /// `None`), writing its hidden states into its `direction` columns of
    /// `out (seq, batch, directions·hidden)`.
    fn forward(
        &mut self,
        cell: Cell,
        dims: Dims<'_>,
        direction: usize,
        x: &[f32],
        (h0, c0): (Option<&[f32]>, Option<&[f32]>),
        out: &mut [f32],
    ) -> Result<()> {
        let Dims { seq, batch, hidden, .. } = dims;
        let (width, rows, input) = (cell.gates() * hidden, seq * batch, self.input_size);
        let parts = Parts::plan(batch, rows.saturating_mul(width).saturating_mul(hidden));
        self.parts = parts;
        self.gates.resize(rows * width, 0.0);
        self.cache.resize(rows * cell.cache_width() * hidden, 0.0);
        self.hs.resize((seq + 1) * batch * hidden, 0.0);
        self.cs.resize(if cell == Cell::Lstm { (seq + 1) * batch * hidden } else { 0 }, 0.0);
        self.hidden_gates.resize(if cell == Cell::Gru { rows * width } else { 0 }, 0.0);
        let x = if parts.count() > 1 {
            self.x_parts.resize(rows * input, 0.0);
            parts.gather(x, (seq, batch, input), &mut self.x_parts);
            &self.x_parts[..]
        } else {
            x
        };
        let [w_ih, w_hh, b_ih, b_hh] = self.params.each_ref().map(|param| param.value.data());
        // The input projection of every step: one GEMM, (seq·batch, input) x (input, G·H).
        rnn::projection_forward(rows, input, width, x, w_ih, b_ih, false, &mut self.gates)?;
        rnn::projection_pack_weight(width, hidden, w_hh, &mut self.packed_hh)?;
        let steps = ForwardSteps { cell, seq, hidden, reverse: self.reverse, w_hh: &self.packed_hh, b_hh };
        let bufs = ForwardBufs {
            rows: batch,
            gates: &mut self.gates,
            hidden_gates: &mut self.hidden_gates,
            cache: &mut self.cache,
            hs: &mut self.hs,
            cs: &mut self.cs,
            h0,
            c0,
            lengths: dims.lengths,
        };
        parts
            .run(bufs, |bufs| on_step_threads(dims, cell, || steps.run(bufs)), &|_, bufs| steps.run(bufs))?;
        // The output: this direction's columns, zero past a sequence's end (PyTorch's padding);
        // step by step on the pool when the steps ran in parts.
        let (hs, reverse, out_width) = (&self.hs, self.reverse, dims.directions * hidden);
        let write_step = |(t, out_t): (usize, &mut [f32])| {
            let after = if reverse { t } else { t + 1 };
            for p in 0..parts.count() {
                let rows = parts.rows_of(p, batch);
                let part_hs = &hs[(seq + 1) * rows.start * hidden..(seq + 1) * rows.end * hidden];
                let h_next = slot(part_hs, rows.len() * hidden, after);
                for (h, b) in h_next.chunks_exact(hidden).zip(rows) {
                    let dst = &mut out_t[b * out_width + direction * hidden..][..hidden];
                    if dims.past_end(b, t) {
                        dst.fill(0.0);
                    } else {
                        dst.copy_from_slice(h);
                    }
                }
            }
        };
        let out = &mut out[..seq * batch * out_width];
        if parts.count() > 1 {
            out.par_chunks_mut(batch * out_width).enumerate().for_each(write_step);
        } else {
            out.chunks_mut(batch * out_width).enumerate().for_each(write_step);
        }
        Ok(())
    }

    /// Writes the final states of the last forward into `h` and `c` (`(batch, hidden)`
    /// each; `c` LSTM only).
    fn final_states(&self, dims: Dims<'_>, h: &mut [f32], c: &mut [f32]) {
        let Dims { seq, batch, hidden, .. } = dims;
        let last = if self.reverse { 0 } else { seq };
        for p in 0..self.parts.count() {
            let part = self.parts.rows_of(p, batch);
            let (len, base) = (part.len() * hidden, (seq + 1) * part.start * hidden);
            let rows = part.start * hidden..part.end * hidden;
            h[rows.clone()].copy_from_slice(&self.hs[base + last * len..][..len]);
            if !self.cs.is_empty() {
                c[rows].copy_from_slice(&self.cs[base + last * len..][..len]);
            }
        }
    }

    /// Backward through time from `dout (seq, batch, directions·hidden)` (this unit's
    /// columns) and the gradients of the final states `dh_n`, `dc_n` (`(batch, hidden)`,
    /// zero when `None`): accumulates the parameter gradients, writes (or, with
    /// `accumulate_dx`, adds) `∂L/∂x` into `dx (seq, batch, input)` when given, and writes
    /// the gradients of the initial states into `dh0`, `dc0` (`(batch, hidden)`; `dc0` LSTM
    /// only). The batch rows split as the forward's did, with a workspace in `ws` per part.
    #[allow(clippy::too_many_arguments)]
    fn backward(
        &mut self,
        cell: Cell,
        dims: Dims<'_>,
        direction: usize,
        x: &[f32],
        (dout, dh_n, dc_n): (&[f32], Option<&[f32]>, Option<&[f32]>),
        ws: &mut Vec<StepGrads>,
        (dx, accumulate_dx): (Option<&mut [f32]>, bool),
        (dh0, dc0): (&mut [f32], &mut [f32]),
    ) -> Result<()> {
        let Dims { seq, batch, hidden, directions, .. } = dims;
        let (width, rows, input) = (cell.gates() * hidden, seq * batch, self.input_size);
        let parts = self.parts;
        if ws.len() < parts.count() {
            ws.resize_with(parts.count(), StepGrads::default);
        }
        let [p_ih, p_hh, p_bih, p_bhh] = &mut self.params;
        let steps = BackwardSteps {
            cell,
            seq,
            hidden,
            reverse: self.reverse,
            w_hh: p_hh.value.data(),
            dout,
            batch,
            out_width: directions * hidden,
            direction,
        };
        let bufs = BackwardBufs {
            rows: batch,
            gates: &mut self.gates,
            hidden_gates: &mut self.hidden_gates,
            cache: &self.cache,
            hs: &self.hs,
            cs: &self.cs,
            ws: &mut ws[..parts.count()],
            dh0,
            dc0,
            dh_n,
            dc_n,
            lengths: dims.lengths,
        };
        parts.run(bufs, |bufs| on_step_threads(dims, cell, || steps.run(0, bufs)), &|first_row, bufs| {
            steps.run(first_row, bufs)
        })?;
        // The weight gradients of all steps at once: one GEMM per weight (W_hh: per part).
        let x = if parts.count() > 1 { &self.x_parts[..] } else { x };
        let (dweight_ih, dbias_ih) = (p_ih.grad.data_mut(), p_bih.grad.data_mut());
        rnn::projection_backward_weight(rows, input, width, &self.gates, x, dweight_ih, dbias_ih)?;
        let dgh_all = if cell == Cell::Gru { &self.hidden_gates } else { &self.gates };
        let (dweight_hh, dbias_hh) = (p_hh.grad.data_mut(), p_bhh.grad.data_mut());
        for p in 0..parts.count() {
            let part = parts.rows_of(p, batch);
            let n = part.len();
            let part_hs = &self.hs[(seq + 1) * part.start * hidden..(seq + 1) * part.end * hidden];
            // h_prev of the part's steps in time order: slots 0..seq forward, 1..=seq reverse.
            let h_prev = &part_hs[usize::from(self.reverse) * n * hidden..][..seq * n * hidden];
            let dg = &dgh_all[seq * part.start * width..seq * part.end * width];
            rnn::projection_backward_weight(seq * n, hidden, width, dg, h_prev, dweight_hh, dbias_hh)?;
        }
        if let Some(dx) = dx {
            let w_ih = p_ih.value.data();
            if parts.count() > 1 {
                self.dx_parts.resize(rows * input, 0.0);
                rnn::projection_backward_data(
                    rows,
                    input,
                    width,
                    &self.gates,
                    w_ih,
                    false,
                    &mut self.dx_parts,
                )?;
                parts.scatter(&self.dx_parts, (seq, batch, input), accumulate_dx, dx);
            } else {
                rnn::projection_backward_data(rows, input, width, &self.gates, w_ih, accumulate_dx, dx)?;
            }
        }
        Ok(())
    }
}

/// A stack of recurrent layers of one cell kind (see the module docs of [`super`]).
#[derive(Debug, Clone)]
pub(super) struct Stack {
    cell: Cell,
    config: RecurrentConfig,
    /// `num_layers·directions` units, layer after layer, forward direction first.
    units: Vec<Unit>,
    /// Dropout on the output of each layer but the last.
    dropouts: Vec<Dropout>,
    /// `(seq, batch)` of the last forward.
    last: Option<(usize, usize)>,
    /// Whether the last forward applied the dropouts (training with `dropout > 0`).
    dropped: bool,
    /// The input in time-major order when `batch_first`.
    x_time_major: Vec<f32>,
    /// `(seq, batch, directions·hidden)` per layer, time-major.
    layer_out: Vec<Tensor>,
    output: Tensor,
    h0: Option<Tensor>,
    c0: Option<Tensor>,
    h_n: Tensor,
    c_n: Tensor,
    /// Each batch row's sequence length, for the next passes (`None`: all `seq`).
    lengths: Option<Vec<usize>>,
    /// Gradients of the final states given for the next backwards.
    grad_h_n: Option<Tensor>,
    grad_c_n: Option<Tensor>,
    /// Backward: `∂L/∂` (output of the layer being processed), and (its input), time-major.
    grad_out: Tensor,
    grad_in: Tensor,
    /// One per part of the batch (see [`Parts`]).
    steps: Vec<StepGrads>,
    grad_input: Tensor,
    grad_h0: Tensor,
    grad_c0: Tensor,
    input_grad: bool,
}

impl Stack {
    /// A stack with PyTorch's init; errors on a zero size, no layer, or a dropout outside
    /// `[0, 1)`.
    pub(super) fn new(cell: Cell, config: RecurrentConfig, rng: &mut StdRng) -> Result<Self> {
        let RecurrentConfig { input_size, hidden_size, num_layers, dropout, .. } = config;
        if input_size == 0 || hidden_size == 0 || num_layers == 0 || !(0.0..1.0).contains(&dropout) {
            return Err(LayerError::Argument {
                owner: cell.name(),
                what: "config".into(),
                expected: "input_size >= 1, hidden_size >= 1, num_layers >= 1 and 0 <= dropout < 1".into(),
                actual: format!("{config:?}"),
            });
        }
        let directions = config.directions();
        let mut units = Vec::with_capacity(num_layers * directions);
        for layer in 0..num_layers {
            let layer_input = if layer == 0 { input_size } else { directions * hidden_size };
            for direction in 0..directions {
                units.push(Unit::new(cell, (layer, direction == 1), layer_input, hidden_size, rng));
            }
        }
        let dropouts =
            (1..num_layers).map(|_| Dropout::new(dropout, rng.random::<u64>())).collect::<Result<_>>()?;
        Ok(Stack {
            cell,
            config,
            units,
            dropouts,
            last: None,
            dropped: false,
            x_time_major: Vec::new(),
            layer_out: vec![Tensor::default(); num_layers],
            output: Tensor::default(),
            h0: None,
            c0: None,
            h_n: Tensor::default(),
            c_n: Tensor::default(),
            lengths: None,
            grad_h_n: None,
            grad_c_n: None,
            grad_out: Tensor::default(),
            grad_in: Tensor::default(),
            steps: Vec::new(),
            grad_input: Tensor::default(),
            grad_h0: Tensor::default(),
            grad_c0: Tensor::default(),
            input_grad: true,
        })
    }

    pub(super) fn config(&self) -> &RecurrentConfig {
        &self.config
    }

    /// Sets (or, with `None`, clears to zeros) the initial hidden and cell states,
    /// `(num_layers·directions, batch, hidden)`, checked at the next forward.
    pub(super) fn set_initial_state(&mut self, h0: Option<Tensor>, c0: Option<Tensor>) {
        self.h0 = h0;
        self.c0 = c0;
    }

    /// Sets (or, with `None`, clears to zeros) the gradients of the final states,
    /// `(num_layers·directions, batch, hidden)`, checked at the next backward.
    pub(super) fn set_grad_final_state(&mut self, dh_n: Option<Tensor>, dc_n: Option<Tensor>) {
        self.grad_h_n = dh_n;
        self.grad_c_n = dc_n;
    }

    /// Sets each batch row's sequence length for the next passes (checked at the next
    /// forward: one per row, each in `1..=seq`), or `None` for all `seq` steps.
    pub(super) fn set_lengths(&mut self, lengths: Option<Vec<usize>>) {
        self.lengths = lengths;
    }

    pub(super) fn final_state(&self) -> (&Tensor, &Tensor) {
        (&self.h_n, &self.c_n)
    }

    pub(super) fn grad_initial_state(&self) -> (&Tensor, &Tensor) {
        (&self.grad_h0, &self.grad_c0)
    }

    /// The shape of the state tensors for a batch.
    fn state_shape(&self, batch: usize) -> [usize; 3] {
        [self.config.num_layers * self.config.directions(), batch, self.config.hidden_size]
    }

    /// `(seq, batch)` of `input` if it is `(seq, batch, input_size)` (`(batch, seq, ...)`
    /// with `batch_first`), both at least 1.
    fn dims_of(&self, input: &Tensor) -> Result<(usize, usize)> {
        let features = self.config.input_size;
        match *input.shape() {
            [a, b, f] if f == features && a >= 1 && b >= 1 => {
                Ok(if self.config.batch_first { (b, a) } else { (a, b) })
            }
            _ => Err(LayerError::Shape {
                layer: self.name(),
                expected: if self.config.batch_first {
                    format!("(batch >= 1, seq >= 1, {features})")
                } else {
                    format!("(seq >= 1, batch >= 1, {features})")
                },
                actual: input.shape().to_vec(),
            }),
        }
    }

    /// Checks an initial state against `(num_layers·directions, batch, hidden)`.
    fn check_state(&self, what: &str, state: Option<&Tensor>, batch: usize) -> Result<()> {
        let expected = self.state_shape(batch);
        match state {
            Some(state) if state.shape() != expected => Err(LayerError::Shape {
                layer: format!("{} ({what})", self.name()),
                expected: format!("{expected:?} (num_layers·directions, batch, hidden)"),
                actual: state.shape().to_vec(),
            }),
            _ => Ok(()),
        }
    }

    fn dims<'a>(&self, seq: usize, batch: usize, lengths: Option<&'a [usize]>) -> Dims<'a> {
        Dims { seq, batch, hidden: self.config.hidden_size, directions: self.config.directions(), lengths }
    }

    /// Checks the lengths against `batch` rows of `seq` steps.
    fn check_lengths(&self, lengths: Option<&[usize]>, seq: usize, batch: usize) -> Result<()> {
        match lengths {
            Some(lengths) if lengths.len() != batch || lengths.iter().any(|&len| len == 0 || len > seq) => {
                Err(LayerError::Shape {
                    layer: format!("{} (lengths)", self.name()),
                    expected: format!("{batch} lengths in 1..={seq}, one per batch row"),
                    actual: lengths.to_vec(),
                })
            }
            _ => Ok(()),
        }
    }

    /// The input of layer `layer` in the last forward, time-major.
    fn layer_input<'a>(&'a self, layer: usize, input: &'a Tensor) -> &'a [f32] {
        match layer {
            0 if self.config.batch_first => &self.x_time_major,
            0 => input.data(),
            _ if self.dropped => self.dropouts[layer - 1].output().data(),
            _ => self.layer_out[layer - 1].data(),
        }
    }

    /// Runs `units` layer after layer into `layer_out`, each layer's output through its
    /// dropout when training.
    fn forward_layers(
        &mut self,
        units: &mut [Unit],
        input: &Tensor,
        mode: Mode,
        dims: Dims<'_>,
    ) -> Result<()> {
        let (seq, batch, hidden, directions) = (dims.seq, dims.batch, dims.hidden, dims.directions);
        let bh = batch * hidden;
        for layer in 0..self.config.num_layers {
            // This layer's output buffer leaves `self` too, while the layer below is read.
            let mut out = std::mem::take(&mut self.layer_out[layer]);
            out.resize(&[seq, batch, directions * hidden]);
            for direction in 0..directions {
                let index = layer * directions + direction;
                let range = index * bh..(index + 1) * bh;
                let initial = (state_rows(&self.h0, range.clone()), state_rows(&self.c0, range));
                let x = self.layer_input(layer, input);
                let result = units[index].forward(self.cell, dims, direction, x, initial, out.data_mut());
                if result.is_err() {
                    self.layer_out[layer] = out;
                    return result;
                }
            }
            if self.dropped && layer + 1 < self.config.num_layers {
                self.dropouts[layer].forward(&out, mode)?;
            }
            self.layer_out[layer] = out;
        }
        Ok(())
    }

    /// Back-propagates `grad_out` (the last layer's output gradient, time-major) down the
    /// layers into `grad_in` (the first layer's input gradient, when wanted).
    fn backward_layers(&mut self, pass: &mut BackwardPass, input: &Tensor, dims: Dims<'_>) -> Result<()> {
        let (seq, batch, hidden, directions) = (dims.seq, dims.batch, dims.hidden, dims.directions);
        let bh = batch * hidden;
        let lstm = self.cell == Cell::Lstm;
        for layer in (0..self.config.num_layers).rev() {
            let input_size = pass.units[layer * directions].input_size;
            let needs_dx = layer > 0 || self.input_grad;
            let mut grad_in = std::mem::take(&mut self.grad_in);
            let grad_in_shape = if needs_dx { [seq, batch, input_size] } else { [0, 0, 0] };
            grad_in.resize(&grad_in_shape);
            for direction in 0..directions {
                let index = layer * directions + direction;
                let x = self.layer_input(layer, input);
                let dx = needs_dx.then_some(grad_in.data_mut());
                let dh0 = &mut pass.grad_h0.data_mut()[index * bh..(index + 1) * bh];
                let dc0 = if lstm {
                    &mut pass.grad_c0.data_mut()[index * bh..(index + 1) * bh]
                } else {
                    &mut [][..]
                };
                let range = index * bh..(index + 1) * bh;
                let final_grads =
                    (state_rows(&self.grad_h_n, range.clone()), state_rows(&self.grad_c_n, range));
                let dout = (self.grad_out.data(), final_grads.0, final_grads.1);
                let (unit, steps) = (&mut pass.units[index], &mut pass.steps);
                let result = unit.backward(
                    self.cell,
                    dims,
                    direction,
                    x,
                    dout,
                    steps,
                    (dx, direction == 1),
                    (dh0, dc0),
                );
                if result.is_err() {
                    self.grad_in = grad_in;
                    return result;
                }
            }
            if layer > 0 {
                // ∂L/∂(output of the layer below), through its dropout if one was applied.
                if self.dropped {
                    let dropout = &mut self.dropouts[layer - 1];
                    let result = dropout.backward(&self.layer_out[layer - 1], &grad_in);
                    if result.is_err() {
                        self.grad_in = grad_in;
                        return result;
                    }
                    let dropped = dropout.grad_input();
                    self.grad_out.resize(dropped.shape());
                    self.grad_out.data_mut().copy_from_slice(dropped.data());
                } else {
                    std::mem::swap(&mut self.grad_out, &mut grad_in);
                }
            }
            self.grad_in = grad_in;
        }
        Ok(())
    }

    /// [`Layer::forward`] with the lengths (moved out of `self` for the pass).
    fn forward_with(&mut self, input: &Tensor, mode: Mode, lengths: Option<&[usize]>) -> Result<()> {
        let (seq, batch) = self.dims_of(input)?;
        // Until this forward succeeds, there is nothing to back-propagate.
        self.last = None;
        self.check_state("h0", self.h0.as_ref(), batch)?;
        if self.cell == Cell::Lstm {
            self.check_state("c0", self.c0.as_ref(), batch)?;
        }
        self.check_lengths(lengths, seq, batch)?;
        let dims = self.dims(seq, batch, lengths);
        let (hidden, directions) = (dims.hidden, dims.directions);
        let bh = batch * hidden;
        if self.config.batch_first {
            self.x_time_major.resize(input.len(), 0.0);
            swap_axes(input.data(), (batch, seq, self.config.input_size), &mut self.x_time_major);
        }
        self.dropped = mode == Mode::Train && self.config.dropout > 0.0;
        // The units leave `self` for the pass, so that their inputs can borrow the rest.
        let mut units = std::mem::take(&mut self.units);
        let result = self.forward_layers(&mut units, input, mode, dims);
        self.units = units;
        result?;
        // Final states, (num_layers·directions, batch, hidden).
        let state_shape = self.state_shape(batch);
        self.h_n.resize(&state_shape);
        let lstm = self.cell == Cell::Lstm;
        self.c_n.resize(if lstm { &state_shape[..] } else { &[0][..] });
        for (index, unit) in self.units.iter().enumerate() {
            let h = &mut self.h_n.data_mut()[index * bh..(index + 1) * bh];
            let c = if lstm { &mut self.c_n.data_mut()[index * bh..(index + 1) * bh] } else { &mut [][..] };
            unit.final_states(dims, h, c);
        }
        let last = &mut self.layer_out[self.config.num_layers - 1];
        if self.config.batch_first {
            self.output.resize(&[batch, seq, directions * hidden]);
            swap_axes(last.data(), (seq, batch, directions * hidden), self.output.data_mut());
        } else {
            // The last layer's output is read by nothing else: it becomes the output, and the
            // old output's buffer the next forward's.
            std::mem::swap(&mut self.output, last);
        }
        self.last = Some((seq, batch));
        Ok(())
    }

    /// [`Layer::backward`] with the lengths (moved out of `self` for the pass).
    fn backward_with(
        &mut self,
        input: &Tensor,
        grad_output: &Tensor,
        lengths: Option<&[usize]>,
    ) -> Result<()> {
        let (seq, batch) = self.dims_of(input)?;
        if self.last != Some((seq, batch)) {
            return Err(LayerError::State(format!(
                "{}: backward without a forward on this input",
                self.name()
            )));
        }
        if grad_output.shape() != self.output.shape() {
            return Err(LayerError::Shape {
                layer: format!("{} (gradient)", self.name()),
                expected: format!("{:?}", self.output.shape()),
                actual: grad_output.shape().to_vec(),
            });
        }
        self.check_state("grad of h_n", self.grad_h_n.as_ref(), batch)?;
        if self.cell == Cell::Lstm {
            self.check_state("grad of c_n", self.grad_c_n.as_ref(), batch)?;
        }
        self.check_lengths(lengths, seq, batch)?;
        let dims = self.dims(seq, batch, lengths);
        let out_width = dims.directions * dims.hidden;
        self.grad_out.resize(&[seq, batch, out_width]);
        if self.config.batch_first {
            swap_axes(grad_output.data(), (batch, seq, out_width), self.grad_out.data_mut());
        } else {
            self.grad_out.data_mut().copy_from_slice(grad_output.data());
        }
        let state_shape = self.state_shape(batch);
        self.grad_h0.resize(&state_shape);
        let lstm = self.cell == Cell::Lstm;
        self.grad_c0.resize(if lstm { &state_shape[..] } else { &[0][..] });
        // The units and the state gradients leave `self` for the pass (see forward).
        let mut pass = BackwardPass {
            units: std::mem::take(&mut self.units),
            steps: std::mem::take(&mut self.steps),
            grad_h0: std::mem::take(&mut self.grad_h0),
            grad_c0: std::mem::take(&mut self.grad_c0),
        };
        let result = self.backward_layers(&mut pass, input, dims);
        BackwardPass { units: self.units, steps: self.steps, grad_h0: self.grad_h0, grad_c0: self.grad_c0 } =
            pass;
        result?;
        if !self.input_grad {
            self.grad_input.resize(&[0]);
        } else if self.config.batch_first {
            self.grad_input.resize(input.shape());
            swap_axes(self.grad_in.data(), (seq, batch, self.config.input_size), self.grad_input.data_mut());
        } else {
            std::mem::swap(&mut self.grad_input, &mut self.grad_in);
        }
        Ok(())
    }
}

/// What [`Stack::backward`] moves out of the stack for the pass.
struct BackwardPass {
    units: Vec<Unit>,
    steps: Vec<StepGrads>,
    grad_h0: Tensor,
    grad_c0: Tensor,
}

impl Layer for Stack {
    fn name(&self) -> String {
        let c = &self.config;
        let mut name = format!("{}({} -> {}", self.cell.name(), c.input_size, c.hidden_size);
        if c.num_layers > 1 {
            name += &format!(", {} layers", c.num_layers);
        }
        if c.bidirectional {
            name += ", bidirectional";
        }
        if c.batch_first {
            name += ", batch_first";
        }
        name + ")"
    }

    fn forward(&mut self, input: &Tensor, mode: Mode) -> Result<()> {
        // The lengths leave `self` for the pass, so that the dimensions can borrow them.
        let lengths = self.lengths.take();
        let result = self.forward_with(input, mode, lengths.as_deref());
        self.lengths = lengths;
        result
    }

    fn backward(&mut self, input: &Tensor, grad_output: &Tensor) -> Result<()> {
        ensure_forward_ran(&self.output, || self.name())?;
        let lengths = self.lengths.take();
        let result = self.backward_with(input, grad_output, lengths.as_deref());
        self.lengths = lengths;
        result
    }

    fn output(&self) -> &Tensor {
        &self.output
    }

    fn grad_input(&self) -> &Tensor {
        &self.grad_input
    }

    fn set_input_grad(&mut self, needed: bool) {
        self.input_grad = needed;
    }

    fn visit_params(&mut self, visit: &mut dyn FnMut(&str, &mut Param)) {
        for unit in &mut self.units {
            for (name, param) in unit.names.iter().zip(&mut unit.params) {
                visit(name, param);
            }
        }
    }
}
