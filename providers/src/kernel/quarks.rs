//! Cached quarks of the kernel attribute tree.
//!
//! Every look-up here creates the attribute when it is missing, exactly like the
//! Trace Compass call it stands for (`getQuarkRelativeAndAdd` and friends), so
//! creation order is preserved; the cache only skips repeated path walks.
//! Constant names (`"Threads"`, `"Exec_name"`, ...) are one shared string object
//! each, as Java's constants are, which the `.ht` writer turns into the same
//! back-references Trace Compass writes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use sht::{Quark, StateSystemBuilder, StateValue, ROOT_QUARK};

const NONE: Quark = sht::INVALID_QUARK;

/// Multiplicative hashing for small integer keys (tids, cpus).
#[derive(Default, Clone, Copy)]
pub(crate) struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    fn write_i32(&mut self, i: i32) {
        self.write_u64(i as u32 as u64);
    }
    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

pub(crate) type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

/// Sub-attributes of a thread node.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ThreadField {
    SystemCall = 0,
    CurrentCpuRq = 1,
    ExecName = 2,
    Prio = 3,
    Ppid = 4,
    Pid = 5,
}

struct Names {
    cpus: Arc<str>,
    threads: Arc<str>,
    current_thread: Arc<str>,
    irqs: Arc<str>,
    soft_irqs: Arc<str>,
    frequencies: [Arc<str>; 3],
    thread_fields: [Arc<str>; 6],
}

impl Default for Names {
    fn default() -> Self {
        Names {
            cpus: "CPUs".into(),
            threads: "Threads".into(),
            current_thread: "Current_thread".into(),
            irqs: "IRQs".into(),
            soft_irqs: "Soft_IRQs".into(),
            frequencies: [
                "Frequency".into(),
                "Min frequency".into(),
                "Max frequency".into(),
            ],
            thread_fields: [
                "System_call".into(),
                "Current_cpu_rq".into(),
                "Exec_name".into(),
                "Prio".into(),
                "PPID".into(),
                "PID".into(),
            ],
        }
    }
}

struct Cpu {
    number: i32,
    node: Quark,
    current_thread: Quark,
    irqs: Quark,
    soft_irqs: Quark,
    frequencies: [Quark; 3],
    soft: IntMap<i32, Quark>,
    ipi: IntMap<i32, Quark>,
    /// `CPUs/<n>/IRQs/"<irq>/<name>"` in creation order, with their irq number.
    hw_irqs: Vec<(i32, Quark)>,
    /// Shadow counts of the values written below `IRQs` (non-null) and
    /// `Soft_IRQs` (running bit set; non-null), so the CPU status needs no scan.
    irqs_active: u32,
    softs_running: u32,
    softs_non_null: u32,
    /// Last `Current_thread` written (tid, thread entry): what Trace Compass
    /// reads back from the state system.
    current: Option<(i32, u32)>,
}

struct Thread {
    node: Quark,
    fields: [Quark; 6],
    /// Last `Exec_name` text written, reused as the value object.
    exec_name: Option<Arc<str>>,
}

/// Quarks of the kernel tree, created on first use in Trace Compass's order.
#[derive(Default)]
pub(crate) struct KernelQuarks {
    names: Names,
    cpus_root: Option<Quark>,
    threads_root: Option<Quark>,
    irqs_root: Option<Quark>,
    soft_irqs_root: Option<Quark>,
    cpus: Vec<Cpu>,
    /// CPU entries of CPUs below [`DIRECT_CPUS`] by number (`u32::MAX`: none yet);
    /// others (odd `cpu_id` fields) by map.
    cpu_direct: Vec<u32>,
    cpu_index: IntMap<i32, u32>,
    threads: Vec<Thread>,
    /// By tid, or for the idle threads `0_<cpu>`, by `IDLE_KEY + cpu`.
    thread_index: IntMap<i64, u32>,
    /// Ongoing values of the per-CPU IRQ and soft IRQ attributes by quark (`None`:
    /// null or never written), kept as they are written: only this provider writes
    /// them. Quarks are dense, so a vector indexed by quark is the cheapest map.
    irq_values: Vec<Option<i32>>,
    /// `CPUs/<c>/IRQs/"<irq>/<name>"` and its aggregate `IRQs/"<irq>/<name>"` by
    /// (CPU entry, irq), with the name: the steady state formats no label.
    hw_irq_cache: IntMap<i64, Vec<(Box<str>, Quark, Quark)>>,
    /// Aggregate `IRQs/<label>` of a `CPUs/<c>/IRQs/<label>` quark (both kinds).
    irq_aggregates: IntMap<Quark, Quark>,
    /// `CPUs/*/Soft_IRQs/<vec>` by vec.
    soft_by_vec: IntMap<i32, Vec<Quark>>,
    /// `Soft_IRQs/<vec>` aggregates.
    soft_aggregates: IntMap<i32, Quark>,
    /// `CPUs/*/IRQs/<number>` (bare numbers: IPIs) by number: (CPU node, CPU, quark),
    /// in the CPUs' creation order.
    ipi_by_number: IntMap<i32, Vec<(Quark, i32, Quark)>>,
}

