//! Native state providers (Linux kernel, disk I/O, virtual machines, OpenStack, ...).
//!
//! A [`StateProvider`] turns events into state changes on an `sht`
//! [`StateSystemBuilder`]. It never looks fields up by name per event: when a
//! trace is opened, the pipeline offers it each event class once
//! ([`StateProvider::subscribe`]); the provider answers with a handler number and
//! the names of the fields it wants ([`Subscription`]). For every event of that
//! class, the pipeline then calls [`StateProvider::handle`] with that handler and
//! an [`EventFields`] view whose slot `i` is the `i`-th requested field, resolved
//! once to the trace's own field handles. The [`Registry`] lists providers by id,
//! so new providers plug in without touching the pipeline.
//!
//! Data flow: [`sources::open`] (CTF experiment or XML stub trace) ->
//! [`pipeline::build`] -> providers from [`native_registry`]
//! ([`kernel::KernelStateProvider`], [`diskio::DiskIoStateProvider`], [`vm`],
//! [`openstack`], [`qemu_migration`], [`ovs`]) ->
//! `sht` state systems and `.ht` files.

pub mod diskio;
pub mod kernel;
pub mod kvm_exits;
pub mod live_source;
pub mod openstack;
pub mod ovs;
pub mod pipeline;
pub mod pydict;
pub mod qemu_migration;
pub mod sources;
pub mod stub_source;
#[cfg(test)]
pub(crate) mod testsource;
pub mod vm;

use std::collections::BTreeMap;

use sht::StateSystemBuilder;

/// What a provider knows of a trace before its events: enough to pick an event
/// layout (tracer name and version) and to name the state system.
#[derive(Clone, Debug, Default)]
pub struct TraceInfo {
    /// Trace name (directory or file name).
    pub name: String,
    /// `kernel`, `ust`, or empty when unknown (the CTF `env.domain`).
    pub domain: String,
    /// The CTF environment (`tracer_name`, `tracer_major`, `hostname`, ...), as text.
    pub env: BTreeMap<String, String>,
    /// In an experiment, the host id of each trace, by trace index (see
    /// [`EventFields::trace_index`]); empty for a single trace. Analyses spanning
    /// machines (virtual machines) tell hosts apart by it.
    pub hosts: Vec<String>,
}

impl TraceInfo {
    pub fn env_str(&self, key: &str) -> Option<&str> {
        self.env.get(key).map(String::as_str)
    }

    pub fn env_int(&self, key: &str) -> Option<i64> {
        self.env.get(key).and_then(|v| v.parse().ok())
    }
}

/// A provider's interest in one event class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// Passed back to [`StateProvider::handle`]; the provider's own numbering.
    pub handler: u32,
    /// Field names (as Trace Compass names them: TSDL names without the leading
    /// underscore) whose values the handler reads, by slot, in this order.
    pub fields: Vec<&'static str>,
}

/// One event as a provider sees it. Field slots are those of the event class's
/// [`Subscription`]; a missing field, or one of another kind, reads as `None`.
pub trait EventFields {
    /// Nanoseconds (after clock conversion and, in experiments, synchronization).
    fn timestamp(&self) -> i64;
    /// CPU the event happened on (the stream's `cpu_id`, or the stub trace's `cpu`).
    fn cpu(&self) -> Option<u32>;
    /// Integer (or enumeration) field value.
    fn int(&self, slot: usize) -> Option<i64>;
    /// String (or text array) field value.
    fn string(&self, slot: usize) -> Option<&str>;
    /// In an experiment, which trace the event comes from (index into
    /// [`TraceInfo::hosts`]); 0 for a single trace.
    fn trace_index(&self) -> usize {
        0
    }
}

/// Errors a provider reports (which analysis, which event or field).
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("{analysis}: {what}")]
    Unsupported { analysis: String, what: String },
    #[error("{analysis}: at {timestamp} ns: {source}")]
    State {
        analysis: String,
        timestamp: i64,
        #[source]
        source: sht::Error,
    },
}

