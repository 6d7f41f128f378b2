//! Host-only nested vCPU analysis (virtFlow) — in progress.
use crate::{EventFields, ProviderError, StateProvider, Subscription, TraceInfo};
use sht::StateSystemBuilder;

pub const ID: &str = "org.eclipse.tracecompass.incubator.virtual.machine.analysis.VMblockAnalysis";

#[derive(Default)]
pub struct NestedVcpuProvider {}

impl NestedVcpuProvider {
    pub fn new() -> Self {
        Self::default()
    }
}

impl StateProvider for NestedVcpuProvider {
    fn id(&self) -> &'static str {
        ID
    }
    fn version(&self) -> i32 {
        2
    }
    fn check_trace(&mut self, _trace: &TraceInfo) -> Result<(), ProviderError> {
        Ok(())
    }
    fn subscribe(&mut self, _event_name: &str) -> Option<Subscription> {
        None
    }
    fn handle(
        &mut self,
        _h: u32,
        _ev: &dyn EventFields,
        _ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        Ok(())
    }
}
