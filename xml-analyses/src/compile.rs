//! XML element tree -> [`Program`]: resolves definedValues (`$name`), locations,
//! mapping groups, tests and actions once, turns event-name patterns into
//! regexes and field names into [`FieldId`]s.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use regex::Regex;
use sht::StateValue;

use crate::dom::Element;
use crate::js;
use crate::program::*;
use crate::XmlError;

/// Names visible while compiling one analysis.
#[derive(Default)]
pub struct Context {
    pub defined: HashMap<String, String>,
    pub locations: HashMap<String, Vec<AttrElem>>,
    pub mapping_ids: HashMap<String, usize>,
    pub mapping_groups: Vec<Vec<(Value, Value)>>,
    pub tests: HashMap<String, usize>,
    pub test_list: Vec<Cond>,
    pub actions: HashMap<String, usize>,
    pub action_list: Vec<Vec<ActionItem>>,
    pub fields: Vec<String>,
    pub uses_script: bool,
    pub in_pattern: bool,
}

pub struct Compiler<'a> {
    pub file: &'a Path,
    pub ctx: Context,
}

type R<T> = Result<T, XmlError>;

impl<'a> Compiler<'a> {
    pub fn new(file: &'a Path) -> Self {
        Compiler {
            file,
            ctx: Context::default(),
        }
    }

    pub fn err(&self, el: &Element, message: impl Into<String>) -> XmlError {
        XmlError::Compile {
            file: PathBuf::from(self.file),
            line: el.line,
            element: el.name.clone(),
            message: message.into(),
        }
    }

    fn field_id(&mut self, name: &str) -> FieldId {
        if let Some(i) = self.ctx.fields.iter().position(|f| f == name) {
            return i;
        }
        self.ctx.fields.push(name.to_string());
        self.ctx.fields.len() - 1
    }

    /// `$name` substitution; `None` when the reference is undefined.
    fn subst(&self, v: &str) -> Option<String> {
        match v.strip_prefix('$') {
            Some(name) => self.ctx.defined.get(name).cloned(),
            None => Some(v.to_string()),
        }
    }

    fn required_subst(&self, el: &Element, attr: &str) -> R<String> {
        let raw = el
            .attr(attr)
            .ok_or_else(|| self.err(el, format!("missing attribute {attr:?}")))?;
        let v = self
            .subst(raw)
            .ok_or_else(|| self.err(el, format!("undefined definedValue {raw:?}")))?;
        if v.is_empty() {
            return Err(self.err(el, format!("empty {attr:?}")));
        }
        Ok(v)
    }

    pub fn defined_values(&mut self, parent: &Element) {
        for d in parent.children_named("definedValue") {
            if let (Some(n), Some(v)) = (d.attr("name"), d.attr("value")) {
                self.ctx.defined.insert(n.to_string(), v.to_string());
            }
        }
    }

    pub fn locations(&mut self, parent: &Element) -> R<()> {
        for l in parent.children_named("location") {
            let id = l
                .attr("id")
                .ok_or_else(|| self.err(l, "location without id"))?;
            let path = self.path(l)?;
            // An empty location is logged and not registered (later use fails).
            if !path.is_empty() {
                self.ctx.locations.insert(id.to_string(), path);
            }
        }
        Ok(())
    }

    pub fn mapping_groups(&mut self, parent: &Element) -> R<()> {
        for g in parent.children_named("mappingGroup") {
            let id = g
                .attr("id")
                .ok_or_else(|| self.err(g, "mappingGroup without id"))?;
            let mut entries = Vec::new();
            for e in g.children_named("entry") {
                let vals: Vec<&Element> = e.children_named("stateValue").collect();
                if vals.len() != 2 {
                    return Err(self.err(e, "a mapping entry needs two stateValues (key, value)"));
                }
                entries.push((self.value(vals[0])?, self.value(vals[1])?));
            }
            self.ctx.mapping_groups.push(entries);
            let idx = self.ctx.mapping_groups.len() - 1;
            self.ctx.mapping_ids.insert(id.to_string(), idx);
        }
        Ok(())
    }

