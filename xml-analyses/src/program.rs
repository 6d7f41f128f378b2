//! The compiled form of an analysis: what the runtime executes per event.

use regex::Regex;
use sht::StateValue;

use crate::js;

/// Index into [`Program::fields`]: an event field name resolved once.
pub type FieldId = usize;

/// One element of an attribute path.
#[derive(Clone, Debug)]
pub enum AttrElem {
    Constant(String),
    /// `#CurrentScenario`: restart the path at the scenario's attribute.
    CurrentScenario,
    EventField(FieldId),
    EventName,
    /// Ongoing value of an absolute path, used as the name.
    Query(Vec<AttrElem>),
    /// Drops out of the path.
    SelfAttr,
    Pool,
    /// Always aborts the path.
    Null,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forced {
    Int,
    Long,
    Double,
    String,
}

#[derive(Clone, Debug)]
pub enum ValueKind {
    Const(StateValue),
    EventField(FieldId),
    EventName,
    Query(Vec<AttrElem>),
    Script {
        source: String,
        expr: js::Expr,
        vars: Vec<(String, Value)>,
    },
    /// Top of the stack at a path relative to the base.
    Peek(Vec<AttrElem>),
}

/// A resolved-then-mapped-then-forced value (`stateValue`).
#[derive(Clone, Debug)]
pub struct Value {
    pub kind: ValueKind,
    pub mapping: Option<usize>,
    pub forced: Option<Forced>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackOp {
    Push,
    Pop,
    PopAll,
}

#[derive(Clone, Debug)]
pub struct Assign {
    pub path: Vec<AttrElem>,
    pub value: Value,
    pub stack: Option<StackOp>,
    pub increment: bool,
    pub update: bool,
    pub future: Option<Value>,
}

#[derive(Clone, Debug)]
pub enum Change {
    Assign(Assign),
    If {
        cond: Cond,
        then: Box<Change>,
        otherwise: Option<Box<Change>>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Ge,
    Gt,
    Le,
    Lt,
}

#[derive(Clone, Debug)]
pub enum Operand {
    Value(Value),
    /// Ongoing value at an absolute path (created if missing).
    Path(Vec<AttrElem>),
    Field(FieldId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elapsed {
    Less,
    Equal,
    More,
}

#[derive(Clone, Debug)]
pub enum Cond {
    Compare {
        left: Operand,
        op: CmpOp,
        right: Value,
    },
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    TimeRange {
        inside: bool,
        begin: i64,
        end: i64,
    },
    ElapsedTime {
        kind: Elapsed,
        since: String,
        value: i64,
    },
}

/// Event-name matcher: full-match regexes (one per `|` alternative for transitions).
#[derive(Clone, Debug)]
pub struct NameMatcher {
    pub source: String,
    pub regexes: Vec<Regex>,
}

impl NameMatcher {
    pub fn matches(&self, name: &str) -> bool {
        self.regexes.iter().any(|r| r.is_match(name))
    }
}

#[derive(Clone, Debug)]
pub struct Handler {
    pub event: NameMatcher,
    pub changes: Vec<Change>,
}

#[derive(Clone, Debug)]
pub struct SegmentAction {
    pub name: Value,
    pub begin: Option<Value>,
    pub end: Option<Value>,
    pub duration: Option<Value>,
    /// (name, type, value); `None` value = type null (always dropped).
    pub fields: Vec<(String, Forced, Option<Value>)>,
}

#[derive(Clone, Debug)]
pub enum ActionItem {
    Change(Box<Change>),
    Segment(Box<SegmentAction>),
    Action(usize),
}

#[derive(Clone, Debug)]
pub struct Transition {
    pub event: Option<NameMatcher>,
    pub conds: Vec<usize>,
    pub target: usize,
    pub actions: Vec<usize>,
}

#[derive(Clone, Debug)]
pub struct FsmState {
    pub id: String,
    pub transitions: Vec<Transition>,
    pub onentry: Vec<usize>,
    pub onexit: Vec<usize>,
    pub is_final: bool,
}

#[derive(Clone, Debug)]
pub struct Precondition {
    pub event: Option<NameMatcher>,
    pub conds: Vec<usize>,
}

#[derive(Clone, Debug)]
pub struct Fsm {
    pub id: String,
    pub states: Vec<FsmState>,
    pub initial: usize,
    pub multiple: bool,
    pub consuming: bool,
    pub preconditions: Vec<Precondition>,
}

#[derive(Clone, Debug)]
pub struct PatternProgram {
    pub tests: Vec<Cond>,
    pub actions: Vec<Vec<ActionItem>>,
    pub fsms: Vec<Fsm>,
    /// FSM indexes started on the first event.
    pub initial: Vec<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnalysisKind {
    StateProvider,
    Pattern,
}

/// One compiled analysis (`stateProvider` or `pattern`).
#[derive(Clone, Debug)]
pub struct Program {
    pub id: String,
    pub kind: AnalysisKind,
    pub version: i32,
    pub label: String,
    pub trace_types: Vec<String>,
    /// Distinct event field names the analysis reads, by [`FieldId`].
    pub fields: Vec<String>,
    pub mapping_groups: Vec<Vec<(Value, Value)>>,
    pub handlers: Vec<Handler>,
    pub pattern: Option<PatternProgram>,
    /// Whether any value is a script.
    pub uses_script: bool,
}
