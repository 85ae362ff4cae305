//! Deflates the six word lists in `data/` into `OUT_DIR`, where
//! `src/frequency_lists.rs` includes them: half the bytes in the binary,
//! inflated once, the first time a password is estimated.

use std::path::Path;

const LISTS: [&str; 6] = [
    "passwords",
    "english_wiki",
    "female_names",
    "surnames",
    "us_tv_and_film",
    "male_names",
];

fn main() {
    let out = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
    for list in LISTS {
        let source = format!("data/{list}.txt");
        println!("cargo::rerun-if-changed={source}");
        let text = std::fs::read(&source).unwrap_or_else(|e| panic!("{source}: {e}"));
        let deflated = miniz_oxide::deflate::compress_to_vec(&text, 10);
        let target = Path::new(&out).join(format!("{list}.deflate"));
        std::fs::write(&target, deflated).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
    }
}