const IDLE_KEY: i64 = 1 << 40;
const DIRECT_CPUS: usize = 4096;

type Ss<'a> = &'a mut dyn StateSystemBuilder;

#[inline(always)]
fn shared(ss: Ss<'_>, slot: &mut Quark, parent: Quark, name: &Arc<str>) -> sht::Result<Quark> {
    if *slot == NONE {
        return create_shared(ss, slot, parent, name);
    }
    Ok(*slot)
}

#[cold]
#[inline(never)]
fn create_shared(
    ss: Ss<'_>,
    slot: &mut Quark,
    parent: Quark,
    name: &Arc<str>,
) -> sht::Result<Quark> {
    *slot = ss.child_and_add_shared(parent, name)?;
    Ok(*slot)
}

impl KernelQuarks {
    fn root(ss: Ss<'_>, slot: &mut Option<Quark>, name: &Arc<str>) -> sht::Result<Quark> {
        match slot {
            Some(q) => Ok(*q),
            None => {
                let q = ss.child_and_add_shared(ROOT_QUARK, name)?;
                *slot = Some(q);
                Ok(q)
            }
        }
    }

    /// `getCurrentCPUNode`: `CPUs/<cpu>`; returns the CPU's cache index.
    #[inline(always)]
    pub fn cpu(&mut self, ss: Ss<'_>, cpu: u32) -> sht::Result<u32> {
        match self.cpu_direct.get(cpu as usize) {
            Some(&i) if i != u32::MAX => Ok(i),
            _ => self.cpu_slow(ss, cpu),
        }
    }

    #[inline(never)]
    fn cpu_slow(&mut self, ss: Ss<'_>, cpu: u32) -> sht::Result<u32> {
        let number = cpu as i32;
        if let Some(&i) = self.cpu_direct.get(cpu as usize) {
            if i != u32::MAX {
                return Ok(i);
            }
        } else if let Some(&i) = self.cpu_index.get(&number) {
            return Ok(i);
        }
        let root = Self::root(ss, &mut self.cpus_root, &self.names.cpus)?;
        let node = ss.quark_relative_and_add(root, &[&number.to_string()])?;
        let i = self.cpus.len() as u32;
        self.cpus.push(Cpu {
            number,
            node,
            current_thread: NONE,
            irqs: NONE,
            soft_irqs: NONE,
            frequencies: [NONE; 3],
            soft: IntMap::default(),
            ipi: IntMap::default(),
            hw_irqs: Vec::new(),
            irqs_active: 0,
            softs_running: 0,
            softs_non_null: 0,
            current: None,
        });
        if (cpu as usize) < DIRECT_CPUS {
            if self.cpu_direct.len() <= cpu as usize {
                self.cpu_direct.resize(cpu as usize + 1, u32::MAX);
            }
            self.cpu_direct[cpu as usize] = i;
        } else {
            self.cpu_index.insert(number, i);
        }
        Ok(i)
    }

    pub fn cpu_node(&self, c: u32) -> Quark {
        self.cpus[c as usize].node
    }

    pub fn cpu_current_thread(&mut self, ss: Ss<'_>, c: u32) -> sht::Result<Quark> {
        let cpu = &mut self.cpus[c as usize];
        shared(
            ss,
            &mut cpu.current_thread,
            cpu.node,
            &self.names.current_thread,
        )
    }

    pub fn cpu_irqs(&mut self, ss: Ss<'_>, c: u32) -> sht::Result<Quark> {
        let cpu = &mut self.cpus[c as usize];
        shared(ss, &mut cpu.irqs, cpu.node, &self.names.irqs)
    }

    pub fn cpu_soft_irqs(&mut self, ss: Ss<'_>, c: u32) -> sht::Result<Quark> {
        let cpu = &mut self.cpus[c as usize];
        shared(ss, &mut cpu.soft_irqs, cpu.node, &self.names.soft_irqs)
    }

    /// `Frequency`, `Min frequency` or `Max frequency` (0, 1, 2) of a CPU.
    pub fn cpu_frequency(&mut self, ss: Ss<'_>, c: u32, which: usize) -> sht::Result<Quark> {
        let cpu = &mut self.cpus[c as usize];
        shared(
            ss,
            &mut cpu.frequencies[which],
            cpu.node,
            &self.names.frequencies[which],
        )
    }

