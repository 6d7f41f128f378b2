//! Model-based test of the attribute tree: a seeded pseudo-random sequence of
//! operations checked against a naive model (paths in a map, children in
//! vectors), then the same tree through a `.ht` file and back.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sht::ht::attributes::{decode_attribute_tree, encode_attribute_tree};
use sht::{
    AttributeTree, HtConfig, Quark, StateSystem, StateSystemBuilder, StateSystemQuerier,
    StateValue, INVALID_QUARK, ROOT_QUARK,
};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() >> 33) as usize % n
    }
}

/// The naive model: every attribute's path, parent and children in creation order.
#[derive(Default)]
struct Model {
    by_path: BTreeMap<Vec<String>, Quark>,
    paths: Vec<Vec<String>>,
    parents: Vec<Quark>,
    children: HashMap<Quark, Vec<Quark>>,
}

impl Model {
    fn path_of(&self, q: Quark) -> Vec<String> {
        if q == ROOT_QUARK {
            Vec::new()
        } else {
            self.paths[q as usize].clone()
        }
    }

    fn child(&self, parent: Quark, name: &str) -> Option<Quark> {
        let mut p = self.path_of(parent);
        p.push(name.to_string());
        self.by_path.get(&p).copied()
    }

    fn add(&mut self, start: Quark, rel: &[String]) -> Quark {
        let mut cur = start;
        for name in rel {
            cur = match self.child(cur, name) {
                Some(q) => q,
                None => {
                    let q = self.paths.len() as Quark;
                    let mut p = self.path_of(cur);
                    p.push(name.clone());
                    self.by_path.insert(p.clone(), q);
                    self.paths.push(p);
                    self.parents.push(cur);
                    self.children.entry(cur).or_default().push(q);
                    q
                }
            };
        }
        cur
    }

    fn children_of(&self, q: Quark) -> &[Quark] {
        self.children.get(&q).map_or(&[], |v| &v[..])
    }

    fn sub(&self, q: Quark, recursive: bool, out: &mut Vec<Quark>) {
        for &c in self.children_of(q) {
            out.push(c);
            if recursive {
                self.sub(c, true, out);
            }
        }
    }

    fn quarks(&self, q: Quark, pattern: &[String], out: &mut Vec<Quark>) {
        let Some((first, rest)) = pattern.split_first() else {
            out.push(q);
            return;
        };
        let next: Vec<Quark> = match first.as_str() {
            "*" => self.children_of(q).to_vec(),
            ".." => vec![if q == ROOT_QUARK {
                ROOT_QUARK
            } else {
                self.parents[q as usize]
            }],
            name => self.child(q, name).into_iter().collect(),
        };
        for n in next {
            self.quarks(n, rest, out);
        }
    }
}

/// Names that repeat across parents, empty, long, multi-byte, and lengths around
/// the 8-byte word reads of the name hashes.
fn name_pool() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        "Status",
        "Ops",
        "VM",
        "0",
        "1",
        "Exec_name",
        "é文😀",
        "\u{0}nul",
        "abcdefg",
        "abcdefgh",
        "abcdefghi",
        "abcdefghijklmnop",
        "..x",
        "a*b",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("L".repeat(300));
    v.push("ü".repeat(150));
    v.push(format!("{}😀", "x".repeat(70_000)));
    v
}

fn random_name(rng: &mut Rng, pool: &[String]) -> String {
    if rng.below(3) == 0 {
        pool[rng.below(pool.len())].clone()
    } else {
        format!("n{}", rng.below(40))
    }
}

fn random_node(rng: &mut Rng, model: &Model) -> Quark {
    if model.paths.is_empty() || rng.below(8) == 0 {
        ROOT_QUARK
    } else {
        rng.below(model.paths.len()) as Quark
    }
}

fn check_all(t: &AttributeTree, m: &Model) {
    assert_eq!(t.len(), m.paths.len());
    assert_eq!(t.children_of(ROOT_QUARK), m.children_of(ROOT_QUARK));
    for q in 0..m.paths.len() as Quark {
        let p = &m.paths[q as usize];
        assert_eq!(t.path(q).unwrap(), *p, "path of {q}");
        assert_eq!(t.name(q).unwrap(), p.last().unwrap(), "name of {q}");
        assert_eq!(t.parent(q).unwrap(), m.parents[q as usize], "parent of {q}");
        assert_eq!(t.children_of(q), m.children_of(q), "children of {q}");
        assert_eq!(t.opt_quark(ROOT_QUARK, p), q, "look-up of {p:?}");
    }
}

/// Shared name objects: some equal in text to plain names, two equal to each other.
fn shared_pool() -> Vec<Arc<str>> {
    vec![
        Arc::from("Exec_name"),
        Arc::from("Exec_name"),
        Arc::from("Prio"),
        Arc::from(""),
        Arc::from("é文😀"),
    ]
}

