//! Executes a [`Program`] event by event on a state system: state changes,
//! conditions, future changes, attribute pools, and the pattern FSMs with their
//! scenarios and segments.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use sht::{Quark, StateSystemBuilder, StateValue, ROOT_QUARK};

use crate::js::{self, JsValue};
use crate::program::*;

/// One event as the interpreter sees it.
pub trait EventAccess {
    fn name(&self) -> &str;
    fn timestamp(&self) -> i64;
    /// Content field `id` (named `name` in the program's field table), if the event has it.
    fn field(&self, id: FieldId, name: &str) -> Option<StateValue>;
    /// The trace's CPU aspect for this event.
    fn cpu(&self) -> Option<u32>;
}

/// Why an analysis stopped (Trace Compass fails the whole analysis in these cases).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("analysis {analysis}: at {timestamp} ns: state system: {source}")]
    State {
        analysis: String,
        timestamp: i64,
        #[source]
        source: sht::Error,
    },
    #[error("analysis {analysis}: at {timestamp} ns: {message}")]
    Value {
        analysis: String,
        timestamp: i64,
        message: String,
    },
}

type R<T> = Result<T, RunError>;

/// A pattern segment (Trace Compass `TmfXmlPatternSegment`).
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub start: i64,
    pub end: i64,
    pub name: String,
    /// Content fields (null values dropped), in definition order.
    pub content: Vec<(String, StateValue)>,
}

#[derive(Clone, Copy, Debug)]
enum FutureOp {
    Modify,
    Push,
    Pop,
}

#[derive(Default)]
struct PoolAlloc {
    free: std::collections::BTreeSet<u32>,
    next: u32,
}

impl PoolAlloc {
    fn take(&mut self) -> u32 {
        if let Some(n) = self.free.pop_first() {
            return n;
        }
        self.next += 1;
        self.next - 1
    }
}

#[derive(Clone, Debug, Default)]
struct Scenario {
    fsm: usize,
    slot: u32,
    quark: Quark,
    state: usize,
    /// 0 pending, 1 in progress, 2 matched.
    status: i32,
    /// (pool parent, attribute, number)
    pools: Vec<(Quark, Quark, u32)>,
    /// Trace Compass's shared dummy scenario (state providers, preconditions): its
    /// pool attributes are taken once and kept for the whole analysis.
    ephemeral: bool,
}

#[derive(Default)]
struct FsmRuntime {
    active: VecDeque<Scenario>,
    pending: Option<Scenario>,
    live: usize,
    ever: bool,
    free_slots: VecDeque<u32>,
    next_slot: u32,
}

/// Interpreter state for one analysis over one trace.
pub struct Runtime {
    prog: Arc<Program>,
    host_id: String,
    futures: BTreeMap<(i64, u64), (FutureOp, Quark, StateValue)>,
    future_seq: u64,
    dispatch: HashMap<String, Arc<[usize]>>,
    pools: HashMap<Quark, PoolAlloc>,
    fsms: Vec<FsmRuntime>,
    seen_first: bool,
    segments: Vec<Segment>,
    now: i64,
    /// The dummy scenario of state providers and preconditions.
    dummy: Scenario,
}

/// Java `String.valueOf(double)`.
pub fn java_double_string(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let a = d.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        let s = format!("{d}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let s = format!("{d:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = if m.contains('.') {
            m.to_string()
        } else {
            format!("{m}.0")
        };
        format!("{m}E{e}")
    }
}

/// Java `String.valueOf` of a state value (null -> "null").
pub fn java_string(v: &StateValue) -> String {
    match v {
        StateValue::Null => "null".into(),
        StateValue::Int(i) => i.to_string(),
        StateValue::Long(l) => l.to_string(),
        StateValue::Double(d) => java_double_string(*d),
        StateValue::String(s) => s.to_string(),
        StateValue::Custom(c) => format!("custom({})", c.type_id),
    }
}

/// Calls `f` with `String.valueOf(v)`, formatting integers on the stack (the
/// common case for attribute names taken from event fields).
fn with_name<R>(v: &StateValue, f: impl FnOnce(&str) -> R) -> R {
    let n = match v {
        StateValue::Int(i) => i64::from(*i),
        StateValue::Long(l) => *l,
        StateValue::String(s) => return f(s),
        other => return f(&java_string(other)),
    };
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    let mut m = n.unsigned_abs();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        pos -= 1;
        buf[pos] = b'-';
    }
    f(std::str::from_utf8(&buf[pos..]).unwrap_or("0"))
}

