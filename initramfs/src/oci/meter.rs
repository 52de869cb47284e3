//! Progress reports for one layer: its start, every [`PROGRESS_STEP`]
//! stored (compressed) bytes read, its end. The caller draws the bar.

use super::layer::ReadCounter;
use super::unpack::{Progress, Stage};

/// Progress is reported every this many stored bytes.
const PROGRESS_STEP: u64 = 4 << 20;

/// Sends [`Progress`] for one layer.
pub(crate) struct Meter<'p> {
    layer: usize,
    layers: usize,
    total: Option<u64>,
    counter: Option<ReadCounter>,
    last: u64,
    sink: &'p mut dyn FnMut(Progress),
}

impl<'p> Meter<'p> {
    pub(crate) fn new(
        layer: usize,
        layers: usize,
        total: Option<u64>,
        sink: &'p mut dyn FnMut(Progress),
    ) -> Meter<'p> {
        Meter {
            layer,
            layers,
            total,
            counter: None,
            last: 0,
            sink,
        }
    }

    fn send(&mut self, stage: Stage, read: u64) {
        (self.sink)(Progress {
            layer: self.layer,
            layers: self.layers,
            stage,
            read,
            total: self.total,
        });
    }

    pub(crate) fn start(&mut self, counter: ReadCounter) {
        self.counter = Some(counter);
        self.send(Stage::Start, 0);
    }

    /// Reports when another [`PROGRESS_STEP`] bytes were read.
    pub(crate) fn tick(&mut self) {
        let read = self.counter.as_ref().map_or(0, ReadCounter::get);
        if read >= self.last + PROGRESS_STEP {
            self.last = read;
            self.send(Stage::Reading, read);
        }
    }

    pub(crate) fn done(&mut self) {
        let read = self.counter.as_ref().map_or(0, ReadCounter::get);
        self.send(Stage::Done, read);
    }
}

impl std::fmt::Debug for Meter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("layer", &self.layer)
            .field("last", &self.last)
            .finish()
    }
}