/// Runs the operations on `t`, checking each against the model. Returns the model.
fn run(t: &mut AttributeTree, seed: u64, steps: usize) -> Model {
    let mut rng = Rng(seed);
    let pool = name_pool();
    let shared = shared_pool();
    let mut m = Model::default();
    // Parents growing to every size class and past the long-list transition,
    // in turns so that freed blocks are taken by other lists.
    let wide_sizes = [0usize, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33, 1200];
    let wide: Vec<Quark> = wide_sizes
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let p = vec!["wide".to_string(), format!("p{i}")];
            let q = t.quark_absolute_and_add(&p).unwrap();
            assert_eq!(q, m.add(ROOT_QUARK, &p));
            q
        })
        .collect();
    let mut grown = vec![0usize; wide.len()];
    for step in 0..steps {
        match rng.below(12) {
            0..=2 => {
                // Grow a wide parent that is not full yet.
                let open: Vec<usize> = (0..wide.len())
                    .filter(|&i| grown[i] < wide_sizes[i])
                    .collect();
                if let Some(&i) = open.get(rng.below(open.len().max(1))) {
                    // Names repeating across parents, some unique to this one.
                    let name = if rng.below(2) == 0 {
                        format!("c{}", grown[i])
                    } else {
                        format!("{}#{}", pool[grown[i] % pool.len()], grown[i])
                    };
                    let q = t.quark_and_add(wide[i], &[&name]).unwrap();
                    assert_eq!(q, m.add(wide[i], &[name]), "step {step}");
                    grown[i] += 1;
                }
            }
            3 => {
                let start = random_node(&mut rng, &m);
                let rel: Vec<String> = (0..1 + rng.below(3))
                    .map(|_| random_name(&mut rng, &pool))
                    .collect();
                let mut full = m.path_of(start);
                full.extend(rel.iter().cloned());
                let q = t.quark_absolute_and_add(&full).unwrap();
                assert_eq!(q, m.add(start, &rel), "step {step}: add {full:?}");
            }
            4 => {
                let start = random_node(&mut rng, &m);
                let rel: Vec<String> = (0..rng.below(3))
                    .map(|_| random_name(&mut rng, &pool))
                    .collect();
                let q = t.quark_and_add(start, &rel).unwrap();
                assert_eq!(q, m.add(start, &rel), "step {step}: add {rel:?} at {start}");
            }
            5 => {
                let parent = random_node(&mut rng, &m);
                let name = &shared[rng.below(shared.len())];
                let q = t.child_and_add_shared(parent, name).unwrap();
                assert_eq!(
                    q,
                    m.add(parent, &[name.to_string()]),
                    "step {step}: shared {name:?} at {parent}"
                );
            }
            6 => {
                // Look-ups, found or not.
                let start = random_node(&mut rng, &m);
                let rel: Vec<String> = (0..1 + rng.below(2))
                    .map(|_| random_name(&mut rng, &pool))
                    .collect();
                let mut full = m.path_of(start);
                full.extend(rel.iter().cloned());
                let expected = m.by_path.get(&full).copied().unwrap_or(INVALID_QUARK);
                assert_eq!(t.opt_quark(start, &rel), expected, "step {step}");
                assert_eq!(
                    t.quark(start, &rel).ok(),
                    (expected >= 0).then_some(expected)
                );
                assert_eq!(t.opt_quark(ROOT_QUARK, &full), expected);
            }
            7 => {
                let q = random_node(&mut rng, &m);
                for recursive in [false, true] {
                    let mut expected = Vec::new();
                    m.sub(q, recursive, &mut expected);
                    assert_eq!(
                        t.sub_attributes(q, recursive).unwrap(),
                        expected,
                        "step {step}: sub-attributes of {q} ({recursive})"
                    );
                }
            }
            8 | 9 => {
                // A pattern from an existing path: some elements `*`, some `..` + name.
                let q = random_node(&mut rng, &m);
                let mut pattern = Vec::new();
                for name in m.path_of(q) {
                    match rng.below(5) {
                        0 => pattern.push("*".to_string()),
                        1 => {
                            pattern.push("*".to_string());
                            pattern.push("..".to_string());
                            pattern.push(name);
                        }
                        2 => {
                            pattern.push(name);
                            pattern.push("..".to_string());
                            pattern.push("*".to_string());
                        }
                        _ => pattern.push(name),
                    }
                }
                if rng.below(3) == 0 {
                    pattern.push("*".to_string());
                }
                if rng.below(5) == 0 {
                    pattern.push("..".to_string());
                }
                let start = if rng.below(4) == 0 && !m.paths.is_empty() {
                    rng.below(m.paths.len()) as Quark
                } else {
                    ROOT_QUARK
                };
                let mut expected = Vec::new();
                m.quarks(start, &pattern, &mut expected);
                let mut seen = std::collections::HashSet::new();
                expected.retain(|q| seen.insert(*q));
                assert_eq!(
                    t.quarks(start, &pattern).unwrap(),
                    expected,
                    "step {step}: pattern {pattern:?} from {start}"
                );
            }
            _ => {
                if !m.paths.is_empty() {
                    let q = rng.below(m.paths.len()) as Quark;
                    assert_eq!(t.path(q).unwrap(), m.paths[q as usize], "step {step}");
                    assert_eq!(t.children_of(q), m.children_of(q), "step {step}");
                }
            }
        }
        if step % 2000 == 0 {
            check_all(t, &m);
        }
    }
    // Finish the wide parents.
    for (i, &p) in wide.iter().enumerate() {
        while grown[i] < wide_sizes[i] {
            let name = format!("c{}", grown[i]);
            let q = t.quark_and_add(p, &[&name]).unwrap();
            assert_eq!(q, m.add(p, &[name]));
            grown[i] += 1;
        }
        assert!(t.children_of(p).len() >= wide_sizes[i]);
    }
    check_all(t, &m);
    m
}

