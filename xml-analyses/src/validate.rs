//! Validation standing in for Trace Compass's `xmlDefinition.xsd` (and the files it
//! includes): element content models (sequence/choice with occurrence bounds),
//! declared attributes, required attributes and enumerations. The rules below
//! are our own encoding of those schemas; Trace Compass ignores a file that does
//! not validate, so we reject it with the offending line and element.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use crate::dom::Element;
use crate::XmlError;

const UNBOUNDED: u32 = u32::MAX;

#[derive(Debug)]
enum Particle {
    /// name, type, min, max
    El(&'static str, &'static str, u32, u32),
    Seq(Vec<Particle>, u32, u32),
    Choice(Vec<Particle>, u32, u32),
}

#[derive(Clone, Copy, Debug)]
enum AttrKind {
    Text,
    NonEmpty,
    Int,
    Bool,
    Enum(&'static [&'static str]),
}

struct Type {
    attrs: Vec<(&'static str, bool, AttrKind)>,
    content: Option<Particle>,
    /// Substitution-group heads accepted as children (extra schemas): content unchecked.
    open: bool,
}

use AttrKind::*;
use Particle::{Choice, El, Seq};

fn el(name: &'static str, ty: &'static str, min: u32, max: u32) -> Particle {
    El(name, ty, min, max)
}

fn types() -> &'static HashMap<&'static str, Type> {
    static TYPES: OnceLock<HashMap<&'static str, Type>> = OnceLock::new();
    TYPES.get_or_init(|| {
        let mut t: HashMap<&'static str, Type> = HashMap::new();
        let mut add = |name, attrs, content| {
            t.insert(
                name,
                Type {
                    attrs,
                    content,
                    open: false,
                },
            );
        };
        const U: u32 = UNBOUNDED;
        add(
            "tmfxml",
            vec![],
            Some(Choice(
                vec![
                    el("timeGraphView", "timeGraphView", 0, U),
                    el("xyView", "xyView", 0, U),
                    el("stateProvider", "stateProvider", 0, U),
                    el("pattern", "pattern", 0, U),
                    el("callstack", "callstack", 0, U),
                ],
                1,
                U,
            )),
        );
        // --- common
        add(
            "definedValue",
            vec![
                ("name", true, Text),
                ("value", true, Text),
                ("color", false, Text),
            ],
            None,
        );
        add(
            "location",
            vec![("id", true, Text)],
            Some(el("stateAttribute", "stateAttribute", 0, U)),
        );
        add(
            "mappingGroup",
            vec![("id", true, Text)],
            Some(el("entry", "mapEntry", 1, U)),
        );
        add(
            "mapEntry",
            vec![],
            Some(el("stateValue", "stateValue", 2, 2)),
        );
        // --- state provider
        add(
            "stateProvider",
            vec![("id", true, NonEmpty), ("version", true, Int)],
            Some(Seq(
                vec![
                    el("head", "headProvider", 0, 1),
                    Seq(
                        vec![
                            Choice(
                                vec![
                                    el("definedValue", "definedValue", 0, U),
                                    el("location", "location", 0, U),
                                    el("mappingGroup", "mappingGroup", 0, U),
                                ],
                                0,
                                U,
                            ),
                            el("eventHandler", "eventHandler", 1, U),
                        ],
                        1,
                        U,
                    ),
                ],
                1,
                1,
            )),
        );
        add(
            "headProvider",
            vec![],
            Some(Seq(
                vec![
                    el("traceType", "traceType", 0, U),
                    el("label", "label", 0, 1),
                ],
                1,
                1,
            )),
        );
        add("traceType", vec![("id", true, Text)], None);
        add("label", vec![("value", false, Text)], None);
        add(
            "eventHandler",
            vec![("eventName", true, Text)],
            Some(el("stateChange", "stateChange", 1, U)),
        );
        add(
            "stateChange",
            vec![],
            Some(Choice(
                vec![
                    Seq(
                        vec![
                            el("stateAttribute", "stateAttribute", 1, U),
                            el("stateValue", "stateValue", 1, 1),
                            el("futureTime", "stateValue", 0, 1),
                        ],
                        1,
                        1,
                    ),
                    Seq(
                        vec![
                            el("if", "conditionSingle", 1, 1),
                            el("then", "stateChange", 1, 1),
                            el("else", "stateChange", 0, 1),
                        ],
                        1,
                        1,
                    ),
                ],
                1,
                1,
            )),
        );
        const OPS: &[&str] = &["eq", "ne", "ge", "gt", "le", "lt"];
        let compare = || {
            Choice(
                vec![
                    Seq(
                        vec![
                            Choice(
                                vec![
                                    el("stateAttribute", "stateAttribute", 1, U),
                                    el("field", "eventField", 1, 1),
                                ],
                                1,
                                1,
                            ),
                            el("stateValue", "stateValue", 1, 1),
                        ],
                        1,
                        1,
                    ),
                    el("stateValue", "stateValue", 2, 2),
                ],
                1,
                1,
            )
        };
        add(
            "condition",
            vec![("operator", false, Enum(OPS))],
            Some(compare()),
        );
        add("eventField", vec![("name", true, Text)], None);
        let single = |cond: &'static str, multi: &'static str, me: &'static str| {
            Choice(
                vec![
                    el("condition", cond, 1, 1),
                    el("not", me, 1, 1),
                    el("and", multi, 1, 1),
                    el("or", multi, 1, 1),
                ],
                1,
                1,
            )
        };
        let multiple = |cond: &'static str, single: &'static str, me: &'static str| {
            Seq(
                vec![
                    el("condition", cond, 0, 1),
                    el("or", me, 0, 1),
                    el("and", me, 0, 1),
                    el("not", single, 0, 1),
                ],
                1,
                U,
            )
        };
        add(
            "conditionSingle",
            vec![],
            Some(single("condition", "conditionMultiple", "conditionSingle")),
        );
        add(
            "conditionMultiple",
            vec![],
            Some(multiple(
                "condition",
                "conditionSingle",
                "conditionMultiple",
            )),
        );
        add(
            "stateAttribute",
            vec![
                (
                    "type",
                    true,
                    Enum(&[
                        "null",
                        "constant",
                        "eventField",
                        "eventName",
                        "location",
                        "query",
                        "pool",
                    ]),
                ),
                ("value", false, Text),
            ],
            Some(el("stateAttribute", "stateAttribute", 0, U)),
        );
        add(
            "stateValue",
            vec![
                ("id", false, NonEmpty),
                (
                    "type",
                    true,
                    Enum(&[
                        "null",
                        "int",
                        "long",
                        "string",
                        "eventField",
                        "eventName",
                        "delete",
                        "query",
                        "script",
                    ]),
                ),
                ("value", false, Text),
                (
                    "forcedType",
                    false,
                    Enum(&["int", "long", "string", "double", "null"]),
                ),
                ("increment", false, Bool),
                ("update", false, Bool),
                ("stack", false, Enum(&["pop", "popAll", "push", "peek"])),
                ("mappingGroup", false, Text),
                ("scriptEngine", false, Text),
            ],
            Some(Seq(
                vec![
                    el("stateAttribute", "stateAttribute", 0, U),
                    el("stateValue", "stateValue", 0, U),
                ],
                1,
                1,
            )),
        );
        // --- patterns
        add(
            "pattern",
            vec![("id", true, Text), ("version", true, Int)],
            Some(Seq(
                vec![
                    el("head", "headPattern", 0, 1),
                    el("storedField", "storedField", 0, U),
                    el("definedValue", "definedValue", 0, U),
                    el("location", "location", 0, U),
                    el("mappingGroup", "mappingGroup", 0, U),
                    el("patternHandler", "patternHandler", 1, 1),
                ],
                1,
                1,
            )),
        );
        add(
            "headPattern",
            vec![],
            Some(Seq(
                vec![
                    el("traceType", "traceType", 0, U),
                    el("label", "label", 0, 1),
                    el("viewLabelPrefix", "label", 0, 1),
                ],
                1,
                1,
            )),
        );
        add(
            "storedField",
            vec![("id", true, Text), ("alias", false, Text)],
            None,
        );
        add(
            "patternHandler",
            vec![("initial", false, Text)],
            Some(Seq(
                vec![
                    Choice(
                        vec![el("test", "test", 0, U), el("action", "action", 0, U)],
                        0,
                        U,
                    ),
                    el("fsm", "fsm", 1, U),
                ],
                1,
                U,
            )),
        );
        add(
            "test",
            vec![("id", true, Text)],
            Some(el("if", "patternSingleCondition", 0, 1)),
        );
        add(
            "patternSingleCondition",
            vec![],
            Some(single(
                "patternCondition",
                "patternMultipleCondition",
                "patternSingleCondition",
            )),
        );
        add(
            "patternMultipleCondition",
            vec![],
            Some(multiple(
                "patternCondition",
                "patternSingleCondition",
                "patternMultipleCondition",
            )),
        );
        add(
            "patternCondition",
            vec![("operator", false, Enum(OPS))],
            Some(Choice(
                vec![
                    compare(),
                    el("timerange", "timerange", 1, 1),
                    el("elapsedTime", "elapsedTime", 1, 1),
                ],
                1,
                1,
            )),
        );
        const UNITS: &[&str] = &["ns", "us", "ms", "s"];
        add(
            "timerange",
            vec![("unit", false, Enum(UNITS))],
            Some(Choice(
                vec![
                    el("in", "timeRangeSingle", 1, 1),
                    el("out", "timeRangeSingle", 1, 1),
                ],
                1,
                1,
            )),
        );
        add(
            "timeRangeSingle",
            vec![("begin", true, Int), ("end", true, Int)],
            None,
        );
        add(
            "elapsedTime",
            vec![("unit", false, Enum(UNITS))],
            Some(Choice(
                vec![
                    el("less", "elapsedSingle", 1, 1),
                    el("equal", "elapsedSingle", 1, 1),
                    el("more", "elapsedSingle", 1, 1),
                ],
                1,
                1,
            )),
        );
        add(
            "elapsedSingle",
            vec![("since", true, Text), ("value", true, Int)],
            None,
        );
        add(
            "action",
            vec![("id", true, Text)],
            Some(Choice(
                vec![
                    el("stateChange", "stateChange", 0, U),
                    el("segment", "segment", 0, U),
                    el("fsmScheduleAction", "fsmScheduleAction", 0, 1),
                    el("action", "action", 0, U),
                ],
                1,
                U,
            )),
        );
        add("fsmScheduleAction", vec![("id", true, Text)], None);
        add(
            "segment",
            vec![],
            Some(Seq(
                vec![
                    el("segType", "segType", 1, 1),
                    el("segTime", "segTime", 0, 1),
                    el("segContent", "segContent", 0, 1),
                ],
                1,
                1,
            )),
        );
        add(
            "segType",
            vec![("segName", false, Text)],
            Some(Seq(vec![el("segName", "segName", 1, 1)], 0, 1)),
        );
        add(
            "segName",
            vec![],
            Some(el("stateValue", "stateValue", 1, 1)),
        );
        add(
            "segTime",
            vec![],
            Some(Seq(
                vec![
                    el("begin", "stateValue", 1, 1),
                    Choice(
                        vec![
                            el("end", "stateValue", 1, 1),
                            el("duration", "stateValue", 1, 1),
                        ],
                        1,
                        1,
                    ),
                ],
                0,
                1,
            )),
        );
        add("segContent", vec![], Some(el("segField", "segField", 1, U)));
        add(
            "segField",
            vec![
                ("name", true, Text),
                ("type", true, Enum(&["null", "int", "long", "string"])),
                ("value", false, Text),
            ],
            Some(Seq(vec![el("stateValue", "stateValue", 0, 1)], 0, 1)),
        );
        add(
            "initialState",
            vec![],
            Some(el("transition", "transition", 1, U)),
        );
        add("finalState", vec![("id", true, Text)], None);
        let state_content = || {
            Seq(
                vec![
                    el("onentry", "handlers", 0, 1),
                    el("onexit", "handlers", 0, 1),
                    el("precondition", "transition", 0, U),
                    el("initial", "initialState", 0, 1),
                    el("initialState", "initialState", 0, 1),
                    el("state", "state", 0, U),
                    el("final", "finalState", 0, 1),
                    el("transition", "transition", 0, U),
                ],
                1,
                1,
            )
        };
        let state_attrs = || {
            vec![
                ("id", true, Text),
                ("initial", false, Text),
                ("automatic", false, Text),
                ("multiple", false, Bool),
                ("consuming", false, Bool),
            ]
        };
        add("state", state_attrs(), Some(state_content()));
        add("fsm", state_attrs(), Some(state_content()));
        add(
            "transition",
            vec![
                ("event", false, Text),
                ("cond", false, Text),
                ("target", false, Text),
                ("action", false, Text),
                ("saveStoredFields", false, Text),
                ("clearStoredFields", false, Text),
            ],
            None,
        );
        add("handlers", vec![("action", true, Text)], None);
        // --- views
        add(
            "timeGraphView",
            vec![("id", true, Text)],
            Some(Seq(
                vec![
                    el("head", "headOutput", 0, 1),
                    el("definedValue", "definedValue", 0, U),
                    el("entry", "viewEntry", 0, U),
                ],
                1,
                1,
            )),
        );
        add(
            "xyView",
            vec![("id", true, Text)],
            Some(Seq(
                vec![
                    el("head", "headOutput", 0, 1),
                    el("entry", "xyViewEntry", 1, 1),
                ],
                1,
                1,
            )),
        );
        add(
            "headOutput",
            vec![],
            Some(Seq(
                vec![
                    el("analysis", "outputAnalysis", 0, U),
                    el("label", "outputLabel", 0, 1),
                ],
                1,
                1,
            )),
        );
        add(
            "outputAnalysis",
            vec![("id", true, Text), ("ssid", false, Text)],
            None,
        );
        add("outputLabel", vec![("value", true, Text)], None);
        add(
            "viewEntry",
            vec![
                ("path", true, Text),
                ("analysisId", false, Text),
                ("displayText", false, Bool),
            ],
            Some(Seq(
                vec![
                    el("display", "viewStateAttribute", 0, 1),
                    el("id", "viewStateAttribute", 0, 1),
                    el("parent", "viewStateAttribute", 0, 1),
                    el("name", "viewStateAttribute", 0, 1),
                    el("entry", "viewEntry", 0, U),
                ],
                1,
                1,
            )),
        );
        add(
            "xyViewEntry",
            vec![
                ("path", true, Text),
                ("displayType", false, Enum(&["absolute", "delta"])),
            ],
            Some(Seq(
                vec![
                    el("display", "viewStateAttribute", 0, 1),
                    el("name", "viewStateAttribute", 0, 1),
                ],
                1,
                1,
            )),
        );
        add(
            "viewStateAttribute",
            vec![
                (
                    "type",
                    true,
                    Enum(&["constant", "location", "query", "self"]),
                ),
                ("value", false, Text),
                ("reference", false, Enum(&["relative", "absolute"])),
            ],
            Some(el("stateAttribute", "viewStateAttribute", 0, U)),
        );
        // --- callstack (the mainline member of the `extra` substitution group)
        add(
            "callstack",
            vec![("id", true, Text)],
            Some(Seq(
                vec![
                    el("callstackGroup", "callstackGroup", 1, U),
                    Choice(
                        vec![
                            el("analysis", "callstackAnalysis", 0, 1),
                            el("pattern", "pattern", 0, U),
                            el("stateProvider", "stateProvider", 0, U),
                        ],
                        1,
                        1,
                    ),
                ],
                1,
                1,
            )),
        );
        add("callstackAnalysis", vec![("id", true, Text)], None);
        add(
            "callstackGroup",
            vec![("name", false, Text)],
            Some(Seq(
                vec![
                    el("level", "callstackLevel", 0, U),
                    el("thread", "callstackThread", 0, 1),
                    el("host", "callstackHost", 0, 1),
                ],
                1,
                1,
            )),
        );
        add("callstackLevel", vec![("path", true, Text)], None);
        add(
            "callstackThread",
            vec![
                ("cpu", false, Text),
                ("level", false, Int),
                ("type", false, Enum(&["name", "value"])),
            ],
            None,
        );
        add(
            "callstackHost",
            vec![
                ("level", true, Int),
                ("type", false, Enum(&["name", "value"])),
            ],
            None,
        );
        add("extra", vec![], None);
        t.get_mut("extra").expect("extra").open = true;
        t
    })
}