    /// The stateAttribute children of `el`, as one path.
    pub fn path(&mut self, el: &Element) -> R<Vec<AttrElem>> {
        let mut out = Vec::new();
        for a in el.children_named("stateAttribute") {
            self.attribute(a, &mut out)?;
        }
        Ok(out)
    }

    pub fn attribute(&mut self, a: &Element, out: &mut Vec<AttrElem>) -> R<()> {
        let ty = a.attr("type").unwrap_or("");
        match ty {
            "constant" => {
                let v = self.required_subst(a, "value")?;
                if v == "#CurrentScenario" {
                    out.push(AttrElem::CurrentScenario);
                } else {
                    out.push(AttrElem::Constant(v));
                }
            }
            "eventField" => {
                let v = self.required_subst(a, "value")?;
                let id = self.field_id(&v);
                out.push(AttrElem::EventField(id));
            }
            "eventName" => out.push(AttrElem::EventName),
            "location" => {
                let v = self.required_subst(a, "value")?;
                let loc = self
                    .ctx
                    .locations
                    .get(&v)
                    .ok_or_else(|| self.err(a, format!("undefined location {v:?}")))?;
                out.extend(loc.iter().cloned());
            }
            "query" => {
                let p = self.path(a)?;
                if p.is_empty() {
                    return Err(self.err(a, "query without stateAttribute children"));
                }
                out.push(AttrElem::Query(p));
            }
            "self" => out.push(AttrElem::SelfAttr),
            "pool" => out.push(AttrElem::Pool),
            "null" => out.push(AttrElem::Null),
            other => return Err(self.err(a, format!("unknown stateAttribute type {other:?}"))),
        }
        Ok(())
    }

    fn forced(&self, el: &Element) -> R<Option<Forced>> {
        Ok(match el.attr("forcedType") {
            None | Some("") | Some("null") => None,
            Some("int") => Some(Forced::Int),
            Some("long") => Some(Forced::Long),
            Some("double") => Some(Forced::Double),
            Some("string") => Some(Forced::String),
            Some(o) => return Err(self.err(el, format!("unknown forcedType {o:?}"))),
        })
    }

    /// A `stateValue` (or `futureTime`, `segName`...) element.
    pub fn value(&mut self, el: &Element) -> R<Value> {
        let forced = self.forced(el)?;
        let mapping = match el.attr("mappingGroup") {
            None => None,
            Some(g) => Some(
                *self
                    .ctx
                    .mapping_ids
                    .get(g)
                    .ok_or_else(|| self.err(el, format!("undefined mappingGroup {g:?}")))?,
            ),
        };
        if el.attr("stack") == Some("peek") {
            let p = self.path(el)?;
            return Ok(Value {
                kind: ValueKind::Peek(p),
                mapping,
                forced,
            });
        }
        let ty = el.attr("type").unwrap_or("");
        let kind = match ty {
            "null" | "delete" => ValueKind::Const(StateValue::Null),
            "int" | "long" => {
                let raw = el
                    .attr("value")
                    .ok_or_else(|| self.err(el, format!("{ty} value without value")))?;
                let v = self
                    .subst(raw)
                    .ok_or_else(|| self.err(el, format!("undefined definedValue {raw:?}")))?;
                let parsed = if ty == "int" {
                    java_parse_i32(&v).map(StateValue::Int)
                } else {
                    java_parse_i64(&v).map(StateValue::Long)
                };
                ValueKind::Const(
                    parsed.ok_or_else(|| self.err(el, format!("{v:?} is not a valid {ty}")))?,
                )
            }
            "string" => match el.attr("value") {
                None => ValueKind::Const(StateValue::string("")),
                Some(raw) => match self.subst(raw) {
                    Some(v) => ValueKind::Const(StateValue::string(&v)),
                    None => ValueKind::Const(StateValue::Null),
                },
            },
            "eventField" => {
                let v = self.required_subst(el, "value")?;
                ValueKind::EventField(self.field_id(&v))
            }
            "eventName" => {
                return Ok(Value {
                    kind: ValueKind::EventName,
                    mapping,
                    forced: None,
                })
            }
            "query" => {
                let p = self.path(el)?;
                if p.is_empty() {
                    return Err(self.err(el, "query without stateAttribute children"));
                }
                ValueKind::Query(p)
            }
            "script" => {
                let raw = el
                    .attr("value")
                    .ok_or_else(|| self.err(el, "script without value"))?;
                let source = self
                    .subst(raw)
                    .ok_or_else(|| self.err(el, format!("undefined definedValue {raw:?}")))?;
                let expr = js::parse(&source).map_err(|e| {
                    self.err(
                        el,
                        format!(
                            "script {source:?} is outside the JavaScript subset Sextant runs: {e}"
                        ),
                    )
                })?;
                let mut vars = Vec::new();
                for c in el.children_named("stateValue") {
                    let id = c.attr("id").unwrap_or("").to_string();
                    vars.push((id, self.value(c)?));
                }
                self.ctx.uses_script = true;
                ValueKind::Script { source, expr, vars }
            }
            other => {
                return Err(self.err(el, format!("unsupported stateValue type {other:?}")));
            }
        };
        Ok(Value {
            kind,
            mapping,
            forced,
        })
    }