#[test]
fn random_operations_match_a_naive_model() {
    for seed in [1u64, 0xdead_beef_cafe] {
        let mut t = AttributeTree::new();
        let m = run(&mut t, seed, 4000);
        // Absent names in every size class, including names that collide in
        // length with present ones.
        for q in 0..m.paths.len() as Quark {
            if q % 97 == 0 {
                assert_eq!(t.opt_quark(q, &["absent"]), INVALID_QUARK);
                assert_eq!(t.opt_quark(q, &["c99999"]), INVALID_QUARK);
            }
        }
        // A clone is equal and independent.
        let mut c = t.clone();
        c.quark_absolute_and_add(&["only", "in", "clone"]).unwrap();
        assert_eq!(t.opt_quark(ROOT_QUARK, &["only"]), INVALID_QUARK);
        check_all(&t, &m);
    }
}

#[test]
fn the_reserved_name_is_refused_everywhere() {
    let mut t = AttributeTree::new();
    assert!(t.quark_absolute_and_add(&["a", "*"]).is_err());
    assert!(t.child_and_add_shared(ROOT_QUARK, &Arc::from("*")).is_err());
    assert!(t.quark_and_add(ROOT_QUARK, &["x", "*", "y"]).is_err());
    // Nothing half-created by a refused path.
    assert_eq!(t.len(), 0);
    assert!(t.quark_and_add(5, &["a"]).is_err());
    assert!(t.sub_attributes(0, false).is_err());
    assert_eq!(t.opt_quark(7, &["a"]), INVALID_QUARK);
}

/// The encoded section decodes to the same paths, and a tree without shared
/// name objects re-encodes to the same bytes.
#[test]
fn attribute_section_round_trip() {
    let mut t = AttributeTree::new();
    let m = run(&mut t, 42, 3000);
    let bytes = encode_attribute_tree(&t);
    let back = decode_attribute_tree(&bytes, std::path::Path::new("mem"), 0).unwrap();
    check_all(&back, &m);

    let mut plain = AttributeTree::new();
    for p in &m.paths {
        plain.quark_absolute_and_add(p).unwrap();
    }
    let bytes = encode_attribute_tree(&plain);
    let back = decode_attribute_tree(&bytes, std::path::Path::new("mem"), 0).unwrap();
    assert_eq!(encode_attribute_tree(&back), bytes);
}

/// Builds a small `.ht` history with the attributes of `paths` (each given as
/// (path, shared name of the last element)) and returns the file's bytes.
fn build_history(
    dir: &std::path::Path,
    file: &str,
    adds: &[(Vec<String>, Option<Arc<str>>)],
) -> Vec<u8> {
    let path = dir.join(file);
    let mut ss = StateSystem::create_history_tree(&path, HtConfig::new(0, 1)).unwrap();
    for (i, (p, shared)) in adds.iter().enumerate() {
        let q = match shared {
            None => {
                let refs: Vec<&str> = p.iter().map(|s| s.as_str()).collect();
                ss.quark_and_add(&refs).unwrap()
            }
            Some(name) => {
                let refs: Vec<&str> = p[..p.len() - 1].iter().map(|s| s.as_str()).collect();
                let parent = ss.quark_and_add(&refs).unwrap();
                ss.child_and_add_shared(parent, name).unwrap()
            }
        };
        ss.modify(i as i64 * 10, StateValue::Int(i as i32), q)
            .unwrap();
    }
    ss.close(adds.len() as i64 * 10 + 5).unwrap();
    drop(ss);
    std::fs::read(&path).unwrap()
}

