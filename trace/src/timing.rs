//! Phase marks for finding where a command's wall time goes. With `SEXTANT_TIMING=1` in the
//! environment, [`mark`] prints `<µs since the first mark> <thread> <label>` to stderr; without
//! it a mark costs one load and a branch.

use std::sync::OnceLock;
use std::time::Instant;

static ORIGIN: OnceLock<Option<Instant>> = OnceLock::new();

/// Whether marks are printed (`SEXTANT_TIMING` set and not `0`).
pub fn enabled() -> bool {
    ORIGIN
        .get_or_init(|| {
            std::env::var_os("SEXTANT_TIMING")
                .filter(|v| v != "0")
                .map(|_| Instant::now())
        })
        .is_some()
}

/// Prints a phase mark (see the module's description); `label` is only built when enabled.
pub fn mark(label: impl FnOnce() -> String) {
    if !enabled() {
        return;
    }
    if let Some(Some(origin)) = ORIGIN.get() {
        let t = origin.elapsed().as_micros();
        let thread = std::thread::current();
        let name = thread
            .name()
            .map_or_else(|| format!("{:?}", thread.id()), str::to_string);
        eprintln!("timing {t:>7} {name} {}", label());
    }
}
