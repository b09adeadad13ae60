//! The time loop of one unit on one part of the batch (see [`super::parts`]): forward, each
//! step's recurrent GEMM then its fused cell; backward through time, each step's cell
//! backward then `dh_prev` through `W_hh`. Buffers are the part's blocks, `(seq, rows, ·)`
//! and `(seq + 1, rows, hidden)` for the states.

use keel_kernels::gemm::PackedB;
use keel_kernels::rnn;

use super::parts::{split_option, split_rows, split_rows_ref, Split};
use super::pass::{slot, slots, Cell, Dims, StepGrads};
use crate::error::Result;

/// What every step of a unit's forward shares.
pub(super) struct ForwardSteps<'a> {
    pub(super) cell: Cell,
    pub(super) seq: usize,
    pub(super) hidden: usize,
    /// Runs from the last step to the first.
    pub(super) reverse: bool,
    /// `weight_hh`, packed.
    pub(super) w_hh: &'a PackedB,
    pub(super) b_hh: &'a [f32],
}

/// A part's buffers for [`ForwardSteps::run`].
pub(super) struct ForwardBufs<'a> {
    /// Batch rows of the part.
    pub(super) rows: usize,
    /// `(seq, rows, G·H)`: the input projection, then each step's whole pre-activation.
    pub(super) gates: &'a mut [f32],
    /// GRU: `(seq, rows, 3·H)`, each step's recurrent projection; else empty.
    pub(super) hidden_gates: &'a mut [f32],
    /// `(seq, rows, cache_width·H)`.
    pub(super) cache: &'a mut [f32],
    /// `(seq + 1, rows, H)` hidden states; LSTM: cell states, else empty.
    pub(super) hs: &'a mut [f32],
    pub(super) cs: &'a mut [f32],
    /// The part's rows of the initial states `(rows, H)` (zero when `None`).
    pub(super) h0: Option<&'a [f32]>,
    pub(super) c0: Option<&'a [f32]>,
    /// The part's sequence lengths.
    pub(super) lengths: Option<&'a [usize]>,
}

impl ForwardSteps<'_> {
    /// Runs every step of one part.
    pub(super) fn run(&self, bufs: ForwardBufs<'_>) -> Result<()> {
        let Self { cell, seq, hidden, reverse, w_hh, b_hh } = *self;
        let ForwardBufs { rows: batch, gates, hidden_gates, cache, hs, cs, h0, c0, lengths } = bufs;
        let dims = Dims { seq, batch, hidden, directions: 1, lengths };
        let (width, bh) = (cell.gates() * hidden, batch * hidden);
        let cache_len = batch * cell.cache_width() * hidden;
        let first = if reverse { seq } else { 0 };
        for (buf, state) in [(&mut *hs, h0), (&mut *cs, c0)] {
            if !buf.is_empty() {
                let slot = &mut buf[first * bh..(first + 1) * bh];
                match state {
                    Some(state) => slot.copy_from_slice(state),
                    None => slot.fill(0.0),
                }
            }
        }
        for step in 0..seq {
            let t = if reverse { seq - 1 - step } else { step };
            let (h_prev, h_next) = slots(hs, bh, t, reverse);
            let gates = &mut gates[t * batch * width..(t + 1) * batch * width];
            let cache = &mut cache[t * cache_len..(t + 1) * cache_len];
            // The recurrent projection (one GEMM), then the fused cell.
            match cell {
                Cell::Rnn(nonlinearity) => {
                    rnn::projection_forward_packed(batch, hidden, width, h_prev, w_hh, b_hh, true, gates)?;
                    rnn::rnn_cell_forward(batch, hidden, nonlinearity, gates, h_next)?;
                }
                Cell::Lstm => {
                    rnn::projection_forward_packed(batch, hidden, width, h_prev, w_hh, b_hh, true, gates)?;
                    let (c_prev, c_next) = slots(cs, bh, t, reverse);
                    rnn::lstm_cell_forward(batch, hidden, gates, c_prev, c_next, h_next, cache)?;
                }
                Cell::Gru => {
                    let gh = &mut hidden_gates[t * batch * width..(t + 1) * batch * width];
                    rnn::projection_forward_packed(batch, hidden, width, h_prev, w_hh, b_hh, false, gh)?;
                    rnn::gru_cell_forward(batch, hidden, gates, gh, h_prev, h_next, cache)?;
                }
            }
            // Rows whose sequence has ended keep their state (so the final state is the one at
            // their last step, and the reverse direction starts there from the initial one).
            for b in dims.rows_past_end(t) {
                h_next[b * hidden..(b + 1) * hidden].copy_from_slice(&h_prev[b * hidden..(b + 1) * hidden]);
                if cell == Cell::Lstm {
                    let (c_prev, c_next) = slots(cs, bh, t, reverse);
                    c_next[b * hidden..(b + 1) * hidden]
                        .copy_from_slice(&c_prev[b * hidden..(b + 1) * hidden]);
                }
            }
        }
        Ok(())
    }
}