fn utf16_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Java `(int)` of a double: truncation, saturating, NaN -> 0.
fn d2i(d: f64) -> i32 {
    d as i32
}

fn compare(left: &StateValue, op: CmpOp, right: &StateValue) -> bool {
    use std::cmp::Ordering;
    let ord: Ordering = match (left, right) {
        (StateValue::Int(a), StateValue::Int(b)) => a.cmp(b),
        (StateValue::Int(a), StateValue::Long(b)) => a.cmp(&(*b as i32)),
        (StateValue::Int(a), StateValue::Double(b)) => a.cmp(&d2i(*b)),
        (StateValue::Long(a), StateValue::Int(b)) => a.cmp(&i64::from(*b)),
        (StateValue::Long(a), StateValue::Long(b)) => a.cmp(b),
        (StateValue::Long(a), StateValue::Double(b)) => a.cmp(&(*b as i64)),
        _ => utf16_cmp(&java_string(left), &java_string(right)),
    };
    match op {
        CmpOp::Eq => ord.is_eq(),
        CmpOp::Ne => ord.is_ne(),
        CmpOp::Ge => ord.is_ge(),
        CmpOp::Gt => ord.is_gt(),
        CmpOp::Le => ord.is_le(),
        CmpOp::Lt => ord.is_lt(),
    }
}

fn js_of(v: &StateValue) -> JsValue {
    match v {
        StateValue::Null => JsValue::Null,
        StateValue::Int(i) => JsValue::Num(f64::from(*i)),
        StateValue::Long(l) => JsValue::Num(*l as f64),
        StateValue::Double(d) => JsValue::Num(*d),
        StateValue::String(s) => JsValue::Str(s.to_string()),
        StateValue::Custom(_) => JsValue::Null,
    }
}

fn value_of_js(v: JsValue) -> StateValue {
    match v {
        JsValue::Num(n) => StateValue::Double(n),
        JsValue::Str(s) => StateValue::string(&s),
        JsValue::Bool(b) => StateValue::string(&b.to_string()),
        JsValue::Null | JsValue::Undefined => StateValue::Null,
    }
}

impl Runtime {
    pub fn new(prog: Arc<Program>, host_id: &str) -> Self {
        let fsms = prog
            .pattern
            .as_ref()
            .map(|p| p.fsms.iter().map(|_| FsmRuntime::default()).collect())
            .unwrap_or_default();
        Runtime {
            prog,
            host_id: host_id.to_string(),
            futures: BTreeMap::new(),
            future_seq: 0,
            dispatch: HashMap::new(),
            pools: HashMap::new(),
            fsms,
            seen_first: false,
            segments: Vec::new(),
            now: 0,
            dummy: Scenario {
                ephemeral: true,
                ..Scenario::default()
            },
        }
    }

    pub fn program(&self) -> &Program {
        &self.prog
    }

    pub fn take_segments(&mut self) -> Vec<Segment> {
        let mut s = std::mem::take(&mut self.segments);
        s.sort_by(|a, b| {
            (a.start, a.end, &a.name)
                .cmp(&(b.start, b.end, &b.name))
                .then_with(|| format!("{:?}", a.content).cmp(&format!("{:?}", b.content)))
        });
        s
    }

    fn state_err(&self, source: sht::Error) -> RunError {
        RunError::State {
            analysis: self.prog.id.clone(),
            timestamp: self.now,
            source,
        }
    }

    fn value_err(&self, message: String) -> RunError {
        RunError::Value {
            analysis: self.prog.id.clone(),
            timestamp: self.now,
            message,
        }
    }

    fn field(&self, ev: &dyn EventAccess, id: FieldId) -> StateValue {
        let name = &self.prog.fields[id];
        if let Some(v) = ev.field(id, name) {
            return v;
        }
        // Special names apply only when no such content field exists.
        if name.eq_ignore_ascii_case("cpu") {
            if let Some(c) = ev.cpu() {
                return StateValue::Int(c as i32);
            }
        } else if name.eq_ignore_ascii_case("timestamp") {
            return StateValue::Long(ev.timestamp());
        } else if name.eq_ignore_ascii_case("hostId") {
            return StateValue::string(&self.host_id);
        }
        StateValue::Null
    }

    fn child(&self, ss: &mut dyn StateSystemBuilder, q: Quark, name: &str) -> R<Quark> {
        // Look up first: most children exist, and the read path needs no write access.
        let c = ss.attributes().opt_quark(q, &[name]);
        if c >= 0 {
            return Ok(c);
        }
        ss.quark_relative_and_add(q, &[name])
            .map_err(|e| self.state_err(e))
    }

