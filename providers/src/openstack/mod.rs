//! OpenStack views from the thesis instrumentation (Bationo 2016, spec
//! `providers.md` §2): every OpenStack log record is an LTTng-UST
//! `lttng_python:event` whose `msg` may hold `lttng_trace:{...}`, a Python dict
//! literal parsed with [`crate::pydict`].
//!
//! Providers: [`nova::NovaVmStateProvider`] (VM states per project),
//! [`nova_services::NovaServicesProvider`] (per-service action, per-request
//! operations), [`neutron::NeutronProvider`] (agents' networks and routers),
//! [`cinder::CinderProvider`] (volumes). Messages that cannot be used
//! (truncated dicts, missing keys, unknown event types, empty names) are counted
//! by class in a [`Malformed`] tally and reported through `warnings()`; they
//! never create an attribute named `""`.

/// The `StateProvider` items every Python-agent provider shares (id, version,
/// any trace accepted, `lttng_python:event` subscribed with `msg` and
/// `logger_name`, refusal of a trace without such events). The provider needs a
/// `saw_python_events: bool` field.
macro_rules! python_event_provider {
    ($id:expr, $version:expr) => {
        fn id(&self) -> &'static str {
            $id
        }
        fn version(&self) -> i32 {
            $version
        }
        fn check_trace(&mut self, _trace: &$crate::TraceInfo) -> Result<(), $crate::ProviderError> {
            Ok(())
        }
        fn subscribe(&mut self, event_name: &str) -> Option<$crate::Subscription> {
            let s = $crate::openstack::python_subscription(event_name);
            self.saw_python_events |= s.is_some();
            s
        }
        fn check_subscriptions(
            &self,
            _missing: &[(String, &'static str)],
        ) -> Result<(), $crate::ProviderError> {
            $crate::openstack::require_python_events(self.saw_python_events, $id)
        }
    };
}

pub mod cinder;
pub mod domains;
pub mod neutron;
pub mod nova;
pub mod nova_services;
pub mod qemu_files;
pub mod vm_report;
pub mod volume_report;

use crate::EventFields;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use sht::{Quark, StateSystemBuilder};

use crate::pydict::{self, Field, PyDictError, PyValue, Scanned};
use crate::{ProviderError, Subscription};

/// The LTTng Python agent's event.
pub const PYTHON_EVENT: &str = "lttng_python:event";
/// Marker of a thesis message inside `msg`.
pub const THESIS_MARKER: &str = "lttng_trace";

/// Field slots of [`PYTHON_EVENT`] in every OpenStack provider.
pub(crate) const SLOT_MSG: usize = 0;
pub(crate) const SLOT_LOGGER: usize = 1;

pub(crate) fn python_subscription(event_name: &str) -> Option<Subscription> {
    (event_name == PYTHON_EVENT).then(|| Subscription {
        handler: 0,
        fields: vec!["msg", "logger_name"],
    })
}

/// The refusal when a trace has no Python agent events at all.
pub(crate) fn require_python_events(seen: bool, analysis: &str) -> Result<(), ProviderError> {
    if seen {
        Ok(())
    } else {
        Err(ProviderError::Unsupported {
            analysis: analysis.to_string(),
            what: format!("the trace has no `{PYTHON_EVENT}` events (LTTng Python agent)"),
        })
    }
}

/// The payload of a thesis message: `None` when `msg` is an ordinary log line,
/// `Some(Err)` when it is a thesis message whose dict does not parse.
pub fn thesis_payload(msg: &str) -> Option<Result<PyValue<'_>, PyDictError>> {
    let base = payload_start(msg)?;
    Some(
        pydict::parse_prefix(&msg[base..])
            .map(|(v, _)| v)
            .map_err(|e| shift(e, base)),
    )
}

/// [`thesis_payload`] read for `keys` only (see [`pydict::scan_dict`]): the same
/// checks and errors, nothing built. The providers' per-event path.
pub fn thesis_fields<'m, const N: usize>(
    msg: &'m str,
    keys: [&str; N],
) -> Option<Result<Scanned<'m, N>, PyDictError>> {
    let base = payload_start(msg)?;
    Some(pydict::scan_dict(&msg[base..], keys).map_err(|e| shift(e, base)))
}