/// End positions reachable by matching `p` on `names[pos..]`.
fn ends(p: &Particle, names: &[&str], pos: usize) -> Vec<usize> {
    let repeat = |min: u32, max: u32, step: &dyn Fn(usize) -> Vec<usize>| {
        let mut out = Vec::new();
        let mut frontier = vec![pos];
        if min == 0 {
            out.push(pos);
        }
        let mut n = 0u32;
        while !frontier.is_empty() && n < max {
            n += 1;
            let mut next: Vec<usize> = frontier.iter().flat_map(|&f| step(f)).collect();
            next.sort_unstable();
            next.dedup();
            // Stop on repetitions that consume nothing once the minimum is met.
            if n >= min {
                next.retain(|e| !out.contains(e));
                out.extend(&next);
            }
            if next == frontier {
                break;
            }
            frontier = next;
            if n as usize > names.len() + 1 && n >= min {
                break;
            }
        }
        out
    };
    match p {
        El(name, _, min, max) => {
            let avail = names[pos..].iter().take_while(|n| *n == name).count();
            let hi = (*max as usize).min(avail);
            let lo = *min as usize;
            (lo..=hi).filter(|k| *k <= avail).map(|k| pos + k).collect()
        }
        Seq(items, min, max) => repeat(*min, *max, &|start| {
            let mut cur = vec![start];
            for it in items {
                let mut next: Vec<usize> = cur.iter().flat_map(|&c| ends(it, names, c)).collect();
                next.sort_unstable();
                next.dedup();
                cur = next;
            }
            cur
        }),
        Choice(alts, min, max) => repeat(*min, *max, &|start| {
            let mut v: Vec<usize> = alts.iter().flat_map(|a| ends(a, names, start)).collect();
            v.sort_unstable();
            v.dedup();
            v
        }),
    }
}

