//! Quark cache of the fused analysis: the attributes it touches on nearly every
//! event (`CPUs/<cpu>/...`, `Threads/<machine>/<tid>/...`, `Hosts/<machine>/...`),
//! resolved once and kept by number instead of looked up by path strings.
//!
//! Every accessor creates a missing attribute exactly where the uncached path
//! lookup would have (same parent, same name, same moment), so the attribute tree,
//! hence the history file, is the same as without the cache. Attributes are never
//! deleted from a state system, so a cached quark never goes stale.

use std::collections::HashMap;
use std::sync::Arc;

use sht::{Quark, StateSystemBuilder, StateValue, INVALID_QUARK};

use super::{IntMap, IntSet};

/// Constant children of a `CPUs/<cpu>` node.
#[derive(Clone, Copy)]
pub(crate) enum CpuSub {
    Condition,
    CurrentThread,
    MachineName,
    Status,
    VirtualCpu,
    Irqs,
    SoftIrqs,
}

const CPU_SUB_NAMES: [&str; 7] = [
    "Condition",
    "Current_thread",
    "Machine_name",
    "Status",
    "Virtual_cpu",
    "IRQs",
    "Soft_IRQs",
];

/// Constant children of a `Threads/<machine>/<tid>` node.
#[derive(Clone, Copy)]
pub(crate) enum ThreadSub {
    Status,
    SystemCall,
    ExecName,
    Prio,
    Ppid,
}

const THREAD_SUB_NAMES: [&str; 5] = ["Status", "System_call", "Exec_name", "Prio", "PPID"];

struct CpuQ {
    node: Quark,
    /// Key ([`done_key`]) of the per-event updates of this CPU that are done and
    /// still hold (0: none); see [`Attrs::done_for`].
    done_for: u64,
    sub: [Quark; 7],
    irqs: IntMap<i64, Quark>,
    soft_irqs: IntMap<i64, Quark>,
    /// Shadows of the ongoing `Current_thread` (`None`: null) and `Machine_name`
    /// (name id; `None`: null): only this analysis writes them, through
    /// [`Attrs::set_cpu_thread`] and [`Attrs::set_cpu_machine`], so they are read
    /// here instead of from the state system.
    thread: Option<i32>,
    machine: Option<u32>,
    /// `Threads/<machine>/<thread>` (`0_<cpu>` for 0) of these shadows, once looked up.
    thread_slot: Option<ThreadSlot>,
}

struct ThreadQ {
    node: Quark,
    sub: [Quark; 5],
    /// `ns_max_level` below `node` (`INVALID_QUARK`: missing when the tree had
    /// `ns_checked_at` attributes; an attribute can only appear as the tree grows).
    ns_max: Quark,
    ns_checked_at: usize,
}

/// Per machine name: `Hosts/<name>` and `Threads/<name>` and some of their children.
struct HostQ {
    node: Quark,
    threads: Quark,
    cpus: Quark,
    pcpus: Quark,
    containers: Quark,
    cpu: IntMap<i64, Quark>,
    pcpu: IntMap<i64, Quark>,
}

impl Default for HostQ {
    fn default() -> Self {
        HostQ {
            node: INVALID_QUARK,
            threads: INVALID_QUARK,
            cpus: INVALID_QUARK,
            pcpus: INVALID_QUARK,
            containers: INVALID_QUARK,
            cpu: IntMap::default(),
            pcpu: IntMap::default(),
        }
    }
}

/// Key of the per-event updates of an event of machine `name` (host), or of vCPU
/// `vcpu` of guest `name`: never 0.
pub(crate) fn done_key(name: u32, vcpu: Option<i64>) -> u64 {
    ((name as u64 + 1) << 32) | vcpu.map_or(0, |v| (v as u64 & 0xffff_ffff).wrapping_add(1))
}

/// A CPU slot (index into the cached CPUs).
pub(crate) type CpuSlot = u32;
/// A thread slot (index into the cached threads).
pub(crate) type ThreadSlot = u32;

const SMALL_CPUS: i64 = 4096;