/// Turns events into state (Trace Compass `ITmfStateProvider`).
pub trait StateProvider: Send {
    /// Analysis id (Trace Compass's where one exists; also the `.ht` file name).
    fn id(&self) -> &'static str;
    /// Provider version written in the `.ht` header; Trace Compass reuses a file
    /// only if it matches its own provider's.
    fn version(&self) -> i32;
    /// Whether this provider applies to the trace (checked before subscribing);
    /// an error says why not, for the user.
    fn check_trace(&mut self, trace: &TraceInfo) -> Result<(), ProviderError>;
    /// Called once per event class; `None` means the provider ignores that class.
    fn subscribe(&mut self, event_name: &str) -> Option<Subscription>;
    /// Called once all classes were offered, with the (event, field) pairs this
    /// provider subscribed to that the trace lacks: a provider that cannot work
    /// without some event or field says so here (which analysis, which event or
    /// field) instead of producing an empty history.
    fn check_subscriptions(
        &self,
        _missing: &[(String, &'static str)],
    ) -> Result<(), ProviderError> {
        Ok(())
    }
    /// Handles one event of a subscribed class.
    fn handle(
        &mut self,
        handler: u32,
        event: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()>;
    /// Called once after the last event, before the history is closed: providers
    /// that hold events back (to look ahead in time) write them out here.
    fn finish(&mut self, _ss: &mut dyn StateSystemBuilder) -> sht::Result<()> {
        Ok(())
    }
    /// What the provider skipped (events it could not apply), for the user.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
    /// Whether the analysis needs the whole experiment (a host trace with its
    /// guests' traces) read as one source: a server runs it once per experiment,
    /// not per trace (Trace Compass's experiment analyses).
    fn experiment_analysis(&self) -> bool {
        false
    }
}

/// A warning for analyses that Trace Compass runs per trace when the source mixes
/// several machines (their CPUs and threads then share attributes).
pub fn several_machines_warning(trace: &TraceInfo) -> Option<String> {
    let mut hosts: Vec<&str> = trace.hosts.iter().map(String::as_str).collect();
    hosts.sort_unstable();
    hosts.dedup();
    (hosts.len() > 1).then(|| {
        format!(
            "the traces come from {} machines ({}): their CPUs and threads are mixed in one \
             history (Trace Compass builds this analysis per trace)",
            hosts.len(),
            hosts.join(", ")
        )
    })
}

/// Events whose handling stopped at a state value type error: Trace Compass logs
/// such an event (`StateValueTypeException`) and goes on with the next one, keeping
/// the writes made before the error; providers that follow it count them here.
#[derive(Debug, Default)]
pub struct SkippedEvents {
    count: u64,
    first: Option<String>,
}

impl SkippedEvents {
    /// `Ok` for a type error (counted), the error itself otherwise.
    pub fn absorb(&mut self, result: sht::Result<()>, timestamp: i64) -> sht::Result<()> {
        match result {
            Err(e @ sht::Error::ValueType { .. }) => {
                self.count += 1;
                self.first
                    .get_or_insert_with(|| format!("at {timestamp} ns: {e}"));
                Ok(())
            }
            other => other,
        }
    }

    pub fn warnings(&self) -> Vec<String> {
        match &self.first {
            Some(first) => vec![format!(
                "{} event(s) partly applied after a state value type error (first {first})",
                self.count
            )],
            None => Vec::new(),
        }
    }
}

/// Builds a fresh provider for one trace.
pub type ProviderFactory = fn() -> Box<dyn StateProvider>;

/// Providers by id.
#[derive(Default)]
pub struct Registry {
    entries: Vec<(&'static str, &'static str, ProviderFactory)>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a provider under a short name (`kernel`) and its analysis id.
    pub fn register(&mut self, short: &'static str, id: &'static str, factory: ProviderFactory) {
        self.entries.push((short, id, factory));
    }

    /// A provider by short name or analysis id.
    pub fn create(&self, name: &str) -> Option<Box<dyn StateProvider>> {
        self.entries
            .iter()
            .find(|(s, id, _)| *s == name || *id == name)
            .map(|(_, _, f)| f())
    }

    /// (short name, analysis id) of every provider.
    pub fn names(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.entries.iter().map(|(s, id, _)| (*s, *id))
    }
}

/// Every native provider: `kernel` (Linux kernel analysis) and `diskio` (disk I/O),
/// by short name and Trace Compass analysis id.
pub fn native_registry() -> Registry {
    let mut r = Registry::new();
    r.register("kernel", kernel::KERNEL_ANALYSIS_ID, || {
        Box::new(kernel::KernelStateProvider::new())
    });
    r.register("diskio", diskio::DISKIO_ANALYSIS_ID, || {
        Box::new(diskio::DiskIoStateProvider::new())
    });
    register_vm(&mut r);
    register_openstack(&mut r);
    r.register("kvm-exits", kvm_exits::ID, || {
        Box::new(kvm_exits::KvmExitProvider::new())
    });
    r
}

/// Registers the virtual machine analyses (short names `vm-model`, `vm-vresources`,
/// `vm-overhead`, `vm-fused`, `nested-vcpu`).
pub fn register_vm(registry: &mut Registry) {
    registry.register("vm-model", vm::model::ID, || {
        Box::new(vm::model::VmModelProvider::new())
    });
    registry.register("vm-vresources", vm::vresources::ID, || {
        Box::new(vm::vresources::VirtualResourcesProvider::new())
    });
    registry.register("vm-overhead", vm::overhead::ID, || {
        Box::new(vm::overhead::VmOverheadProvider::new())
    });
    registry.register("vm-fused", vm::fused::ID, || {
        Box::new(vm::fused::FusedVmProvider::new())
    });
    registry.register("nested-vcpu", vm::nested::ID, || {
        Box::new(vm::nested::NestedVcpuProvider::new())
    });
}

// ---- OpenStack, QEMU live migration, Open vSwitch (issue 6) ----

/// Registers the cloud-layer analyses of the Bationo 2016 thesis: `nova` (VM
/// states), `nova-services`, `neutron`, `cinder`, `qemu-migration`, `ovs`
/// (per-packet path) and `ovs-path` (the Java-compatible global rows).
pub fn register_openstack(registry: &mut Registry) {
    registry.register("nova", openstack::nova::ID, || {
        Box::new(openstack::nova::NovaVmStateProvider::new())
    });
    registry.register("nova-services", openstack::nova_services::ID, || {
        Box::new(openstack::nova_services::NovaServicesProvider::new())
    });
    registry.register("neutron", openstack::neutron::ID, || {
        Box::new(openstack::neutron::NeutronProvider::new())
    });
    registry.register("cinder", openstack::cinder::ID, || {
        Box::new(openstack::cinder::CinderProvider::new())
    });
    registry.register("qemu-migration", qemu_migration::ID, || {
        Box::new(qemu_migration::QemuMigrationProvider::new())
    });
    registry.register("ovs", ovs::PACKETS_ID, || {
        Box::new(ovs::OvsPacketsProvider::new())
    });
    registry.register("ovs-path", ovs::PATH_ID, || {
        Box::new(ovs::OvsPathProvider::new())
    });
}

// ---- end of the OpenStack block ----

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;
    impl StateProvider for Nothing {
        fn id(&self) -> &'static str {
            "test.nothing"
        }
        fn version(&self) -> i32 {
            1
        }
        fn check_trace(&mut self, _: &TraceInfo) -> Result<(), ProviderError> {
            Ok(())
        }
        fn subscribe(&mut self, _: &str) -> Option<Subscription> {
            None
        }
        fn handle(
            &mut self,
            _: u32,
            _: &dyn EventFields,
            _: &mut dyn StateSystemBuilder,
        ) -> sht::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn type_errors_are_counted_and_other_errors_pass() {
        let mut skipped = SkippedEvents::default();
        assert!(skipped.warnings().is_empty());
        let type_error = || {
            Err(sht::Error::ValueType {
                quark: 3,
                expected: sht::ValueType::Int,
                found: sht::ValueType::String,
            })
        };
        assert!(skipped.absorb(type_error(), 10).is_ok());
        assert!(skipped.absorb(type_error(), 20).is_ok());
        let other = skipped.absorb(Err(sht::Error::Config("x".into())), 30);
        assert!(matches!(other, Err(sht::Error::Config(_))));
        let w = skipped.warnings();
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with("2 event(s)") && w[0].contains("at 10 ns"),
            "{w:?}"
        );
    }

    #[test]
    fn native_registry_has_the_kernel_and_disk_analyses() {
        let r = native_registry();
        let kernel = r.create("kernel").unwrap();
        assert_eq!(
            kernel.id(),
            "org.eclipse.tracecompass.analysis.os.linux.kernel"
        );
        assert_eq!(kernel.version(), 31);
        let diskio = r
            .create("org.eclipse.tracecompass.analysis.os.linux.inputoutput")
            .unwrap();
        assert_eq!(diskio.version(), 4);
    }

    #[test]
    fn registry_finds_by_short_name_or_id() {
        let mut r = Registry::new();
        r.register("nothing", "test.nothing", || Box::new(Nothing));
        assert_eq!(r.create("nothing").unwrap().id(), "test.nothing");
        assert_eq!(r.create("test.nothing").unwrap().version(), 1);
        assert!(r.create("kernel").is_none());
        assert_eq!(r.names().count(), 1);
    }
}