fn child_type(p: &Particle, name: &str) -> Option<&'static str> {
    match p {
        El(n, t, _, _) => (*n == name).then_some(*t),
        Seq(v, _, _) | Choice(v, _, _) => v.iter().find_map(|c| child_type(c, name)),
    }
}

struct Validator<'a> {
    file: &'a Path,
    extra: &'a [String],
}

impl Validator<'_> {
    fn invalid(&self, el: &Element, message: String) -> XmlError {
        XmlError::Schema {
            file: self.file.to_path_buf(),
            line: el.line,
            element: el.name.clone(),
            message,
        }
    }

    fn element(&self, el: &Element, type_name: &str) -> Result<(), XmlError> {
        let ty = types()
            .get(type_name)
            .unwrap_or_else(|| panic!("schema table lacks type {type_name}"));
        for (k, v) in &el.attrs {
            if k.starts_with("xmlns") || k.starts_with("xsi:") {
                continue;
            }
            let Some((_, _, kind)) = ty.attrs.iter().find(|(n, _, _)| n == k) else {
                return Err(self.invalid(el, format!("attribute {k:?} is not allowed here")));
            };
            let ok = match kind {
                Text => true,
                NonEmpty => !v.is_empty(),
                Int => {
                    let t = v.trim();
                    let t = t.strip_prefix(['+', '-']).unwrap_or(t);
                    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
                }
                Bool => matches!(v.trim(), "true" | "false" | "1" | "0"),
                Enum(values) => values.contains(&v.as_str()),
            };
            if !ok {
                let expected = match kind {
                    Enum(values) => format!("one of {values:?}"),
                    Int => "an integer".into(),
                    Bool => "a boolean".into(),
                    _ => "a non-empty value".into(),
                };
                return Err(self.invalid(el, format!("attribute {k}={v:?}: expected {expected}")));
            }
        }
        for (n, required, _) in &ty.attrs {
            if *required && el.attr(n).is_none() {
                return Err(self.invalid(el, format!("missing required attribute {n:?}")));
            }
        }
        let names: Vec<&str> = el.children.iter().map(|c| c.name.as_str()).collect();
        match &ty.content {
            None => {
                if let Some(c) = el.children.first() {
                    return Err(self.invalid(c, format!("<{}> cannot contain elements", el.name)));
                }
            }
            Some(p) => {
                // Extension elements of the `extra` group are accepted at the top level.
                let (checked, extra): (Vec<&Element>, Vec<&Element>) = el
                    .children
                    .iter()
                    .partition(|c| !(type_name == "tmfxml" && self.extra.contains(&c.name)));
                let names: Vec<&str> = if extra.is_empty() {
                    names
                } else {
                    checked.iter().map(|c| c.name.as_str()).collect()
                };
                if type_name == "tmfxml" && names.is_empty() && !extra.is_empty() {
                    return Ok(());
                }
                let reach = ends(p, &names, 0);
                if !reach.contains(&names.len()) {
                    let furthest = reach.iter().copied().max().unwrap_or(0);
                    return Err(match checked.get(furthest) {
                        Some(c) => self.invalid(
                            c,
                            format!("<{}> is not allowed at this place in <{}>", c.name, el.name),
                        ),
                        None => self.invalid(
                            el,
                            format!(
                                "<{}> is incomplete (a required child element is missing)",
                                el.name
                            ),
                        ),
                    });
                }
                for c in checked {
                    let ct = child_type(p, &c.name).expect("matched children have a type");
                    self.element(c, ct)?;
                }
            }
        }
        Ok(())
    }
}

/// Validates a document against the built-in schema rules.
pub fn validate(root: &Element, file: &Path) -> Result<(), XmlError> {
    validate_with_extra(root, file, &[])
}

/// Same, also accepting top-level elements of an extension schema's `extra`
/// substitution group (their content is not checked).
pub fn validate_with_extra(root: &Element, file: &Path, extra: &[String]) -> Result<(), XmlError> {
    let v = Validator { file, extra };
    if root.name != "tmfxml" {
        return Err(v.invalid(root, "the root element must be <tmfxml>".into()));
    }
    v.element(root, "tmfxml")
}