    /// Resolves a path from the root (or the scenario); `None` = aborted by a null.
    fn resolve_path(
        &mut self,
        path: &[AttrElem],
        ev: &dyn EventAccess,
        ss: &mut dyn StateSystemBuilder,
        sc: &mut Option<&mut Scenario>,
    ) -> R<Option<Quark>> {
        let mut q = ROOT_QUARK;
        for e in path {
            match e {
                AttrElem::Constant(s) => q = self.child(ss, q, s)?,
                // Outside a scenario Trace Compass uses its dummy scenario, whose quark
                // is -1: the root.
                AttrElem::CurrentScenario => match sc {
                    Some(s) if !s.ephemeral => q = s.quark,
                    _ => q = ROOT_QUARK,
                },
                AttrElem::EventField(id) => {
                    let v = self.field(ev, *id);
                    if v.is_null() {
                        return Ok(None);
                    }
                    q = with_name(&v, |name| self.child(ss, q, name))?;
                }
                AttrElem::EventName => q = self.child(ss, q, ev.name())?,
                AttrElem::Query(p) => {
                    let Some(target) = self.resolve_path(p, ev, ss, sc)? else {
                        return Ok(None);
                    };
                    let v = ss.query_ongoing(target).map_err(|e| self.state_err(e))?;
                    if v.is_null() {
                        return Ok(None);
                    }
                    q = with_name(&v, |name| self.child(ss, q, name))?;
                }
                AttrElem::SelfAttr => {}
                AttrElem::Pool => q = self.pool_attribute(ss, q, sc)?,
                AttrElem::Null => return Ok(None),
            }
        }
        Ok(Some(q))
    }

    fn pool_attribute(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        parent: Quark,
        sc: &mut Option<&mut Scenario>,
    ) -> R<Quark> {
        if let Some(s) = sc.as_deref() {
            if let Some((_, q, _)) = s.pools.iter().find(|(p, _, _)| *p == parent) {
                return Ok(*q);
            }
        }
        let n = self.pools.entry(parent).or_default().take();
        let q = self.child(ss, parent, &n.to_string())?;
        if let Some(s) = sc.as_deref_mut() {
            s.pools.push((parent, q, n));
        }
        Ok(q)
    }

    fn resolve_value(
        &mut self,
        v: &Value,
        ev: &dyn EventAccess,
        ss: &mut dyn StateSystemBuilder,
        sc: &mut Option<&mut Scenario>,
    ) -> R<StateValue> {
        let raw = self.resolve_raw(v, ev, ss, sc)?;
        let mapped = match v.mapping {
            None => raw,
            Some(g) => {
                let prog = Arc::clone(&self.prog);
                let mut out = StateValue::Null;
                for (k, m) in &prog.mapping_groups[g] {
                    let key = self.resolve_value(k, ev, ss, sc)?;
                    if key == raw {
                        out = self.resolve_value(m, ev, ss, sc)?;
                        break;
                    }
                }
                out
            }
        };
        match v.forced {
            None => Ok(mapped),
            Some(f) => self.force(mapped, f),
        }
    }

    fn force(&self, v: StateValue, f: Forced) -> R<StateValue> {
        let bad = |s: &str| self.value_err(format!("forcedType: {s:?} is not a valid {f:?}"));
        Ok(match (v, f) {
            (StateValue::Null, _) => StateValue::Null,
            (StateValue::String(s), Forced::Int) => {
                StateValue::Int(crate::compile::java_parse_i32(&s).ok_or_else(|| bad(&s))?)
            }
            (StateValue::String(s), Forced::Long) => {
                StateValue::Long(crate::compile::java_parse_i64(&s).ok_or_else(|| bad(&s))?)
            }
            (StateValue::String(s), Forced::Double) => {
                StateValue::Double(s.trim().parse::<f64>().map_err(|_| bad(&s))?)
            }
            (v @ StateValue::String(_), Forced::String) => v,
            (StateValue::Long(l), Forced::Int) => StateValue::Int(l as i32),
            (StateValue::Long(l), Forced::Double) => StateValue::Double(l as f64),
            (v @ StateValue::Long(_), Forced::Long) => v,
            (StateValue::Int(i), Forced::Long) => StateValue::Long(i64::from(i)),
            (StateValue::Int(i), Forced::Double) => StateValue::Double(f64::from(i)),
            (v @ StateValue::Int(_), Forced::Int) => v,
            (StateValue::Double(d), Forced::Int) => StateValue::Int(d as i32),
            (StateValue::Double(d), Forced::Long) => StateValue::Long(d as i64),
            (v @ StateValue::Double(_), Forced::Double) => v,
            (v, _) => StateValue::string(&java_string(&v)),
        })
    }

