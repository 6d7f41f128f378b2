//! Writes a generated trace: `cargo run --example gen_trace -- SRC OUT COPIES`.
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let s = sextant_trace::ctf::gen::replicate(
        std::path::Path::new(&a[1]),
        std::path::Path::new(&a[2]),
        a[3].parse().unwrap(),
        256 * 1024,
    )
    .unwrap();
    println!("{s:?}");
}
