//! The blackhole sink: discards everything (benchmarks, dry runs).

use std::sync::Arc;

use cairn_wire::PackedBatch;

use super::{
    ConnectorError, Options, SinkConnector, SinkKind, SinkStart, SinkState, SinkWriter, Subtask,
};

pub(super) const SINK: SinkKind = SinkKind {
    name: "blackhole",
    options: &[],
    from_options,
    describe: |_| "discards everything".to_owned(),
};

fn from_options(_: &Options) -> Result<Arc<dyn SinkConnector>, ConnectorError> {
    Ok(Arc::new(Blackhole))
}

#[derive(Debug)]
struct Blackhole;

impl SinkConnector for Blackhole {
    fn open(&self, _: Subtask, _: SinkStart) -> Result<Box<dyn SinkWriter>, ConnectorError> {
        Ok(Box::new(Blackhole))
    }
}

impl SinkWriter for Blackhole {
    fn write(&mut self, _batch: &PackedBatch) -> Result<(), ConnectorError> {
        Ok(())
    }

    fn prepare(&mut self, _checkpoint: u64) -> Result<SinkState, ConnectorError> {
        Ok(SinkState::empty())
    }

    fn commit(&mut self, _checkpoint: u64) -> Result<(), ConnectorError> {
        Ok(())
    }

    fn abort(&mut self) {}
}
