//! What the passes of a recurrent stack share: the cell kind, the sizes of a pass, the state
//! slots of a `(seq + 1, batch, hidden)` buffer, and the per-part workspaces of backward
//! through time.

use keel_kernels::rnn::{self, Nonlinearity, GRU_CACHE_WIDTH, LSTM_CACHE_WIDTH};

/// Which cell a stack runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cell {
    /// PyTorch `nn.RNN` with its non-linearity.
    Rnn(Nonlinearity),
    /// PyTorch `nn.GRU`.
    Gru,
    /// PyTorch `nn.LSTM`.
    Lstm,
}

impl Cell {
    /// Gate blocks per step: the rows of `weight_ih` are `gates·hidden`.
    pub(super) fn gates(self) -> usize {
        match self {
            Cell::Rnn(_) => rnn::RNN_GATES,
            Cell::Gru => rnn::GRU_GATES,
            Cell::Lstm => rnn::LSTM_GATES,
        }
    }

    /// Cache width per step in units of `hidden` (the plain RNN's cache is its output `h'`).
    pub(super) fn cache_width(self) -> usize {
        match self {
            Cell::Rnn(_) => 0,
            Cell::Gru => GRU_CACHE_WIDTH,
            Cell::Lstm => LSTM_CACHE_WIDTH,
        }
    }

    pub(super) fn name(self) -> String {
        match self {
            Cell::Rnn(nonlinearity) => format!("rnn_{}", nonlinearity.name()),
            Cell::Gru => "gru".to_owned(),
            Cell::Lstm => "lstm".to_owned(),
        }
    }
}

/// The sizes of one pass: `seq` steps of `batch` rows, `hidden` units, `directions` of them,
/// and each row's sequence length when the sequences are of different lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Dims<'a> {
    pub(super) seq: usize,
    pub(super) batch: usize,
    pub(super) hidden: usize,
    pub(super) directions: usize,
    pub(super) lengths: Option<&'a [usize]>,
}

impl Dims<'_> {
    /// The batch rows whose sequence has ended before step `t` (none without lengths).
    pub(super) fn rows_past_end(&self, t: usize) -> impl Iterator<Item = usize> + '_ {
        let lengths = self.lengths.unwrap_or(&[]);
        lengths.iter().enumerate().filter(move |&(_, &len)| t >= len).map(|(b, _)| b)
    }

    /// Whether row `b` has ended before step `t`.
    pub(super) fn past_end(&self, b: usize, t: usize) -> bool {
        self.lengths.is_some_and(|lengths| t >= lengths[b])
    }
}

/// The state slots `(before, after)` of step `t` in a `(seq + 1, batch, hidden)` buffer of
/// `bh = batch·hidden` blocks: slot `t` before and `t + 1` after going forward in time;
/// `t + 1` before and `t` after going backward (the reverse direction).
pub(super) fn slots(buf: &mut [f32], bh: usize, t: usize, reverse: bool) -> (&mut [f32], &mut [f32]) {
    let (lo, hi) = buf[t * bh..(t + 2) * bh].split_at_mut(bh);
    if reverse {
        (hi, lo)
    } else {
        (lo, hi)
    }
}

/// The read-only slot `t + offset` of a `(seq + 1, batch, hidden)` buffer.
pub(super) fn slot(buf: &[f32], bh: usize, t: usize) -> &[f32] {
    &buf[t * bh..(t + 1) * bh]
}

/// Backward workspaces of one step, `(batch, hidden)` each, one per part of the batch, shared by the units.
#[derive(Debug, Clone, Default)]
pub(super) struct StepGrads {
    /// `∂L/∂h` at the step: the output's gradient plus the one carried from the step after.
    pub(super) dh: Vec<f32>,
    /// `∂L/∂h_prev` carried to the step before.
    pub(super) carry: Vec<f32>,
    /// LSTM: `∂L/∂c` carried to the step before, and the one being written.
    pub(super) dc: Vec<f32>,
    pub(super) dc_prev: Vec<f32>,
}