    /// `CPUs/<cpu>/Soft_IRQs/<vec>`.
    pub fn cpu_soft_irq(&mut self, ss: Ss<'_>, c: u32, vec: i32) -> sht::Result<Quark> {
        if let Some(&q) = self.cpus[c as usize].soft.get(&vec) {
            return Ok(q);
        }
        let parent = self.cpu_soft_irqs(ss, c)?;
        let q = ss.quark_relative_and_add(parent, &[&vec.to_string()])?;
        self.cpus[c as usize].soft.insert(vec, q);
        self.soft_by_vec.entry(vec).or_default().push(q);
        Ok(q)
    }

    /// `CPUs/<cpu>/IRQs/<vector>` (IPI).
    pub fn cpu_ipi(&mut self, ss: Ss<'_>, c: u32, vector: i32) -> sht::Result<Quark> {
        if let Some(&q) = self.cpus[c as usize].ipi.get(&vector) {
            return Ok(q);
        }
        let parent = self.cpu_irqs(ss, c)?;
        let q = ss.quark_relative_and_add(parent, &[&vector.to_string()])?;
        let cpu = &mut self.cpus[c as usize];
        cpu.ipi.insert(vector, q);
        let list = self.ipi_by_number.entry(vector).or_default();
        let at = list.partition_point(|&(node, _, _)| node < cpu.node);
        list.insert(at, (cpu.node, cpu.number, q));
        Ok(q)
    }