fn repeated_paths() -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    // Names repeated under many parents (more than the recent-name cache's
    // slots), and one parent with many children.
    for vm in 0..300 {
        for leaf in ["Ops", "Status", "Exec_name", "é文😀", ""] {
            paths.push(vec!["VMs".into(), format!("vm{vm}"), leaf.into()]);
        }
        paths.push(vec!["Threads".into(), format!("{vm}"), "Exec_name".into()]);
    }
    paths
}

#[test]
fn a_history_file_gives_back_the_same_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = AttributeTree::new();
    let m = run(&mut t, 7, 2500);
    let adds: Vec<(Vec<String>, Option<Arc<str>>)> =
        m.paths.iter().map(|p| (p.clone(), None)).collect();
    build_history(dir.path(), "model.ht", &adds);
    let ss = StateSystem::open(dir.path().join("model.ht"), Some(1)).unwrap();
    check_all(ss.attributes(), &m);
    for (i, p) in m.paths.iter().enumerate().step_by(37) {
        let refs: Vec<&str> = p.iter().map(|s| s.as_str()).collect();
        assert_eq!(ss.quark(&refs).unwrap(), i as Quark);
        let iv = ss.query_single(i as i64 * 10, i as Quark).unwrap();
        assert_eq!(iv.value, StateValue::Int(i as i32));
    }
    // Adding to an opened tree copies it: the file's reader keeps the old one.
    let mut ss = ss;
    let before = ss.attribute_count();
    let q = ss.quark_and_add(&["new", "attr"]).unwrap();
    assert_eq!(q as usize, before + 1);
    assert_eq!(ss.attributes().path(q).unwrap(), ["new", "attr"]);
    // The file's attributes are still there and queried as before; the new one
    // has no history: an error, not a panic.
    check_all_prefix(ss.attributes(), &m);
    assert_eq!(
        ss.query_single(0, 0).unwrap().value,
        StateValue::Int(0),
        "quark 0 after the copy"
    );
    assert!(ss.query_single(5, q).is_err());
    assert!(ss.query_full(5).is_err());
}

/// As [`check_all`], for a tree that may have more attributes than the model.
fn check_all_prefix(t: &AttributeTree, m: &Model) {
    for q in 0..m.paths.len() as Quark {
        let p = &m.paths[q as usize];
        assert_eq!(t.path(q).unwrap(), *p, "path of {q}");
        assert_eq!(t.opt_quark(ROOT_QUARK, p), q, "look-up of {p:?}");
    }
}

/// Plain names: passing one string again and again or a fresh copy each time
/// makes no difference to the file, nor does a fresh name object per attribute
/// through `child_and_add_shared`; one shared name object is written once.
#[test]
fn name_identity_in_the_history_file() {
    let dir = tempfile::tempdir().unwrap();
    let paths = repeated_paths();
    let plain: Vec<_> = paths.iter().map(|p| (p.clone(), None)).collect();
    let a = build_history(dir.path(), "a.ht", &plain);
    // Fresh `String`s for every element (no pointer equality anywhere).
    let fresh: Vec<_> = paths
        .iter()
        .map(|p| (p.iter().map(|s| String::from(s.as_str())).collect(), None))
        .collect();
    let b = build_history(dir.path(), "b.ht", &fresh);
    assert!(a == b, "fresh copies of the names changed the file");
    let fresh_objects: Vec<_> = paths
        .iter()
        .map(|p| {
            (
                p.clone(),
                Some(Arc::<str>::from(p.last().unwrap().as_str())),
            )
        })
        .collect();
    let c = build_history(dir.path(), "c.ht", &fresh_objects);
    assert!(
        a == c,
        "one name object per attribute must equal plain names"
    );

    let count =
        |bytes: &[u8], needle: &[u8]| bytes.windows(needle.len()).filter(|w| *w == needle).count();
    // Expected string objects in the attribute section, counted independently:
    // `Exec_name` is one per attribute (600) in the plain file, unless the
    // previous path has it at the same depth (never here).
    assert_eq!(count(&a, b"Exec_name"), 600);
    let exec: Arc<str> = Arc::from("Exec_name");
    let shared: Vec<_> = paths
        .iter()
        .map(|p| {
            let last = p.last().unwrap();
            (p.clone(), (last == "Exec_name").then(|| Arc::clone(&exec)))
        })
        .collect();
    let d = build_history(dir.path(), "d.ht", &shared);
    assert_eq!(
        count(&d, b"Exec_name"),
        1,
        "one shared object, back-referenced"
    );
    let back = StateSystem::open(dir.path().join("d.ht"), Some(1)).unwrap();
    for (q, p) in paths.iter().enumerate().step_by(11) {
        let refs: Vec<&str> = p.iter().map(|s| s.as_str()).collect();
        let q2 = back.quark(&refs).unwrap();
        assert_eq!(back.attributes().path(q2).unwrap(), *p, "path {q}");
    }
}
