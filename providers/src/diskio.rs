//! Disk I/O analysis (in progress).
pub const DISKIO_ANALYSIS_ID: &str = "org.eclipse.tracecompass.analysis.os.linux.inputoutput";
pub struct DiskIoStateProvider;
impl DiskIoStateProvider {
    pub fn new() -> Self {
        DiskIoStateProvider
    }
}
impl crate::StateProvider for DiskIoStateProvider {
    fn id(&self) -> &'static str {
        DISKIO_ANALYSIS_ID
    }
    fn version(&self) -> i32 {
        4
    }
    fn check_trace(&mut self, _: &crate::TraceInfo) -> Result<(), crate::ProviderError> {
        Ok(())
    }
    fn subscribe(&mut self, _: &str) -> Option<crate::Subscription> {
        None
    }
    fn handle(
        &mut self,
        _: u32,
        _: &dyn crate::EventFields,
        _: &mut dyn sht::StateSystemBuilder,
    ) -> sht::Result<()> {
        Ok(())
    }
}