    fn resolve_raw(
        &mut self,
        v: &Value,
        ev: &dyn EventAccess,
        ss: &mut dyn StateSystemBuilder,
        sc: &mut Option<&mut Scenario>,
    ) -> R<StateValue> {
        Ok(match &v.kind {
            ValueKind::Const(c) => c.clone(),
            ValueKind::EventField(id) => self.field(ev, *id),
            ValueKind::EventName => StateValue::string(ev.name()),
            ValueKind::Query(p) => match self.resolve_path(p, ev, ss, sc)? {
                Some(q) => ss.query_ongoing(q).map_err(|e| self.state_err(e))?,
                None => StateValue::Null,
            },
            ValueKind::Peek(p) => match self.resolve_path(p, ev, ss, sc)? {
                Some(q) => self.stack_top(ss, q, ev.timestamp()),
                None => StateValue::Null,
            },
            ValueKind::Script { expr, vars, .. } => {
                let mut bound = Vec::with_capacity(vars.len());
                for (name, var) in vars {
                    // Variables get the raw value: no mapping, no forced type.
                    let raw = self.resolve_raw(var, ev, ss, sc)?;
                    bound.push((name.as_str(), js_of(&raw)));
                }
                let lookup = |n: &str| bound.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone());
                // A script error gives a null value, as in Trace Compass.
                js::eval(expr, &lookup).map_or(StateValue::Null, value_of_js)
            }
        })
    }

    fn stack_top(&self, ss: &dyn StateSystemBuilder, q: Quark, t: i64) -> StateValue {
        let depth = match ss.query_single(t, q) {
            Ok(i) => i.value,
            Err(_) => return StateValue::Null,
        };
        let Some(d) = depth.as_int().filter(|d| *d > 0) else {
            return StateValue::Null;
        };
        let child = ss.attributes().opt_quark(q, &[d.to_string()]);
        if child < 0 {
            return StateValue::Null;
        }
        ss.query_single(t, child)
            .map(|i| i.value)
            .unwrap_or(StateValue::Null)
    }

    fn eval_cond(
        &mut self,
        c: &Cond,
        ev: &dyn EventAccess,
        ss: &mut dyn StateSystemBuilder,
        sc: &mut Option<&mut Scenario>,
    ) -> R<bool> {
        Ok(match c {
            Cond::Not(x) => !self.eval_cond(x, ev, ss, sc)?,
            Cond::And(v) => {
                for x in v {
                    if !self.eval_cond(x, ev, ss, sc)? {
                        return Ok(false);
                    }
                }
                true
            }
            Cond::Or(v) => {
                for x in v {
                    if self.eval_cond(x, ev, ss, sc)? {
                        return Ok(true);
                    }
                }
                false
            }
            Cond::Compare { left, op, right } => {
                let l = match left {
                    Operand::Value(v) => self.resolve_value(v, ev, ss, sc)?,
                    Operand::Field(id) => self.field(ev, *id),
                    Operand::Path(p) => match self.resolve_path(p, ev, ss, sc)? {
                        Some(q) => ss.query_ongoing(q).map_err(|e| self.state_err(e))?,
                        None => StateValue::Null,
                    },
                };
                let r = self.resolve_value(right, ev, ss, sc)?;
                compare(&l, *op, &r)
            }
            Cond::TimeRange { inside, begin, end } => {
                let t = ev.timestamp();
                (*begin <= t && t <= *end) == *inside
            }
            Cond::ElapsedTime { kind, since, value } => {
                let Some(s) = sc.as_deref().filter(|s| !s.ephemeral) else {
                    return Ok(false);
                };
                let q = ss
                    .attributes()
                    .opt_quark(s.quark, &["state", since.as_str(), "startTime"]);
                if q < 0 {
                    return Ok(false);
                }
                let Some(entered) = ss.query_ongoing(q).ok().and_then(|v| v.as_long()) else {
                    return Ok(false);
                };
                let d = ev.timestamp().saturating_sub(entered);
                match kind {
                    Elapsed::Less => d < *value,
                    Elapsed::Equal => d == *value,
                    Elapsed::More => d > *value,
                }
            }
        })
    }

    fn future_time(&self, v: &StateValue) -> Option<i64> {
        match v {
            StateValue::Int(i) => Some(i64::from(*i)),
            StateValue::Long(l) => Some(*l),
            StateValue::Double(d) => Some(*d as i64),
            StateValue::String(s) => s
                .parse::<i64>()
                .ok()
                .or_else(|| s.trim().parse::<f64>().ok().map(|d| d as i64)),
            _ => None,
        }
    }

    fn queue(&mut self, t: i64, op: FutureOp, q: Quark, v: StateValue) {
        self.future_seq += 1;
        self.futures.insert((t, self.future_seq), (op, q, v));
    }

    fn apply_op(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        t: i64,
        op: FutureOp,
        q: Quark,
        v: StateValue,
    ) -> R<()> {
        match op {
            FutureOp::Modify => ss.modify(t, v, q),
            FutureOp::Push => ss.push(t, v, q),
            FutureOp::Pop => ss.pop(t, q).map(|_| ()),
        }
        .map_err(|e| self.state_err(e))
    }

    /// Applies queued future changes up to `t` (inclusive).
    pub fn apply_futures(&mut self, ss: &mut dyn StateSystemBuilder, t: i64) -> R<()> {
        while let Some(entry) = self.futures.first_entry() {
            if entry.key().0 > t {
                break;
            }
            let ((ft, _), (op, q, v)) = entry.remove_entry();
            self.now = ft;
            self.apply_op(ss, ft, op, q, v)?;
        }
        Ok(())
    }

    fn run_change(
        &mut self,
        c: &Change,
        ev: &dyn EventAccess,
        ss: &mut dyn StateSystemBuilder,
        sc: &mut Option<&mut Scenario>,
    ) -> R<()> {
        match c {
            Change::If {
                cond,
                then,
                otherwise,
            } => {
                if self.eval_cond(cond, ev, ss, sc)? {
                    self.run_change(then, ev, ss, sc)
                } else if let Some(o) = otherwise {
                    self.run_change(o, ev, ss, sc)
                } else {
                    Ok(())
                }
            }
            Change::Assign(a) => self.assign(a, ev, ss, sc),
        }
    }

    fn assign(
        &mut self,
        a: &Assign,
        ev: &dyn EventAccess,
        ss: &mut dyn StateSystemBuilder,
        sc: &mut Option<&mut Scenario>,
    ) -> R<()> {
        // A null element, or a path that stays at the root, skips the change.
        let Some(q) = self.resolve_path(&a.path, ev, ss, sc)?.filter(|q| *q >= 0) else {
            return Ok(());
        };
        let now = ev.timestamp();
        let value = self.resolve_value(&a.value, ev, ss, sc)?;
        let future = match &a.future {
            Some(f) => {
                let fv = self.resolve_value(f, ev, ss, sc)?;
                Some(self.future_time(&fv).unwrap_or(now))
            }
            None => None,
        };
        let later = future.filter(|ft| *ft > now);
        if let Some(op) = a.stack {
            let (fop, v) = match op {
                StackOp::Push => (FutureOp::Push, value),
                StackOp::Pop | StackOp::PopAll => (FutureOp::Pop, StateValue::Null),
            };
            let times = if op == StackOp::PopAll {
                ss.query_ongoing(q)
                    .ok()
                    .and_then(|d| d.as_int())
                    .unwrap_or(0)
                    .max(0)
            } else {
                1
            };
            for _ in 0..times {
                match later {
                    Some(ft) => self.queue(ft, fop, q, v.clone()),
                    None => self.apply_op(ss, now, fop, q, v.clone())?,
                }
            }
            return Ok(());
        }
        // Increment first: an `update` then writes the sum (Trace Compass's order).
        let value = if a.increment && !value.is_null() {
            let cur = ss.query_ongoing(q).map_err(|e| self.state_err(e))?;
            self.add(&cur, value)?
        } else {
            value
        };
        if a.update {
            let v = match value {
                StateValue::Custom(_) => StateValue::Null,
                v => v,
            };
            return ss.update_ongoing(v, q).map_err(|e| self.state_err(e));
        }
        match future {
            Some(ft) if ft > now => {
                self.queue(ft, FutureOp::Modify, q, value);
                Ok(())
            }
            // A future time in the past drops a plain assignment.
            Some(ft) if ft < now => Ok(()),
            _ => ss.modify(now, value, q).map_err(|e| self.state_err(e)),
        }
    }

    fn add(&self, cur: &StateValue, by: StateValue) -> R<StateValue> {
        let mismatch = || {
            self.value_err(format!(
                "increment: cannot add {by:?} to the current value {cur:?} (types differ)"
            ))
        };
        Ok(match (&by, cur) {
            (StateValue::Long(b), StateValue::Null) => StateValue::Long(*b),
            (StateValue::Long(b), StateValue::Long(c)) => StateValue::Long(c.wrapping_add(*b)),
            (StateValue::Int(b), StateValue::Null) => StateValue::Int(*b),
            (StateValue::Int(b), StateValue::Int(c)) => StateValue::Int(c.wrapping_add(*b)),
            (StateValue::Double(b), StateValue::Null) => StateValue::Double(*b),
            (StateValue::Double(b), StateValue::Double(c)) => StateValue::Double(c + b),
            (StateValue::Long(_) | StateValue::Int(_) | StateValue::Double(_), _) => {
                return Err(mismatch())
            }
            _ => by.clone(),
        })
    }

    /// Indexes of the event handlers whose pattern matches `name`, in document order.
    pub fn handlers_for(&self, name: &str) -> Arc<[usize]> {
        self.prog
            .handlers
            .iter()
            .enumerate()
            .filter(|(_, h)| h.event.matches(name))
            .map(|(i, _)| i)
            .collect()
    }

    /// Handles one event (events must come in time order).
    pub fn handle_event(&mut self, ev: &dyn EventAccess, ss: &mut dyn StateSystemBuilder) -> R<()> {
        let handlers = match self.dispatch.get(ev.name()) {
            Some(h) => Arc::clone(h),
            None => {
                let h = self.handlers_for(ev.name());
                self.dispatch.insert(ev.name().to_string(), Arc::clone(&h));
                h
            }
        };
        self.handle_dispatched(ev, &handlers, ss)
    }

    /// Handles one event whose matching handlers ([`Runtime::handlers_for`]) the
    /// caller resolved once per event class.
    pub fn handle_dispatched(
        &mut self,
        ev: &dyn EventAccess,
        handlers: &[usize],
        ss: &mut dyn StateSystemBuilder,
    ) -> R<()> {
        let t = ev.timestamp();
        if !self.futures.is_empty() {
            self.apply_futures(ss, t)?;
        }
        self.now = t;
        let prog = Arc::clone(&self.prog);
        if prog.pattern.is_some() {
            self.pattern_event(&prog, ev, ss)?;
        } else {
            for &h in handlers {
                for c in &prog.handlers[h].changes {
                    let mut dummy = std::mem::take(&mut self.dummy);
                    let result = self.run_change(c, ev, ss, &mut Some(&mut dummy));
                    self.dummy = dummy;
                    result?;
                }
            }
        }
        self.seen_first = true;
        Ok(())
    }

    /// After the last event: pending future changes, then in-progress scenarios are cancelled.
    pub fn finish(&mut self, ss: &mut dyn StateSystemBuilder) -> R<()> {
        self.apply_futures(ss, i64::MAX)?;
        let end = ss.current_end_time();
        self.now = end;
        for f in 0..self.fsms.len() {
            let active = std::mem::take(&mut self.fsms[f].active);
            for mut sc in active {
                if sc.status == 1 {
                    ss.remove(end, sc.quark).map_err(|e| self.state_err(e))?;
                    self.release_pools(ss, &mut sc, end)?;
                }
            }
        }
        Ok(())
    }

    // ----- patterns -----

    fn create_pending(
        &mut self,
        f: usize,
        prog: &Program,
        t: i64,
        ss: &mut dyn StateSystemBuilder,
    ) -> R<()> {
        let fsm = &prog.pattern.as_ref().expect("pattern").fsms[f];
        let rt = &mut self.fsms[f];
        let slot = rt.free_slots.pop_front().unwrap_or_else(|| {
            rt.next_slot += 1;
            rt.next_slot - 1
        });
        rt.live += 1;
        rt.ever = true;
        let quark = ss
            .quark_and_add(&["scenarios", &fsm.id, &slot.to_string()])
            .map_err(|e| self.state_err(e))?;
        let sc = Scenario {
            fsm: f,
            slot,
            quark,
            state: fsm.initial,
            status: 0,
            pools: Vec::new(),
            ephemeral: false,
        };
        // The status attribute comes first, when the scenario is created.
        self.child(ss, quark, "status")?;
        let sid = fsm.states[fsm.initial].id.as_str();
        self.write_scenario_state(ss, &sc, sid, t)?;
        self.fsms[f].pending = Some(sc);
        Ok(())
    }

    /// Scenario bookkeeping, in Trace Compass's order: `state/<S>/startTime` (only
    /// when the ongoing `state` differs from `S`), `state`, then `status`.
    fn write_scenario_state(
        &self,
        ss: &mut dyn StateSystemBuilder,
        sc: &Scenario,
        state_id: &str,
        t: i64,
    ) -> R<()> {
        let err = |e| self.state_err(e);
        let state_q = self.child(ss, sc.quark, "state")?;
        let current = ss.query_ongoing(state_q).map_err(err)?;
        // Java's unboxStr of a null value is "nullValue".
        let current = current.as_str().unwrap_or("nullValue");
        if current != state_id {
            let st = ss
                .quark_relative_and_add(state_q, &[state_id, "startTime"])
                .map_err(err)?;
            ss.modify(t, StateValue::Long(t), st).map_err(err)?;
        }
        ss.modify(t, StateValue::string(state_id), state_q)
            .map_err(err)?;
        let status_q = self.child(ss, sc.quark, "status")?;
        ss.modify(t, StateValue::Int(sc.status), status_q)
            .map_err(err)
    }

    fn release_pools(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        sc: &mut Scenario,
        t: i64,
    ) -> R<()> {
        for (parent, q, n) in std::mem::take(&mut sc.pools) {
            ss.remove(t, q).map_err(|e| self.state_err(e))?;
            self.pools.entry(parent).or_default().free.insert(n);
        }
        Ok(())
    }

    fn precondition(
        &mut self,
        fsm: &Fsm,
        prog: &Program,
        ev: &dyn EventAccess,
        ss: &mut dyn StateSystemBuilder,
    ) -> R<bool> {
        if fsm.preconditions.is_empty() {
            return Ok(true);
        }
        let pat = prog.pattern.as_ref().expect("pattern");
        for p in &fsm.preconditions {
            if p.event.as_ref().is_some_and(|m| !m.matches(ev.name())) {
                continue;
            }
            let mut ok = true;
            for &c in &p.conds {
                let mut dummy = std::mem::take(&mut self.dummy);
                let result = self.eval_cond(&pat.tests[c], ev, ss, &mut Some(&mut dummy));
                self.dummy = dummy;
                if !result? {
                    ok = false;
                    break;
                }
            }
            if ok {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn run_actions(
        &mut self,
        prog: &Program,
        actions: &[usize],
        ev: &dyn EventAccess,
        ss: &mut dyn StateSystemBuilder,
        sc: &mut Scenario,
    ) -> R<()> {
        let pat = prog.pattern.as_ref().expect("pattern");
        for &a in actions {
            for item in &pat.actions[a] {
                match item {
                    ActionItem::Change(c) => {
                        let mut s = Some(&mut *sc);
                        self.run_change(c, ev, ss, &mut s)?;
                    }
                    ActionItem::Action(n) => self.run_actions(prog, &[*n], ev, ss, sc)?,
                    ActionItem::Segment(seg) => self.segment(prog, seg, ev, ss, sc)?,
                }
            }
        }
        Ok(())
    }

    fn segment(
        &mut self,
        prog: &Program,
        seg: &SegmentAction,
        ev: &dyn EventAccess,
        ss: &mut dyn StateSystemBuilder,
        sc: &mut Scenario,
    ) -> R<()> {
        let t = ev.timestamp();
        let mut s = Some(&mut *sc);
        let name = java_string(&self.resolve_value(&seg.name, ev, ss, &mut s)?);
        // Default start: start of the current interval of the scenario's startTime.
        let start_q = ss
            .quark_relative_and_add(s.as_deref().map_or(ROOT_QUARK, |x| x.quark), &["startTime"])
            .map_err(|e| self.state_err(e))?;
        let mut start = ss
            .ongoing_start_time(start_q)
            .map_err(|e| self.state_err(e))?;
        let mut end = t;
        let as_long = |v: &StateValue| match v {
            StateValue::Int(i) => Some(i64::from(*i)),
            StateValue::Long(l) => Some(*l),
            StateValue::Double(d) => Some(*d as i64),
            _ => None,
        };
        if let Some(b) = &seg.begin {
            if let Some(b) = as_long(&self.resolve_value(b, ev, ss, &mut s)?) {
                start = b;
            }
        }
        if let Some(e) = &seg.end {
            if let Some(e) = as_long(&self.resolve_value(e, ev, ss, &mut s)?) {
                if e >= start {
                    end = e;
                }
            }
        }
        if let Some(d) = &seg.duration {
            if let Some(d) = as_long(&self.resolve_value(d, ev, ss, &mut s)?) {
                let e = start.saturating_add(d);
                if e >= start {
                    end = e;
                }
            }
        }
        let mut content = Vec::new();
        for (fname, _, v) in &seg.fields {
            if let Some(v) = v {
                let val = self.resolve_value(v, ev, ss, &mut s)?;
                if !val.is_null() {
                    content.push((fname.clone(), val));
                }
            }
        }
        let _ = prog;
        self.segments.push(Segment {
            start,
            end,
            name,
            content,
        });
        Ok(())
    }

    /// Tries the transitions of the scenario's state; `true` if one was taken.
    fn try_transition(
        &mut self,
        prog: &Program,
        ev: &dyn EventAccess,
        ss: &mut dyn StateSystemBuilder,
        sc: &mut Scenario,
    ) -> R<bool> {
        let pat = prog.pattern.as_ref().expect("pattern");
        let fsm = &pat.fsms[sc.fsm];
        let state = &fsm.states[sc.state];
        let mut chosen = None;
        for tr in &state.transitions {
            if tr.event.as_ref().is_some_and(|m| !m.matches(ev.name())) {
                continue;
            }
            let mut ok = true;
            for &c in &tr.conds {
                let mut s = Some(&mut *sc);
                if !self.eval_cond(&pat.tests[c], ev, ss, &mut s)? {
                    ok = false;
                    break;
                }
            }
            if ok {
                chosen = Some(tr);
                break;
            }
        }
        let Some(tr) = chosen else { return Ok(false) };
        let t = ev.timestamp();
        self.run_actions(prog, &state.onexit, ev, ss, sc)?;
        self.run_actions(prog, &tr.actions, ev, ss, sc)?;
        self.run_actions(prog, &fsm.states[tr.target].onentry, ev, ss, sc)?;
        let err = |e| self.state_err(e);
        if sc.status == 0 {
            sc.status = 1;
            let q = ss
                .quark_relative_and_add(sc.quark, &["startTime"])
                .map_err(err)?;
            ss.modify(t, StateValue::Long(t), q).map_err(err)?;
        }
        let target = &fsm.states[tr.target];
        sc.state = tr.target;
        if target.is_final {
            sc.status = 2;
            ss.remove(t, sc.quark).map_err(err)?;
            self.release_pools(ss, sc, t)?;
            self.fsms[sc.fsm].free_slots.push_back(sc.slot);
        }
        self.write_scenario_state(ss, sc, &target.id, t)?;
        Ok(true)
    }

    fn pattern_event(
        &mut self,
        prog: &Program,
        ev: &dyn EventAccess,
        ss: &mut dyn StateSystemBuilder,
    ) -> R<()> {
        let pat = prog.pattern.as_ref().expect("pattern");
        let t = ev.timestamp();
        if !self.seen_first {
            for &f in &pat.initial {
                self.create_pending(f, prog, t, ss)?;
            }
        } else {
            for f in 0..pat.fsms.len() {
                let rt = &self.fsms[f];
                if rt.live > 0 && pat.fsms[f].multiple && rt.pending.is_none() {
                    self.create_pending(f, prog, t, ss)?;
                }
            }
        }
        for (f, fsm) in pat.fsms.iter().enumerate() {
            if !self.fsms[f].ever || !self.precondition(fsm, prog, ev, ss)? {
                continue;
            }
            let mut active = std::mem::take(&mut self.fsms[f].active);
            let before = active.len();
            active.retain(|s| s.status != 2);
            self.fsms[f].live -= before - active.len();
            let mut consumed = false;
            for sc in active.iter_mut() {
                if sc.status == 1 && self.try_transition(prog, ev, ss, sc)? {
                    consumed = true;
                    if fsm.consuming {
                        break;
                    }
                }
            }
            if !(fsm.consuming && consumed) {
                if let Some(mut p) = self.fsms[f].pending.take() {
                    if self.try_transition(prog, ev, ss, &mut p)? {
                        active.push_back(p);
                    } else {
                        self.fsms[f].pending = Some(p);
                    }
                }
            }
            self.fsms[f].active = active;
        }
        Ok(())
    }
}