    fn bool_attr(el: &Element, name: &str) -> bool {
        el.attr(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// A `stateChange` (or `then`/`else`) element.
    pub fn state_change(&mut self, el: &Element) -> R<Change> {
        if let Some(cond_el) = el.child("if") {
            if el.children_named("if").count() > 1 {
                return Err(self.err(el, "more than one <if>"));
            }
            let cond = self.if_cond(cond_el)?;
            let then_el = el
                .child("then")
                .ok_or_else(|| self.err(el, "<if> without <then>"))?;
            let then = Box::new(self.state_change(then_el)?);
            let otherwise = match el.child("else") {
                Some(e) => Some(Box::new(self.state_change(e)?)),
                None => None,
            };
            return Ok(Change::If {
                cond,
                then,
                otherwise,
            });
        }
        let path = self.path(el)?;
        let value_el = el
            .child("stateValue")
            .ok_or_else(|| self.err(el, "state change without <stateValue>"))?;
        let stack = match value_el.attr("stack") {
            Some("push") => Some(StackOp::Push),
            Some("pop") => Some(StackOp::Pop),
            Some("popAll") => Some(StackOp::PopAll),
            _ => None,
        };
        let increment = Self::bool_attr(value_el, "increment");
        let update = Self::bool_attr(value_el, "update");
        if stack.is_some() && (increment || update) {
            return Err(self.err(value_el, "update or increment combined with a stack action"));
        }
        let value = self.value(value_el)?;
        let future = match el.child("futureTime") {
            Some(f) => Some(self.value(f)?),
            None => None,
        };
        Ok(Change::Assign(Assign {
            path,
            value,
            stack,
            increment,
            update,
            future,
        }))
    }

    /// The single condition inside an `if` (or `test/if`).
    pub fn if_cond(&mut self, el: &Element) -> R<Cond> {
        if el.children.len() != 1 {
            return Err(self.err(el, "<if> must hold exactly one condition, and, or or not"));
        }
        self.cond(&el.children[0])
    }

    pub fn cond(&mut self, el: &Element) -> R<Cond> {
        match el.name.as_str() {
            "not" => {
                if el.children.len() != 1 {
                    return Err(self.err(el, "<not> must hold exactly one condition"));
                }
                Ok(Cond::Not(Box::new(self.cond(&el.children[0])?)))
            }
            "and" | "or" => {
                if el.children.is_empty() {
                    return Err(self.err(el, format!("empty <{}>", el.name)));
                }
                let mut v = Vec::new();
                for c in &el.children {
                    v.push(self.cond(c)?);
                }
                Ok(if el.name == "and" {
                    Cond::And(v)
                } else {
                    Cond::Or(v)
                })
            }
            "condition" => self.condition(el),
            other => Err(self.err(el, format!("<{other}> is not a condition"))),
        }
    }

    fn condition(&mut self, el: &Element) -> R<Cond> {
        let mut svs = Vec::new();
        el.children
            .iter()
            .for_each(|c| c.descendants_named("stateValue", &mut svs));
        let op = match el.attr("operator") {
            None | Some("") | Some("eq") => CmpOp::Eq,
            Some("ne") => CmpOp::Ne,
            Some("ge") => CmpOp::Ge,
            Some("gt") => CmpOp::Gt,
            Some("le") => CmpOp::Le,
            Some("lt") => CmpOp::Lt,
            Some(o) => return Err(self.err(el, format!("unknown operator {o:?}"))),
        };
        if !svs.is_empty() {
            let direct: Vec<&Element> = el.children_named("stateValue").collect();
            if direct.len() == 2 {
                let left = Operand::Value(self.value(direct[0])?);
                let right = self.value(direct[1])?;
                return Ok(Cond::Compare { left, op, right });
            }
            if direct.len() == 1 {
                let right = self.value(direct[0])?;
                let left = if let Some(f) = el.child("field") {
                    let name = self.required_subst(f, "name")?;
                    Operand::Field(self.field_id(&name))
                } else {
                    let p = self.path(el)?;
                    if p.is_empty() {
                        return Err(self.err(el, "condition without a left operand"));
                    }
                    Operand::Path(p)
                };
                return Ok(Cond::Compare { left, op, right });
            }
            return Err(self.err(el, "a condition needs one or two stateValues"));
        }
        if let Some(tr) = el.child("timerange") {
            let scale = self.unit(tr)?;
            if tr.children.len() != 1 {
                return Err(self.err(tr, "<timerange> needs exactly one of <in>, <out>"));
            }
            let c = &tr.children[0];
            let num = |k: &str| -> R<i64> {
                let v = c
                    .attr(k)
                    .ok_or_else(|| self.err(c, format!("missing {k:?}")))?;
                java_parse_i64(v)
                    .map(|v| v.saturating_mul(scale))
                    .ok_or_else(|| self.err(c, format!("{k}={v:?} is not a number")))
            };
            return Ok(Cond::TimeRange {
                inside: c.name == "in",
                begin: num("begin")?,
                end: num("end")?,
            });
        }
        if let Some(et) = el.child("elapsedTime") {
            let scale = self.unit(et)?;
            if et.children.len() != 1 {
                return Err(self.err(
                    et,
                    "<elapsedTime> needs exactly one of <less>, <equal>, <more>",
                ));
            }
            let c = &et.children[0];
            let kind = match c.name.as_str() {
                "less" => Elapsed::Less,
                "equal" => Elapsed::Equal,
                "more" => Elapsed::More,
                o => return Err(self.err(c, format!("unknown elapsedTime comparison <{o}>"))),
            };
            let since = c
                .attr("since")
                .ok_or_else(|| self.err(c, "missing \"since\""))?
                .to_string();
            let v = c.attr("value").unwrap_or("");
            let value = java_parse_i64(v)
                .ok_or_else(|| self.err(c, format!("value={v:?} is not a number")))?
                .saturating_mul(scale);
            return Ok(Cond::ElapsedTime { kind, since, value });
        }
        Err(self.err(el, "empty condition"))
    }

    fn unit(&self, el: &Element) -> R<i64> {
        // No default: Trace Compass's DOM is not schema-aware, so a missing unit throws.
        match el.attr("unit") {
            Some("ns") => Ok(1),
            Some("us") => Ok(1_000),
            Some("ms") => Ok(1_000_000),
            Some("s") => Ok(1_000_000_000),
            Some(o) => Err(self.err(el, format!("unknown unit {o:?}"))),
            None => Err(self.err(el, "missing unit (Trace Compass applies no default)")),
        }
    }

    /// `eventName` / transition `event` pattern.
    pub fn matcher(&self, el: &Element, pattern: &str, split_alternatives: bool) -> R<NameMatcher> {
        let parts: Vec<&str> = if split_alternatives {
            pattern.split('|').collect()
        } else {
            vec![pattern]
        };
        let mut regexes = Vec::new();
        for p in parts {
            let re = format!("^(?:{})$", p.replace('*', ".*"));
            regexes.push(
                Regex::new(&re)
                    .map_err(|e| self.err(el, format!("bad event name pattern {p:?}: {e}")))?,
            );
        }
        Ok(NameMatcher {
            source: pattern.to_string(),
            regexes,
        })
    }

    fn ids(
        &self,
        el: &Element,
        list: &str,
        table: &HashMap<String, usize>,
        what: &str,
    ) -> R<Vec<usize>> {
        list.split(':')
            .filter(|s| !s.is_empty())
            .map(|id| {
                table
                    .get(id)
                    .copied()
                    .ok_or_else(|| self.err(el, format!("undefined {what} {id:?}")))
            })
            .collect()
    }

    pub fn test(&mut self, el: &Element) -> R<()> {
        let id = el
            .attr("id")
            .ok_or_else(|| self.err(el, "test without id"))?;
        let if_el = el
            .child("if")
            .ok_or_else(|| self.err(el, "test without <if>"))?;
        let c = self.if_cond(if_el)?;
        self.ctx.test_list.push(c);
        let idx = self.ctx.test_list.len() - 1;
        self.ctx.tests.insert(id.to_string(), idx);
        Ok(())
    }

    pub fn action(&mut self, el: &Element) -> R<usize> {
        let mut items = Vec::new();
        for c in &el.children {
            match c.name.as_str() {
                "stateChange" => items.push(ActionItem::Change(Box::new(self.state_change(c)?))),
                "segment" => items.push(ActionItem::Segment(Box::new(self.segment(c)?))),
                "action" => items.push(ActionItem::Action(self.action(c)?)),
                // fsmScheduleAction is unsupported by Trace Compass too (ignored with a warning).
                _ => {}
            }
        }
        self.ctx.action_list.push(items);
        let idx = self.ctx.action_list.len() - 1;
        if let Some(id) = el.attr("id") {
            self.ctx.actions.insert(id.to_string(), idx);
        }
        Ok(idx)
    }

    pub fn segment(&mut self, el: &Element) -> R<SegmentAction> {
        let st = el
            .child("segType")
            .ok_or_else(|| self.err(el, "segment without <segType>"))?;
        let name = if let Some(n) = st.attr("segName") {
            let v = self.subst(n).unwrap_or_default();
            Value {
                kind: ValueKind::Const(StateValue::string(&v)),
                mapping: None,
                forced: None,
            }
        } else {
            let sn = st
                .child("segName")
                .and_then(|s| s.child("stateValue"))
                .ok_or_else(|| self.err(st, "segType without segName"))?;
            self.value(sn)?
        };
        let (mut begin, mut end, mut duration) = (None, None, None);
        if let Some(t) = el.child("segTime") {
            let b = t
                .child("begin")
                .ok_or_else(|| self.err(t, "segTime without <begin>"))?;
            begin = Some(self.value(b)?);
            match (t.child("end"), t.child("duration")) {
                (Some(_), Some(_)) => {
                    return Err(self.err(t, "segTime with both <end> and <duration>"))
                }
                (Some(e), None) => end = Some(self.value(e)?),
                (None, Some(d)) => duration = Some(self.value(d)?),
                (None, None) => return Err(self.err(t, "segTime without <end> or <duration>")),
            }
        }
        let mut fields: Vec<(String, Forced, Option<Value>)> = Vec::new();
        if let Some(sc) = el.child("segContent") {
            for f in sc.children_named("segField") {
                let name = f
                    .attr("name")
                    .ok_or_else(|| self.err(f, "segField without name"))?
                    .to_string();
                if fields.iter().any(|(n, _, _)| *n == name) {
                    return Err(self.err(f, format!("duplicate segField {name:?}")));
                }
                let ty = f
                    .attr("type")
                    .ok_or_else(|| self.err(f, "segField without type"))?;
                let forced = match ty {
                    "null" => {
                        fields.push((name, Forced::String, None));
                        continue;
                    }
                    "int" => Forced::Int,
                    "long" => Forced::Long,
                    "string" => Forced::String,
                    o => return Err(self.err(f, format!("unknown segField type {o:?}"))),
                };
                let value = if let Some(v) = f.attr("value") {
                    let v = self.subst(v).unwrap_or_default();
                    let sv = match forced {
                        Forced::Int => java_parse_i32(&v).map(StateValue::Int),
                        Forced::Long => java_parse_i64(&v).map(StateValue::Long),
                        _ => Some(StateValue::string(&v)),
                    }
                    .ok_or_else(|| self.err(f, format!("{v:?} is not a valid {ty}")))?;
                    Value {
                        kind: ValueKind::Const(sv),
                        mapping: None,
                        forced: None,
                    }
                } else {
                    let sv = f
                        .child("stateValue")
                        .ok_or_else(|| self.err(f, "segField without value"))?;
                    let mut v = self.value(sv)?;
                    v.forced = Some(forced);
                    v
                };
                fields.push((name, forced, Some(value)));
            }
        }
        Ok(SegmentAction {
            name,
            begin,
            end,
            duration,
            fields,
        })
    }

    fn transition(&mut self, el: &Element, states: &HashMap<String, usize>) -> R<Transition> {
        let event = match el.attr("event") {
            Some(e) => Some(self.matcher(el, e, true)?),
            None => None,
        };
        let conds = self.ids(el, el.attr("cond").unwrap_or(""), &self.ctx.tests, "test")?;
        let target = el
            .attr("target")
            .ok_or_else(|| self.err(el, "transition without target"))?;
        let target = *states
            .get(target)
            .ok_or_else(|| self.err(el, format!("undefined target state {target:?}")))?;
        let actions = self.ids(
            el,
            el.attr("action").unwrap_or(""),
            &self.ctx.actions,
            "action",
        )?;
        Ok(Transition {
            event,
            conds,
            target,
            actions,
        })
    }

    pub fn fsm(&mut self, el: &Element) -> R<Fsm> {
        let id = el
            .attr("id")
            .ok_or_else(|| self.err(el, "fsm without id"))?
            .to_string();
        // State table first so transitions can refer forward.
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut order: Vec<&Element> = Vec::new();
        for s in el.children_named("state") {
            let sid = s
                .attr("id")
                .ok_or_else(|| self.err(s, "state without id"))?;
            if names.insert(sid.to_string(), order.len()).is_some() {
                return Err(self.err(s, format!("state {sid:?} defined twice")));
            }
            order.push(s);
        }
        let final_el = el.child("final");
        if let Some(f) = final_el {
            let fid = f
                .attr("id")
                .ok_or_else(|| self.err(f, "final without id"))?;
            if names.insert(fid.to_string(), order.len()).is_some() {
                return Err(self.err(f, format!("state {fid:?} defined twice")));
            }
            order.push(f);
        }
        let initial_state_el = el.child("initialState");
        let synthetic = initial_state_el.map(|_| order.len());
        let mut states = Vec::new();
        for s in &order {
            let mut transitions = Vec::new();
            if s.name == "state" {
                for t in s.children_named("transition") {
                    transitions.push(self.transition(t, &names)?);
                }
            }
            let hooks = |c: &Compiler, name: &str| -> R<Vec<usize>> {
                match (s.name.as_str(), s.child(name)) {
                    ("state", Some(h)) => {
                        c.ids(h, h.attr("action").unwrap_or(""), &c.ctx.actions, "action")
                    }
                    _ => Ok(Vec::new()),
                }
            };
            let onentry = hooks(self, "onentry")?;
            let onexit = hooks(self, "onexit")?;
            states.push(FsmState {
                id: s.attr("id").unwrap_or("").to_string(),
                is_final: s.name == "final" || transitions.is_empty(),
                transitions,
                onentry,
                onexit,
            });
        }
        if let Some(is) = initial_state_el {
            let mut transitions = Vec::new();
            for t in is.children_named("transition") {
                transitions.push(self.transition(t, &names)?);
            }
            states.push(FsmState {
                id: "initialState".into(),
                is_final: transitions.is_empty(),
                transitions,
                onentry: Vec::new(),
                onexit: Vec::new(),
            });
        }
        let initial = if let Some(s) = synthetic {
            s
        } else if let Some(init) = el.attr("initial") {
            *names
                .get(init)
                .ok_or_else(|| self.err(el, format!("undefined initial state {init:?}")))?
        } else if let Some(ie) = el.child("initial") {
            let t = ie
                .child("transition")
                .ok_or_else(|| self.err(ie, "<initial> without transition"))?;
            let target = t
                .attr("target")
                .ok_or_else(|| self.err(t, "transition without target"))?;
            *names
                .get(target)
                .ok_or_else(|| self.err(t, format!("undefined target state {target:?}")))?
        } else if el.children_named("state").next().is_none() {
            return Err(self.err(el, "fsm without any state"));
        } else {
            0
        };
        if states.is_empty() {
            return Err(self.err(el, "fsm without any state"));
        }
        let mut preconditions = Vec::new();
        for p in el.children_named("precondition") {
            let event = match p.attr("event") {
                Some(e) => Some(self.matcher(p, e, true)?),
                None => None,
            };
            let conds = self.ids(p, p.attr("cond").unwrap_or(""), &self.ctx.tests, "test")?;
            preconditions.push(Precondition { event, conds });
        }
        let flag = |name: &str| {
            !el.attr(name)
                .is_some_and(|v| v.eq_ignore_ascii_case("false"))
        };
        Ok(Fsm {
            id,
            states,
            initial,
            multiple: flag("multiple"),
            consuming: flag("consuming"),
            preconditions,
        })
    }
}

/// Java `Integer.parseInt`.
pub fn java_parse_i32(s: &str) -> Option<i32> {
    if s.is_empty() || s.starts_with("+-") || s.starts_with("-+") {
        return None;
    }
    s.parse().ok()
}

/// Java `Long.parseLong`.
pub fn java_parse_i64(s: &str) -> Option<i64> {
    if s.is_empty() || s.starts_with("+-") || s.starts_with("-+") {
        return None;
    }
    s.parse().ok()
}

fn head_info(el: &Element) -> (String, Vec<String>) {
    let id = el.attr("id").unwrap_or("").to_string();
    let heads: Vec<&Element> = el.children_named("head").collect();
    let mut label = id.clone();
    let mut types = Vec::new();
    if heads.len() == 1 {
        if let Some(l) = heads[0].child("label") {
            label = l.attr("value").unwrap_or("").to_string();
        }
    }
    for h in heads {
        for t in h.children_named("traceType") {
            if let Some(v) = t.attr("id") {
                types.push(v.to_string());
            }
        }
    }
    (label, types)
}

/// Compiles one `stateProvider` or `pattern` element.
pub fn compile_analysis(el: &Element, file: &Path) -> R<Program> {
    let mut c = Compiler::new(file);
    let id = el
        .attr("id")
        .ok_or_else(|| c.err(el, "analysis without id"))?
        .to_string();
    let version_text = el.attr("version").unwrap_or("");
    let version = java_parse_i32(version_text)
        .ok_or_else(|| c.err(el, format!("version {version_text:?} is not an int")))?;
    let (label, trace_types) = head_info(el);
    c.defined_values(el);
    c.locations(el)?;
    c.mapping_groups(el)?;
    let mut handlers = Vec::new();
    let mut pattern = None;
    let kind = if el.name == "pattern" {
        c.ctx.in_pattern = true;
        let ph = el
            .child("patternHandler")
            .ok_or_else(|| c.err(el, "pattern without <patternHandler>"))?;
        c.defined_values(ph);
        for child in &ph.children {
            match child.name.as_str() {
                "test" => c.test(child)?,
                "action" => {
                    c.action(child)?;
                }
                _ => {}
            }
        }
        let mut fsms = Vec::new();
        for f in ph.children_named("fsm") {
            fsms.push(c.fsm(f)?);
        }
        let initial = match ph.attr("initial").filter(|s| !s.is_empty()) {
            None => (0..fsms.len()).collect(),
            Some(list) => list
                .split(':')
                .filter_map(|n| fsms.iter().position(|f| f.id == n))
                .collect(),
        };
        pattern = Some(PatternProgram {
            tests: std::mem::take(&mut c.ctx.test_list),
            actions: std::mem::take(&mut c.ctx.action_list),
            fsms,
            initial,
        });
        AnalysisKind::Pattern
    } else {
        for h in el.children_named("eventHandler") {
            let name = h.attr("eventName").unwrap_or("");
            let event = c.matcher(h, name, false)?;
            let mut changes = Vec::new();
            for sc in h.children_named("stateChange") {
                changes.push(c.state_change(sc)?);
            }
            handlers.push(Handler { event, changes });
        }
        AnalysisKind::StateProvider
    };
    Ok(Program {
        id,
        kind,
        version,
        label,
        trace_types,
        fields: c.ctx.fields,
        mapping_groups: c.ctx.mapping_groups,
        handlers,
        pattern,
        uses_script: c.ctx.uses_script,
    })
}