/// Machine names (host ids) by number, and the quarks below them.
#[derive(Default)]
pub(crate) struct Attrs {
    names: Vec<Arc<str>>,
    name_ids: HashMap<Arc<str>, u32>,
    hosts: Vec<HostQ>,
    cpu_slots: IntMap<i64, CpuSlot>,
    /// The same for CPUs 0..SMALL_CPUS, by index (`CpuSlot::MAX`: none yet).
    small_cpus: Vec<CpuSlot>,
    cpus: Vec<CpuQ>,
    /// (name id, tid, cpu of a `0_<cpu>` name or `i64::MIN`) -> slot.
    thread_slots: IntMap<(u32, i64, i64), ThreadSlot>,
    threads: Vec<ThreadQ>,
    /// `Hosts/<name>/Containers/<ns>/pCPUs/<cpu>` already made: (name id, ns, cpu).
    container_pcpus: IntSet<(u32, i64, i64)>,
}

fn child(
    ss: &mut dyn StateSystemBuilder,
    parent: Quark,
    slot: &mut Quark,
    name: &str,
) -> sht::Result<Quark> {
    if *slot == INVALID_QUARK {
        *slot = ss.quark_relative_and_add(parent, &[name])?;
    }
    Ok(*slot)
}

impl Attrs {
    /// The number of a machine name (added if new).
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.name_ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        let arc: Arc<str> = Arc::from(name);
        self.names.push(arc.clone());
        self.name_ids.insert(arc, id);
        self.hosts.push(HostQ::default());
        id
    }

    pub fn name(&self, id: u32) -> &Arc<str> {
        &self.names[id as usize]
    }

    /// A machine name as a state value (sharing the interned string).
    pub fn name_value(&self, id: u32) -> StateValue {
        StateValue::String(self.names[id as usize].clone())
    }

    /// `CPUs/<cpu>`.
    #[inline]
    pub fn cpu(&mut self, ss: &mut dyn StateSystemBuilder, cpu: i64) -> sht::Result<CpuSlot> {
        if let Some(&slot) = usize::try_from(cpu)
            .ok()
            .and_then(|i| self.small_cpus.get(i))
        {
            if slot != CpuSlot::MAX {
                return Ok(slot);
            }
        }
        self.cpu_slow(ss, cpu)
    }

    fn cpu_slow(&mut self, ss: &mut dyn StateSystemBuilder, cpu: i64) -> sht::Result<CpuSlot> {
        if let Some(&slot) = self.cpu_slots.get(&cpu) {
            return Ok(slot);
        }
        let node = ss.quark_and_add(&["CPUs", &cpu.to_string()])?;
        let slot = self.cpus.len() as CpuSlot;
        self.cpus.push(CpuQ {
            node,
            done_for: 0,
            sub: [INVALID_QUARK; 7],
            irqs: IntMap::default(),
            soft_irqs: IntMap::default(),
            thread: None,
            machine: None,
            thread_slot: None,
        });
        self.cpu_slots.insert(cpu, slot);
        if (0..SMALL_CPUS).contains(&cpu) {
            let i = cpu as usize;
            if self.small_cpus.len() <= i {
                self.small_cpus.resize(i + 1, CpuSlot::MAX);
            }
            self.small_cpus[i] = slot;
        }
        Ok(slot)
    }

    /// Whether the per-event updates of CPU `slot` with key `key` are done and
    /// nothing changed its `Condition`, `Current_thread`, `Machine_name` or
    /// `Virtual_cpu` since (they would then change nothing).
    #[inline]
    pub fn done_for(&self, slot: CpuSlot, key: u64) -> bool {
        self.cpus[slot as usize].done_for == key
    }

    /// Records the updates of key `key` as done (0: none).
    pub fn set_done_for(&mut self, slot: CpuSlot, key: u64) {
        self.cpus[slot as usize].done_for = key;
    }

    /// The ongoing `Current_thread` of a CPU (`None`: null).
    #[inline]
    pub fn cpu_thread(&self, slot: CpuSlot) -> Option<i32> {
        self.cpus[slot as usize].thread
    }

    /// The name id of the ongoing `Machine_name` of a CPU (`None`: null).
    #[inline]
    pub fn cpu_machine(&self, slot: CpuSlot) -> Option<u32> {
        self.cpus[slot as usize].machine
    }

    /// Sets `CPUs/<cpu>/Current_thread` (the only way this analysis writes it).
    pub fn set_cpu_thread(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        t: i64,
        slot: CpuSlot,
        tid: i32,
    ) -> sht::Result<()> {
        let q = self.cpu_sub(ss, slot, CpuSub::CurrentThread)?;
        ss.modify_int(t, tid, q)?;
        let c = &mut self.cpus[slot as usize];
        if c.thread != Some(tid) {
            c.thread = Some(tid);
            c.thread_slot = None;
        }
        Ok(())
    }

    /// Sets `CPUs/<cpu>/Machine_name` to a machine name (the only way this
    /// analysis writes it).
    pub fn set_cpu_machine(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        t: i64,
        slot: CpuSlot,
        name: u32,
    ) -> sht::Result<()> {
        let q = self.cpu_sub(ss, slot, CpuSub::MachineName)?;
        if self.cpus[slot as usize].machine == Some(name) {
            return Ok(()); // the state system would drop the same value
        }
        ss.modify(t, self.name_value(name), q)?;
        let c = &mut self.cpus[slot as usize];
        c.machine = Some(name);
        c.thread_slot = None;
        Ok(())
    }

    /// `Threads/<machine>/<thread>` of the CPU's shadows (`0_<cpu>` for thread 0,
    /// `-1` for null), `None` while the CPU runs no machine.
    #[inline]
    pub fn cpu_thread_slot(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        slot: CpuSlot,
        cpu: i64,
    ) -> sht::Result<Option<ThreadSlot>> {
        let c = &self.cpus[slot as usize];
        if let Some(th) = c.thread_slot {
            return Ok(Some(th));
        }
        let Some(machine) = c.machine else {
            return Ok(None);
        };
        let tid = c.thread.unwrap_or(-1) as i64;
        let th = self.thread(ss, machine, tid, Some(cpu))?;
        self.cpus[slot as usize].thread_slot = Some(th);
        Ok(Some(th))
    }

    /// `CPUs/<cpu>/<sub>`.
    #[inline]
    pub fn cpu_sub(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        slot: CpuSlot,
        sub: CpuSub,
    ) -> sht::Result<Quark> {
        let c = &mut self.cpus[slot as usize];
        let i = sub as usize;
        child(ss, c.node, &mut c.sub[i], CPU_SUB_NAMES[i])
    }

    /// `CPUs/<cpu>/IRQs/<irq>` (`soft`: `Soft_IRQs/<vec>`), named after the number.
    pub fn cpu_irq(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        slot: CpuSlot,
        soft: bool,
        n: i64,
    ) -> sht::Result<Quark> {
        let map = if soft {
            &self.cpus[slot as usize].soft_irqs
        } else {
            &self.cpus[slot as usize].irqs
        };
        if let Some(&q) = map.get(&n) {
            return Ok(q);
        }
        let parent = self.cpu_sub(ss, slot, if soft { CpuSub::SoftIrqs } else { CpuSub::Irqs })?;
        let q = ss.quark_relative_and_add(parent, &[&n.to_string()])?;
        let c = &mut self.cpus[slot as usize];
        (if soft { &mut c.soft_irqs } else { &mut c.irqs }).insert(n, q);
        Ok(q)
    }

    /// `Hosts/<name>`.
    pub fn host(&mut self, ss: &mut dyn StateSystemBuilder, id: u32) -> sht::Result<Quark> {
        let h = &mut self.hosts[id as usize];
        if h.node == INVALID_QUARK {
            h.node = ss.quark_and_add(&["Hosts", &self.names[id as usize]])?;
        }
        Ok(h.node)
    }

    /// `Hosts/<name>/Containers`.
    pub fn containers(&mut self, ss: &mut dyn StateSystemBuilder, id: u32) -> sht::Result<Quark> {
        let node = self.host(ss, id)?;
        let h = &mut self.hosts[id as usize];
        child(ss, node, &mut h.containers, "Containers")
    }

    /// `Hosts/<name>/CPUs/<n>` (`physical`: `pCPUs/<n>`).
    pub fn host_cpu(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        id: u32,
        physical: bool,
        n: i64,
    ) -> sht::Result<Quark> {
        let h = &self.hosts[id as usize];
        if let Some(&q) = if physical { &h.pcpu } else { &h.cpu }.get(&n) {
            return Ok(q);
        }
        let node = self.host(ss, id)?;
        let h = &mut self.hosts[id as usize];
        let parent = if physical {
            child(ss, node, &mut h.pcpus, "pCPUs")?
        } else {
            child(ss, node, &mut h.cpus, "CPUs")?
        };
        let q = ss.quark_relative_and_add(parent, &[&n.to_string()])?;
        (if physical { &mut h.pcpu } else { &mut h.cpu }).insert(n, q);
        Ok(q)
    }

    /// `Hosts/<name>/Containers/<ns>/pCPUs/<cpu>`, made once.
    pub fn container_pcpu(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        id: u32,
        ns: i64,
        cpu: i64,
    ) -> sht::Result<()> {
        if self.container_pcpus.contains(&(id, ns, cpu)) {
            return Ok(());
        }
        let containers = self.containers(ss, id)?;
        ss.quark_relative_and_add(containers, &[&ns.to_string(), "pCPUs", &cpu.to_string()])?;
        self.container_pcpus.insert((id, ns, cpu));
        Ok(())
    }

    /// `Threads/<name>/<tid>`, or `Threads/<name>/0_<cpu>` for tid 0 with `zero_cpu`
    /// (the per-CPU idle threads of the kernel analysis).
    pub fn thread(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        id: u32,
        tid: i64,
        zero_cpu: Option<i64>,
    ) -> sht::Result<ThreadSlot> {
        let suffix = match zero_cpu {
            Some(cpu) if tid == 0 => cpu,
            _ => i64::MIN,
        };
        if let Some(&slot) = self.thread_slots.get(&(id, tid, suffix)) {
            return Ok(slot);
        }
        let h = &mut self.hosts[id as usize];
        if h.threads == INVALID_QUARK {
            h.threads = ss.quark_and_add(&["Threads", &self.names[id as usize]])?;
        }
        let name = if suffix == i64::MIN {
            tid.to_string()
        } else {
            format!("0_{suffix}")
        };
        let node = ss.quark_relative_and_add(h.threads, &[&name])?;
        let slot = self.threads.len() as ThreadSlot;
        self.threads.push(ThreadQ {
            node,
            sub: [INVALID_QUARK; 5],
            ns_max: INVALID_QUARK,
            ns_checked_at: 0,
        });
        self.thread_slots.insert((id, tid, suffix), slot);
        Ok(slot)
    }

    pub fn thread_node(&self, slot: ThreadSlot) -> Quark {
        self.threads[slot as usize].node
    }

    /// `Threads/<name>/<tid>/ns_max_level` if it exists (`INVALID_QUARK` if not),
    /// without creating it.
    pub fn thread_ns_max_level(&mut self, ss: &dyn StateSystemBuilder, slot: ThreadSlot) -> Quark {
        let th = &mut self.threads[slot as usize];
        if th.ns_max == INVALID_QUARK {
            let count = ss.attribute_count();
            if th.ns_checked_at != count {
                th.ns_max = ss.attributes().opt_quark(th.node, &["ns_max_level"]);
                th.ns_checked_at = count;
            }
        }
        th.ns_max
    }

    /// `Threads/<name>/<tid>/<sub>`.
    #[inline]
    pub fn thread_sub(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        slot: ThreadSlot,
        sub: ThreadSub,
    ) -> sht::Result<Quark> {
        let t = &mut self.threads[slot as usize];
        let i = sub as usize;
        child(ss, t.node, &mut t.sub[i], THREAD_SUB_NAMES[i])
    }
}