impl Split for ForwardBufs<'_> {
    fn split(self, _parts: usize, rows: usize) -> (Self, Self) {
        let ForwardBufs { rows: all, gates, hidden_gates, cache, hs, cs, h0, c0, lengths } = self;
        let (gates, hidden_gates) = (split_rows(gates, rows, all), split_rows(hidden_gates, rows, all));
        let (cache, hs, cs) =
            (split_rows(cache, rows, all), split_rows(hs, rows, all), split_rows(cs, rows, all));
        let (h0, c0) = (split_option(h0, rows, all), split_option(c0, rows, all));
        let lengths = split_option(lengths, rows, all);
        let lo = ForwardBufs {
            rows,
            gates: gates.0,
            hidden_gates: hidden_gates.0,
            cache: cache.0,
            hs: hs.0,
            cs: cs.0,
            h0: h0.0,
            c0: c0.0,
            lengths: lengths.0,
        };
        let hi = ForwardBufs {
            rows: all - rows,
            gates: gates.1,
            hidden_gates: hidden_gates.1,
            cache: cache.1,
            hs: hs.1,
            cs: cs.1,
            h0: h0.1,
            c0: c0.1,
            lengths: lengths.1,
        };
        (lo, hi)
    }
}

/// What every step of a unit's backward through time shares.
pub(super) struct BackwardSteps<'a> {
    pub(super) cell: Cell,
    pub(super) seq: usize,
    pub(super) hidden: usize,
    pub(super) reverse: bool,
    /// `weight_hh (G·H, H)`.
    pub(super) w_hh: &'a [f32],
    /// `∂L/∂output (seq, batch, directions·H)` of the whole batch, and this unit's columns in
    /// it (`direction·H..`).
    pub(super) dout: &'a [f32],
    pub(super) batch: usize,
    pub(super) out_width: usize,
    pub(super) direction: usize,
}

/// A part's buffers for [`BackwardSteps::run`].
pub(super) struct BackwardBufs<'a> {
    /// Batch rows of the part.
    pub(super) rows: usize,
    /// `(seq, rows, G·H)`: overwritten with the gate gradients (GRU: `dgi`).
    pub(super) gates: &'a mut [f32],
    /// GRU: `(seq, rows, 3·H)`, overwritten with `dgh`; else empty.
    pub(super) hidden_gates: &'a mut [f32],
    /// The forward's cache and states.
    pub(super) cache: &'a [f32],
    pub(super) hs: &'a [f32],
    pub(super) cs: &'a [f32],
    /// One workspace per part.
    pub(super) ws: &'a mut [StepGrads],
    /// `(rows, H)`: overwritten with the gradients of the initial states (`dc0` LSTM only).
    pub(super) dh0: &'a mut [f32],
    pub(super) dc0: &'a mut [f32],
    /// `(rows, H)`: the gradients of the final states (zero when `None`).
    pub(super) dh_n: Option<&'a [f32]>,
    pub(super) dc_n: Option<&'a [f32]>,
    pub(super) lengths: Option<&'a [usize]>,
}

