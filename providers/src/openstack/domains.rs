//! Libvirt domains of Nova instances (spec §2.6, **Extension**): the libvirt
//! driver logs the domain XML it defines (`End _get_guest_xml xml=<domain ...>`,
//! `Generated XML ('<domain ...')`), which names the instance both ways:
//! `<nova:name>` is Nova's `vmname` (instance hostname), `<name>` is the libvirt
//! domain (`instance-%08x`, also QEMU's `-name guest=`), with the instance
//! `<uuid>`, `<vcpu>` count and the files given to QEMU (`<source file=...>`:
//! disk images, config drive, console log). These are the keys that link a VM to
//! its QEMU process in a kernel trace of the compute host.
//!
//! Tree: `Instances/<vmname>/{Domain (string), UUID (string), vCPUs (int),
//! Files/<k> (string)}`, written when the XML is logged (the last XML wins).

use sht::{StateSystemBuilder, StateValue};

use super::{require_python_events, Malformed, PYTHON_EVENT, SLOT_MSG};
use crate::{EventFields, ProviderError, StateProvider, Subscription, TraceInfo};

pub const ID: &str = "openstack.nova.domains";
pub const VERSION: i32 = 1;

const R_NO_NOVA_NAME: &str = "with a domain XML without <nova:name> or <name>";

/// What one domain XML says about its instance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainXml {
    pub vmname: String,
    pub domain: String,
    pub uuid: Option<String>,
    pub vcpus: Option<i64>,
    pub files: Vec<String>,
}

/// Text between `<tag ...>` and `</tag>` (attributes allowed), trimmed.
fn tag_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}");
    let mut from = 0;
    while let Some(i) = xml[from..].find(&open) {
        let at = from + i + open.len();
        // `<name>` must not match `<namespace ...>`.
        match xml[at..].chars().next() {
            Some('>') | Some(' ') | Some('\t') | Some('\n') | Some('\\') => {}
            _ => {
                from = at;
                continue;
            }
        }
        let body = at + xml[at..].find('>')? + 1;
        let end = body + xml[body..].find(&format!("</{tag}>"))?;
        return Some(xml[body..end].trim());
    }
    None
}

/// Values of `<source file="...">` (either quote; a repr-escaped `\"` too).
fn source_files(xml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<source file=") {
        rest = &rest[i + "<source file=".len()..];
        let r = rest.strip_prefix('\\').unwrap_or(rest);
        let Some(q) = r.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            continue;
        };
        let body = &r[1..];
        let Some(end) = body.find(q) else { break };
        let path = body[..end].trim_end_matches('\\');
        if !path.is_empty() && !out.iter().any(|p| p == path) {
            out.push(path.to_string());
        }
        rest = &body[end..];
    }
    out
}

/// The domain a libvirt-driver log message defines, if it holds a domain XML.
/// `Err(())` when the XML lacks the names.
#[allow(clippy::result_unit_err)]
pub fn parse_domain_message(msg: &str) -> Option<Result<DomainXml, ()>> {
    let at = msg.find("<domain")?;
    let xml = &msg[at..];
    let (Some(vmname), Some(domain)) = (tag_text(xml, "nova:name"), tag_text(xml, "name")) else {
        return Some(Err(()));
    };
    if vmname.is_empty() || domain.is_empty() {
        return Some(Err(()));
    }
    Some(Ok(DomainXml {
        vmname: vmname.to_string(),
        domain: domain.to_string(),
        uuid: tag_text(xml, "uuid").map(str::to_string),
        vcpus: tag_text(xml, "vcpu").and_then(|v| v.parse().ok()),
        files: source_files(xml),
    }))
}

#[derive(Default)]
pub struct LibvirtDomainProvider {
    saw_python_events: bool,
    malformed: Malformed,
}

impl LibvirtDomainProvider {
    pub fn new() -> Self {
        Self::default()
    }
}

