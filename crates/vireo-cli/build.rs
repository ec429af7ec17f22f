//! `include_dir!` cannot tell cargo which files it read on stable Rust: rebuild the CLI when a
//! template changes.

fn main() {
    println!("cargo:rerun-if-changed=../../templates");
}