/// Where the literal after [`THESIS_MARKER`] starts in `msg`.
fn payload_start(msg: &str) -> Option<usize> {
    let after = find_marker(msg)? + THESIS_MARKER.len();
    let rest = &msg[after..];
    // `lttng_trace:{...}`: the separator and spaces before the literal.
    let skipped = rest.len() - rest.trim_start_matches([':', ' ', '\t']).len();
    Some(after + skipped)
}

/// Where [`THESIS_MARKER`] starts in `msg`. A plain scan: `str::find` builds a
/// two-way searcher per call, which costs more than the scan of a log line
/// (callgrind on the Nova-like bench: ~450 instructions per record).
fn find_marker(msg: &str) -> Option<usize> {
    let (b, m) = (msg.as_bytes(), THESIS_MARKER.as_bytes());
    if b.starts_with(m) {
        return Some(0);
    }
    let last = b.len().checked_sub(m.len())?;
    (1..=last).find(|&i| b[i] == m[0] && &b[i..i + m.len()] == m)
}

/// Error offsets relative to the whole message.
fn shift(e: PyDictError, by: usize) -> PyDictError {
    match e {
        PyDictError::Truncated { offset, inside } => PyDictError::Truncated {
            offset: offset + by,
            inside,
        },
        PyDictError::Unexpected {
            offset,
            expected,
            found,
        } => PyDictError::Unexpected {
            offset: offset + by,
            expected,
            found,
        },
        PyDictError::BadEscape { offset } => PyDictError::BadEscape {
            offset: offset + by,
        },
        PyDictError::Empty { offset } => PyDictError::Empty {
            offset: offset + by,
        },
        PyDictError::TooDeep { offset } => PyDictError::TooDeep {
            offset: offset + by,
        },
        PyDictError::Trailing { offset } => PyDictError::Trailing {
            offset: offset + by,
        },
    }
}

/// Counts of skipped or partly used records by reason, with the first example.
#[derive(Debug, Default)]
pub struct Malformed {
    by_reason: BTreeMap<&'static str, (u64, String)>,
}

impl Malformed {
    pub fn note(&mut self, reason: &'static str, timestamp: i64, detail: impl FnOnce() -> String) {
        let entry = self
            .by_reason
            .entry(reason)
            .or_insert_with(|| (0, format!("at {timestamp} ns: {}", detail())));
        entry.0 += 1;
    }

    /// How many records were noted for `reason`.
    pub fn count(&self, reason: &str) -> u64 {
        self.by_reason.get(reason).map_or(0, |e| e.0)
    }

    pub fn total(&self) -> u64 {
        self.by_reason.values().map(|e| e.0).sum()
    }

    pub fn warnings(&self, analysis: &str) -> Vec<String> {
        self.by_reason
            .iter()
            .map(|(reason, (n, first))| {
                format!("{analysis}: {n} record(s) {reason} (first {first})")
            })
            .collect()
    }
}

/// Reasons shared by the OpenStack providers.
pub const R_NO_LOGGER: &str = "without a logger name";
pub const R_UNPARSABLE: &str = "with an unparsable lttng_trace dict";
pub const R_NOT_A_DICT: &str = "with an lttng_trace payload that is not a dict";
pub const R_NO_EVENT_TYPE: &str = "without an event_type";
pub const R_UNKNOWN_TYPE: &str = "with an unknown event_type";

/// Maps keyed by names from the trace (loggers, projects, VMs), looked up once or
/// twice per event: a word-at-a-time multiplicative hash (the Fx scheme) instead
/// of SipHash, which cost more than the rest of a lookup on 30-byte logger names.
pub(crate) type NameMap<V> = HashMap<Box<str>, V, BuildHasherDefault<NameHasher>>;

#[derive(Default)]
pub(crate) struct NameHasher(u64);

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            h = (h.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &c in chunks.remainder() {
            h = (h.rotate_left(5) ^ c as u64).wrapping_mul(K);
        }
        self.0 = h;
    }
}

/// A logger's `SERVICEs/<logger>/<leaf>` quarks (at most two leaves; unused slots
/// are -1), and whether it is Nova's compute manager (known once per logger
/// instead of searched in every record's logger name).
#[derive(Clone, Copy)]
pub(crate) struct Service {
    pub quarks: [Quark; 2],
    pub compute_manager: bool,
}