impl BackwardSteps<'_> {
    /// Runs every step of one part, from its last in the forward's order to its first; the
    /// part's rows start at batch row `first_row`.
    pub(super) fn run(&self, first_row: usize, bufs: BackwardBufs<'_>) -> Result<()> {
        let Self { cell, seq, hidden, reverse, w_hh, dout, batch: all_rows, out_width, direction } = *self;
        let BackwardBufs {
            rows: batch,
            gates,
            hidden_gates,
            cache,
            hs,
            cs,
            ws,
            dh0,
            dc0,
            dh_n,
            dc_n,
            lengths,
        } = bufs;
        let ws = &mut ws[0];
        let dims = Dims { seq, batch, hidden, directions: 1, lengths };
        let (width, bh) = (cell.gates() * hidden, batch * hidden);
        let cache_len = batch * cell.cache_width() * hidden;
        for buf in [&mut ws.dh, &mut ws.carry, &mut ws.dc, &mut ws.dc_prev] {
            buf.resize(bh, 0.0);
        }
        // The carries start from the final states' gradients.
        for (carry, given) in [(&mut ws.carry, dh_n), (&mut ws.dc, dc_n)] {
            match given {
                Some(given) => carry.copy_from_slice(given),
                None => carry.fill(0.0),
            }
        }
        // Steps in the reverse of their forward order.
        for step in 0..seq {
            let t = if reverse { step } else { seq - 1 - step };
            // dh = ∂L/∂output at t (this direction's columns) + the carry from the step after.
            for (b, (dh, carry)) in
                ws.dh.chunks_exact_mut(hidden).zip(ws.carry.chunks_exact(hidden)).enumerate()
            {
                if dims.past_end(b, t) {
                    // The output is a constant 0 there: only the carry passes.
                    dh.copy_from_slice(carry);
                } else {
                    let row = t * all_rows + first_row + b;
                    let dy = &dout[row * out_width + direction * hidden..][..hidden];
                    dh.iter_mut().zip(dy).zip(carry).for_each(|((dh, dy), carry)| *dh = dy + carry);
                }
            }
            let gates = &mut gates[t * batch * width..(t + 1) * batch * width];
            let cache = &cache[t * cache_len..(t + 1) * cache_len];
            let (before, after) = if reverse { (t + 1, t) } else { (t, t + 1) };
            // The cell backward into the gate gradients, then dh_prev through W_hh.
            match cell {
                Cell::Rnn(nonlinearity) => {
                    let h_next = slot(hs, bh, after);
                    rnn::rnn_cell_backward(batch, hidden, nonlinearity, h_next, &ws.dh, gates)?;
                    rnn::projection_backward_data(batch, hidden, width, gates, w_hh, false, &mut ws.carry)?;
                }
                Cell::Lstm => {
                    let c_prev = slot(cs, bh, before);
                    let dc = Some(&ws.dc[..]);
                    rnn::lstm_cell_backward(
                        batch,
                        hidden,
                        cache,
                        c_prev,
                        &ws.dh,
                        dc,
                        gates,
                        &mut ws.dc_prev,
                    )?;
                    std::mem::swap(&mut ws.dc, &mut ws.dc_prev);
                    rnn::projection_backward_data(batch, hidden, width, gates, w_hh, false, &mut ws.carry)?;
                }
                Cell::Gru => {
                    let h_prev = slot(hs, bh, before);
                    let dgh = &mut hidden_gates[t * batch * width..(t + 1) * batch * width];
                    // The direct part z⊙dh' into the carry, then + dgh·W_hh.
                    rnn::gru_cell_backward(batch, hidden, cache, h_prev, &ws.dh, gates, dgh, &mut ws.carry)?;
                    rnn::projection_backward_data(batch, hidden, width, dgh, w_hh, true, &mut ws.carry)?;
                }
            }
            // Rows whose sequence has ended did not step: no gate gradient (so no parameter or
            // input gradient), and the carries pass through unchanged.
            for b in dims.rows_past_end(t) {
                gates[b * width..(b + 1) * width].fill(0.0);
                if cell == Cell::Gru {
                    hidden_gates[(t * batch + b) * width..(t * batch + b + 1) * width].fill(0.0);
                }
                let row = b * hidden..(b + 1) * hidden;
                ws.carry[row.clone()].copy_from_slice(&ws.dh[row.clone()]);
                if cell == Cell::Lstm {
                    // After the swap, dc_prev holds the dc this step received.
                    ws.dc[row.clone()].copy_from_slice(&ws.dc_prev[row]);
                }
            }
        }
        dh0.copy_from_slice(&ws.carry);
        if cell == Cell::Lstm {
            dc0.copy_from_slice(&ws.dc);
        }
        Ok(())
    }
}

impl Split for BackwardBufs<'_> {
    fn split(self, parts: usize, rows: usize) -> (Self, Self) {
        let BackwardBufs { rows: all, gates, hidden_gates, cache, hs, cs, ws, dh0, dc0, dh_n, dc_n, lengths } =
            self;
        let (gates, hidden_gates) = (split_rows(gates, rows, all), split_rows(hidden_gates, rows, all));
        let (cache, hs) = (split_rows_ref(cache, rows, all), split_rows_ref(hs, rows, all));
        let (cs, ws) = (split_rows_ref(cs, rows, all), ws.split_at_mut(parts));
        let (dh0, dc0) = (split_rows(dh0, rows, all), split_rows(dc0, rows, all));
        let (dh_n, dc_n) = (split_option(dh_n, rows, all), split_option(dc_n, rows, all));
        let lengths = split_option(lengths, rows, all);
        let lo = BackwardBufs {
            rows,
            gates: gates.0,
            hidden_gates: hidden_gates.0,
            cache: cache.0,
            hs: hs.0,
            cs: cs.0,
            ws: ws.0,
            dh0: dh0.0,
            dc0: dc0.0,
            dh_n: dh_n.0,
            dc_n: dc_n.0,
            lengths: lengths.0,
        };
        let hi = BackwardBufs {
            rows: all - rows,
            gates: gates.1,
            hidden_gates: hidden_gates.1,
            cache: cache.1,
            hs: hs.1,
            cs: cs.1,
            ws: ws.1,
            dh0: dh0.1,
            dc0: dc0.1,
            dh_n: dh_n.1,
            dc_n: dc_n.1,
            lengths: lengths.1,
        };
        (lo, hi)
    }
}