impl StateProvider for LibvirtDomainProvider {
    fn id(&self) -> &'static str {
        ID
    }
    fn version(&self) -> i32 {
        VERSION
    }
    fn check_trace(&mut self, _trace: &TraceInfo) -> Result<(), ProviderError> {
        Ok(())
    }
    fn subscribe(&mut self, event_name: &str) -> Option<Subscription> {
        let s = (event_name == PYTHON_EVENT).then(|| Subscription {
            handler: 0,
            fields: vec!["msg"],
        });
        self.saw_python_events |= s.is_some();
        s
    }
    fn check_subscriptions(
        &self,
        _missing: &[(String, &'static str)],
    ) -> Result<(), ProviderError> {
        require_python_events(self.saw_python_events, ID)
    }

    fn handle(
        &mut self,
        _handler: u32,
        event: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let t = event.timestamp();
        // Cheap test first: almost no record holds a domain XML.
        let Some(msg) = event.string(SLOT_MSG).filter(|m| m.contains("<domain")) else {
            return Ok(());
        };
        let d = match parse_domain_message(msg) {
            Some(Ok(d)) => d,
            Some(Err(())) => {
                self.malformed
                    .note(R_NO_NOVA_NAME, t, || msg.chars().take(80).collect());
                return Ok(());
            }
            None => return Ok(()),
        };
        let base = ss.quark_and_add(&["Instances", &d.vmname])?;
        let q = ss.quark_relative_and_add(base, &["Domain"])?;
        ss.modify(t, StateValue::from(d.domain.as_str()), q)?;
        if let Some(uuid) = &d.uuid {
            let q = ss.quark_relative_and_add(base, &["UUID"])?;
            ss.modify(t, StateValue::from(uuid.as_str()), q)?;
        }
        if let Some(n) = d.vcpus {
            let q = ss.quark_relative_and_add(base, &["vCPUs"])?;
            ss.modify(t, StateValue::Int(n as i32), q)?;
        }
        for (k, f) in d.files.iter().enumerate() {
            let q = ss.quark_relative_and_add(base, &["Files", &k.to_string()])?;
            ss.modify(t, StateValue::from(f.as_str()), q)?;
        }
        Ok(())
    }

    fn warnings(&self) -> Vec<String> {
        self.malformed.warnings("nova-domains")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_log_shapes_give_names_uuid_vcpus_and_files() {
        // The two shapes of the 2016-08-08 trace: real newlines, and a Python repr
        // with `\n` escapes.
        let end = "End _get_guest_xml xml=<domain type=\"kvm\">\n  <uuid>c5a9</uuid>\n  \
                   <name>instance-00000008</name>\n  <vcpu placement='static'>1</vcpu>\n  \
                   <metadata><nova:instance><nova:name>vm-26009</nova:name></nova:instance></metadata>\n  \
                   <source file=\"/i/c5a9/disk\"/><source file=\"/i/c5a9/disk\"/>\
                   <source path=\"/i/c5a9/console.log\"/></domain>";
        let d = parse_domain_message(end).unwrap().unwrap();
        assert_eq!(d.vmname, "vm-26009");
        assert_eq!(d.domain, "instance-00000008");
        assert_eq!(d.uuid.as_deref(), Some("c5a9"));
        assert_eq!(d.vcpus, Some(1));
        assert_eq!(d.files, vec!["/i/c5a9/disk".to_string()]);
        let repr = "Generated XML ('<domain type=\"kvm\">\\n  <name>instance-0000000a</name>\\n  \
                    <nova:name>kk</nova:name><source file='/x/disk'/>\\n',)";
        let d = parse_domain_message(repr).unwrap().unwrap();
        assert_eq!(
            (d.vmname.as_str(), d.domain.as_str()),
            ("kk", "instance-0000000a")
        );
        assert_eq!(d.files, vec!["/x/disk".to_string()]);
        assert_eq!(d.vcpus, None);
    }

    #[test]
    fn truncated_or_nameless_xml_is_an_error_not_a_panic() {
        assert!(parse_domain_message("no xml here").is_none());
        for bad in [
            "<domain",
            "<domain><name>instance-1",
            "<domain><name>x</name>",
            "<domain><nova:name></nova:name><name>x</name>",
            "<domain><source file=\"unterminated",
            "<domain><source file=",
        ] {
            assert!(matches!(parse_domain_message(bad), Some(Err(()))), "{bad}");
        }
        assert_eq!(
            tag_text("<namespace>a</namespace><name>b</name>", "name"),
            Some("b")
        );
    }
}