/// [`Service`]s by logger, so that a logger's attributes are looked up once.
#[derive(Default)]
pub(crate) struct ServiceQuarks {
    by_logger: NameMap<Service>,
    /// The last logger seen and its service: a request's records often come from
    /// one service in a row, and loggers' names mostly differ in length, so a
    /// miss costs a length comparison, a hit saves the hashing.
    last: Option<(String, Service)>,
}

impl ServiceQuarks {
    pub(crate) fn get(
        &mut self,
        logger: &str,
        leaves: &[&str],
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<Service> {
        if let Some((name, s)) = &self.last {
            if name == logger {
                return Ok(*s);
            }
        }
        if let Some(&s) = self.by_logger.get(logger) {
            self.remember(logger, s);
            return Ok(s);
        }
        let base = ss.quark_and_add(&["SERVICEs", logger])?;
        let mut qs = [-1 as Quark; 2];
        for (q, leaf) in qs.iter_mut().zip(leaves) {
            *q = ss.quark_relative_and_add(base, &[leaf])?;
        }
        let s = Service {
            quarks: qs,
            compute_manager: logger.contains("nova.compute.manager"),
        };
        self.by_logger.insert(logger.into(), s);
        self.remember(logger, s);
        Ok(s)
    }

    fn remember(&mut self, logger: &str, service: Service) {
        let (name, s) = self.last.get_or_insert_with(|| (String::new(), service));
        name.clear();
        name.push_str(logger);
        *s = service;
    }
}

/// The values of a provider's keys in a thesis dict (see [`thesis_fields`]).
pub(crate) type Fields<'e, const N: usize> = [Option<Field<'e>>; N];

/// Text of a field (see [`Field::text`]).
pub(crate) fn text<'e>(field: &Option<Field<'e>>) -> Option<std::borrow::Cow<'e, str>> {
    field.as_ref().and_then(Field::text)
}

/// What the service providers read first from a `lttng_python:event`: the logger
/// (service) name, its [`Service`] (`SERVICEs/<logger>/<leaf>` quarks, at most two
/// leaves), and the values of `keys` in the message's dict.
/// Malformed parts are counted; when the message is not a readable dict, the service's
/// attributes go null. `None`: nothing more to do for this event.
pub(crate) fn service_message<'e, const N: usize>(
    event: &'e dyn EventFields,
    services: &mut ServiceQuarks,
    leaves: &[&str],
    keys: [&str; N],
    malformed: &mut Malformed,
    ss: &mut dyn StateSystemBuilder,
) -> sht::Result<Option<(&'e str, Service, Fields<'e, N>)>> {
    let t = event.timestamp();
    let logger = match event.string(SLOT_LOGGER) {
        Some(l) if !l.is_empty() => l,
        _ => {
            malformed.note(R_NO_LOGGER, t, || "no logger_name".into());
            return Ok(None);
        }
    };
    let service = services.get(logger, leaves, ss)?;
    let n = leaves.len().min(2);
    let Some(payload) = event
        .string(SLOT_MSG)
        .and_then(|msg| thesis_fields(msg, keys))
    else {
        return Ok(None);
    };
    match payload {
        Ok(Scanned::Dict(fields)) => return Ok(Some((logger, service, fields))),
        Ok(Scanned::NotADict) => malformed.note(R_NOT_A_DICT, t, || logger.to_string()),
        Err(e) => malformed.note(R_UNPARSABLE, t, || format!("{logger}: {e}")),
    }
    for &q in &service.quarks[..n] {
        ss.modify(t, sht::StateValue::Null, q)?;
    }
    Ok(None)
}

/// A service record of the services whose only leaf is `Action` (Cinder, Neutron).
pub(crate) struct ActionMessage<'e, const N: usize> {
    pub logger: &'e str,
    /// `SERVICEs/<logger>/Action`.
    pub action: Quark,
    /// The values of the keys asked (`event_type` first).
    pub fields: Fields<'e, N>,
    pub event_type: std::borrow::Cow<'e, str>,
}