    /// (CPU, quark) of every `CPUs/*/IRQs/<number>`, in the CPUs' creation order.
    pub fn ipi_quarks(&self, number: i32) -> impl Iterator<Item = (i32, Quark)> + '_ {
        self.ipi_by_number
            .get(&number)
            .into_iter()
            .flat_map(|l| l.iter().map(|&(_, cpu, q)| (cpu, q)))
    }

    pub fn soft_irq_quarks(&self, vec: i32) -> &[Quark] {
        self.soft_by_vec.get(&vec).map_or(&[], |v| v.as_slice())
    }

    /// Ongoing value of a per-CPU IRQ or soft IRQ attribute.
    pub fn irq_value(&self, q: Quark) -> Option<i32> {
        self.irq_values.get(q as usize).copied().flatten()
    }

    /// (`CPUs/<c>/IRQs/"<irq>/<name>"`, `IRQs/"<irq>/<name>"`) if both were seen.
    pub fn cached_hw_irq(&self, c: u32, irq: i32, name: &str) -> Option<(Quark, Quark)> {
        let key = ((c as i64) << 32) | irq as u32 as i64;
        self.hw_irq_cache
            .get(&key)?
            .iter()
            .find(|(n, _, _)| &**n == name)
            .map(|&(_, q, agg)| (q, agg))
    }

    pub fn cache_hw_irq(&mut self, c: u32, irq: i32, name: &str, q: Quark, agg: Quark) {
        let key = ((c as i64) << 32) | irq as u32 as i64;
        self.hw_irq_cache
            .entry(key)
            .or_default()
            .push((name.into(), q, agg));
        self.irq_aggregates.insert(q, agg);
    }

    /// The aggregate of a per-CPU IRQ attribute, if known.
    pub fn irq_aggregate(&self, q: Quark) -> Option<Quark> {
        self.irq_aggregates.get(&q).copied()
    }

    pub fn set_irq_aggregate(&mut self, q: Quark, agg: Quark) {
        self.irq_aggregates.insert(q, agg);
    }

    /// Records a write of `v` to `CPUs/<c>/IRQs/<x>` (`soft` false) or
    /// `CPUs/<c>/Soft_IRQs/<x>` (`soft` true).
    pub fn note_irq_value(&mut self, c: u32, q: Quark, soft: bool, v: Option<i32>) {
        let at = q as usize;
        if self.irq_values.len() <= at {
            self.irq_values.resize(at + 1, None);
        }
        let old = std::mem::replace(&mut self.irq_values[at], v);
        let cpu = &mut self.cpus[c as usize];
        let running = |v: Option<i32>| v.is_some_and(|v| v & super::cpu_status::SOFTIRQ != 0);
        if soft {
            cpu.softs_running = cpu.softs_running + running(v) as u32 - running(old) as u32;
            cpu.softs_non_null = cpu.softs_non_null + v.is_some() as u32 - old.is_some() as u32;
        } else {
            cpu.irqs_active = cpu.irqs_active + v.is_some() as u32 - old.is_some() as u32;
        }
    }

    /// (any IRQ active, any soft IRQ running, any soft IRQ non-null) on a CPU.
    pub fn cpu_irq_summary(&self, c: u32) -> (bool, bool, bool) {
        let cpu = &self.cpus[c as usize];
        (
            cpu.irqs_active > 0,
            cpu.softs_running > 0,
            cpu.softs_non_null > 0,
        )
    }

    /// The thread last switched to on a CPU (tid, entry).
    pub fn cpu_current(&self, c: u32) -> Option<(i32, u32)> {
        self.cpus[c as usize].current
    }

    pub fn set_cpu_current(&mut self, c: u32, tid: i32, thread: u32) {
        self.cpus[c as usize].current = Some((tid, thread));
    }

    /// `CPUs/<c>/IRQs/"<irq>/<name>"`, created if missing.
    pub fn cpu_hw_irq(&mut self, ss: Ss<'_>, c: u32, irq: i32, label: &str) -> sht::Result<Quark> {
        let irqs = self.cpu_irqs(ss, c)?;
        let before = ss.attribute_count();
        let q = ss.quark_relative_and_add(irqs, &[label])?;
        if ss.attribute_count() > before {
            self.cpus[c as usize].hw_irqs.push((irq, q));
        }
        Ok(q)
    }

    /// `CPUs/<c>/IRQs/"<irq>/..."` attributes, in creation order.
    pub fn cpu_hw_irqs(&self, c: u32, irq: i32) -> impl Iterator<Item = Quark> + '_ {
        self.cpus[c as usize]
            .hw_irqs
            .iter()
            .filter(move |&&(n, _)| n == irq)
            .map(|&(_, q)| q)
    }

    pub fn irqs_root(&mut self, ss: Ss<'_>) -> sht::Result<Quark> {
        Self::root(ss, &mut self.irqs_root, &self.names.irqs)
    }

    /// `Soft_IRQs/<vec>`.
    pub fn soft_irq_aggregate(&mut self, ss: Ss<'_>, vec: i32) -> sht::Result<Quark> {
        if let Some(&q) = self.soft_aggregates.get(&vec) {
            return Ok(q);
        }
        let root = Self::root(ss, &mut self.soft_irqs_root, &self.names.soft_irqs)?;
        let q = ss.quark_relative_and_add(root, &[&vec.to_string()])?;
        self.soft_aggregates.insert(vec, q);
        Ok(q)
    }

    /// `Threads/<name(tid, cpu)>`; `None` for tid 0 without a CPU (no name).
    pub fn thread(&mut self, ss: Ss<'_>, tid: i32, cpu: Option<u32>) -> sht::Result<Option<u32>> {
        let key = if tid == 0 {
            match cpu {
                Some(c) => IDLE_KEY + (c as i32) as i64,
                None => return Ok(None),
            }
        } else {
            tid as i64
        };
        if let Some(&i) = self.thread_index.get(&key) {
            return Ok(Some(i));
        }
        let name = if tid == 0 {
            format!("0_{}", cpu.unwrap_or(0) as i32)
        } else {
            tid.to_string()
        };
        let root = Self::root(ss, &mut self.threads_root, &self.names.threads)?;
        let node = ss.quark_relative_and_add(root, &[&name])?;
        let i = self.threads.len() as u32;
        self.threads.push(Thread {
            node,
            fields: [NONE; 6],
            exec_name: None,
        });
        self.thread_index.insert(key, i);
        Ok(Some(i))
    }

    pub fn thread_node(&self, th: u32) -> Quark {
        self.threads[th as usize].node
    }

    #[inline]
    pub fn thread_field(&mut self, ss: Ss<'_>, th: u32, f: ThreadField) -> sht::Result<Quark> {
        let t = &mut self.threads[th as usize];
        let f = f as usize;
        shared(ss, &mut t.fields[f], t.node, &self.names.thread_fields[f])
    }

    /// The field's quark if it exists (`optQuarkRelative`).
    pub fn existing_thread_field(&self, th: u32, f: ThreadField) -> Option<Quark> {
        let q = self.threads[th as usize].fields[f as usize];
        (q != NONE).then_some(q)
    }

    /// `comm` as a string value, sharing the thread's previous name object if equal.
    pub fn exec_name_value(&mut self, th: u32, comm: &str) -> StateValue {
        let t = &mut self.threads[th as usize];
        match &t.exec_name {
            Some(s) if &**s == comm => StateValue::String(Arc::clone(s)),
            _ => {
                let s: Arc<str> = Arc::from(comm);
                t.exec_name = Some(Arc::clone(&s));
                StateValue::String(s)
            }
        }
    }
}
