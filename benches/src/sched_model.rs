//! A small kernel scheduling model written twice: as a Trace Compass XML state
//! provider and as a native [`StateProvider`] with the same logic. Running both over
//! one trace compares the XML interpreter with hand-written Rust (the XML issue's
//! ">= 50% of native speed" figure), in the criterion bench `xml_vs_native` and in
//! `sextant bench xml`.
//!
//! The model: on `sched_switch`, `CPUs/<cpu>/Current_thread` = next_tid,
//! `CPUs/<cpu>/Status` = 0 (idle) or 1 (running), `Threads/<prev_tid>/Status` =
//! prev_state, `Threads/<next_tid>/Status` = 2.

use std::path::Path;
use std::sync::Arc;

use sextant_providers::{EventFields, ProviderError, StateProvider, Subscription, TraceInfo};
use sht::{StateSystemBuilder, StateValue};

/// The model as an XML analysis (analysis id `bench.sched.xml`).
pub const SCHED_XML: &str = r#"<tmfxml>
<stateProvider id="bench.sched.xml" version="1">
  <location id="CurrentCPU">
    <stateAttribute type="constant" value="CPUs"/>
    <stateAttribute type="eventField" value="cpu"/>
  </location>
  <eventHandler eventName="sched_switch">
    <stateChange>
      <stateAttribute type="location" value="CurrentCPU"/>
      <stateAttribute type="constant" value="Current_thread"/>
      <stateValue type="eventField" value="next_tid"/>
    </stateChange>
    <stateChange>
      <if><condition><field name="next_tid"/><stateValue type="long" value="0"/></condition></if>
      <then>
        <stateAttribute type="location" value="CurrentCPU"/>
        <stateAttribute type="constant" value="Status"/>
        <stateValue type="int" value="0"/>
      </then>
      <else>
        <stateAttribute type="location" value="CurrentCPU"/>
        <stateAttribute type="constant" value="Status"/>
        <stateValue type="int" value="1"/>
      </else>
    </stateChange>
    <stateChange>
      <stateAttribute type="constant" value="Threads"/>
      <stateAttribute type="eventField" value="prev_tid"/>
      <stateAttribute type="constant" value="Status"/>
      <stateValue type="eventField" value="prev_state"/>
    </stateChange>
    <stateChange>
      <stateAttribute type="constant" value="Threads"/>
      <stateAttribute type="eventField" value="next_tid"/>
      <stateAttribute type="constant" value="Status"/>
      <stateValue type="long" value="2"/>
    </stateChange>
  </eventHandler>
</stateProvider>
</tmfxml>"#;

/// The same model, written by hand.
pub struct NativeSched {
    /// Subscribe to the same event but do nothing: the cost of reading alone.
    pub noop: bool,
}

impl StateProvider for NativeSched {
    fn id(&self) -> &'static str {
        if self.noop {
            "bench.noop"
        } else {
            "bench.sched.native"
        }
    }
    fn version(&self) -> i32 {
        1
    }
    fn check_trace(&mut self, _: &TraceInfo) -> Result<(), ProviderError> {
        Ok(())
    }
    fn subscribe(&mut self, event_name: &str) -> Option<Subscription> {
        (event_name == "sched_switch").then(|| Subscription {
            handler: 0,
            fields: vec!["next_tid", "prev_tid", "prev_state"],
        })
    }
    fn handle(
        &mut self,
        _: u32,
        ev: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        if self.noop {
            return Ok(());
        }
        let t = ev.timestamp();
        let (Some(cpu), Some(next), Some(prev), Some(state)) =
            (ev.cpu(), ev.int(0), ev.int(1), ev.int(2))
        else {
            return Ok(());
        };
        let cpu = path(ss, &["CPUs", &cpu.to_string()])?;
        let q = child(ss, cpu, "Current_thread")?;
        ss.modify(t, StateValue::Long(next), q)?;
        let q = child(ss, cpu, "Status")?;
        ss.modify(t, StateValue::Int(i32::from(next != 0)), q)?;
        let q = path(ss, &["Threads", &prev.to_string(), "Status"])?;
        ss.modify(t, StateValue::Long(state), q)?;
        let q = path(ss, &["Threads", &next.to_string(), "Status"])?;
        ss.modify(t, StateValue::Long(2), q)
    }
}

/// A well-written native provider looks attributes up before creating them.
fn child(ss: &mut dyn StateSystemBuilder, parent: i32, name: &str) -> sht::Result<i32> {
    path_from(ss, parent, &[name])
}

fn path(ss: &mut dyn StateSystemBuilder, p: &[&str]) -> sht::Result<i32> {
    path_from(ss, sht::ROOT_QUARK, p)
}

fn path_from(ss: &mut dyn StateSystemBuilder, parent: i32, p: &[&str]) -> sht::Result<i32> {
    let q = ss.attributes().opt_quark(parent, p);
    if q >= 0 {
        return Ok(q);
    }
    ss.quark_relative_and_add(parent, p)
}

/// The XML model compiled, ready to make providers from.
pub fn xml_program() -> Arc<sextant_xml::Program> {
    let file = sextant_xml::load_bytes(SCHED_XML.as_bytes(), Path::new("bench.xml"))
        .expect("the built-in XML model compiles");
    Arc::clone(&file.analyses[0])
}

/// A provider running the XML model.
pub fn xml_provider(program: &Arc<sextant_xml::Program>) -> Box<dyn StateProvider> {
    Box::new(sextant_xml::provider::XmlProvider::new(Arc::clone(program)))
}