/// [`service_message`] with the `Action` leaf and the record's `event_type`, which
/// must be `keys[0]`. A dict without `event_type` nulls `Action` and is counted as
/// malformed: `None` then, as for records that are not service dicts.
pub(crate) fn action_message<'e, const N: usize>(
    event: &'e dyn EventFields,
    services: &mut ServiceQuarks,
    keys: [&str; N],
    malformed: &mut Malformed,
    ss: &mut dyn StateSystemBuilder,
) -> sht::Result<Option<ActionMessage<'e, N>>> {
    debug_assert_eq!(keys.first(), Some(&"event_type"));
    let t = event.timestamp();
    let Some((logger, service, fields)) =
        service_message(event, services, &["Action"], keys, malformed, ss)?
    else {
        return Ok(None);
    };
    let Some(event_type) = text(&fields[0]) else {
        malformed.note(R_NO_EVENT_TYPE, t, || logger.to_string());
        ss.modify(t, sht::StateValue::Null, service.quarks[0])?;
        return Ok(None);
    };
    Ok(Some(ActionMessage {
        logger,
        action: service.quarks[0],
        fields,
        event_type,
    }))
}

/// Splits `<op>.start` / `<op>.end`.
pub(crate) enum Phase<'a> {
    Start(&'a str),
    End(&'a str),
    Other,
}

pub(crate) fn phase(event_type: &str) -> Phase<'_> {
    if let Some(op) = event_type.strip_suffix(".start") {
        Phase::Start(op)
    } else if let Some(op) = event_type.strip_suffix(".end") {
        Phase::End(op)
    } else {
        Phase::Other
    }
}

/// Nova `vm_states` codes (spec §2.3, with the extension codes); `None` for an
/// unknown state.
pub fn vm_state_code(state: &str) -> Option<i32> {
    Some(match state {
        "building" => 0,
        "active" => 1,
        "suspended" | "supended" => 2,
        "deleted" => 3,
        "paused" => 4,
        "stopped" => 5,
        "migrating" => 6,
        "rescued" => 20,
        "resized" => 21,
        "soft-delete" | "soft_deleted" => 22,
        "error" => 23,
        "shelved" => 24,
        "shelved_offloaded" => 25,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thesis_payloads_are_found_and_errors_located() {
        assert_eq!(find_marker("lttng_trace:{}"), Some(0));
        assert_eq!(find_marker("x lttng_tracf lttng_trace"), Some(14));
        assert_eq!(find_marker("lttng_trac"), None);
        assert_eq!(find_marker(""), None);
        assert_eq!(find_marker("é lttng_trace"), Some(3));
        assert!(thesis_payload("GET http://10.0.0.100:5000/v2.0/").is_none());
        let p = thesis_payload("lttng_trace:{'event_type':'a.start'}")
            .unwrap()
            .unwrap();
        assert_eq!(p.get_text("event_type").as_deref(), Some("a.start"));
        match thesis_payload("lttng_trace:{'event_type':'a.st") {
            Some(Err(PyDictError::Truncated { offset, .. })) => assert_eq!(offset, 31),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            thesis_payload("lttng_trace: nothing"),
            Some(Ok(PyValue::Bare("nothing")))
        ));
        assert!(matches!(thesis_payload("lttng_trace:"), Some(Err(_))));
    }

    #[test]
    fn malformed_tally_keeps_the_first_example() {
        let mut m = Malformed::default();
        m.note(R_UNPARSABLE, 5, || "first".into());
        m.note(R_UNPARSABLE, 9, || "second".into());
        assert_eq!(m.count(R_UNPARSABLE), 2);
        assert_eq!(m.total(), 2);
        let w = m.warnings("nova");
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("2 record(s)") && w[0].contains("at 5 ns: first"),
            "{w:?}"
        );
    }

    #[test]
    fn registry_has_every_cloud_analysis_by_short_name_and_id() {
        let r = crate::native_registry();
        for (short, id) in [
            ("nova", nova::ID),
            ("nova-services", nova_services::ID),
            ("neutron", neutron::ID),
            ("cinder", cinder::ID),
            ("qemu-migration", crate::qemu_migration::ID),
            ("ovs", crate::ovs::PACKETS_ID),
            ("ovs-path", crate::ovs::PATH_ID),
        ] {
            assert_eq!(r.create(short).expect(short).id(), id);
            assert_eq!(r.create(id).expect(id).version(), 1);
        }
    }

    #[test]
    fn vm_states_include_the_java_misspelling_and_extensions() {
        assert_eq!(vm_state_code("supended"), Some(2));
        assert_eq!(vm_state_code("stopped"), Some(5));
        assert_eq!(vm_state_code("error"), Some(23));
        assert_eq!(vm_state_code("weird"), None);
    }
}

#[cfg(test)]
mod bad_input_tests;
