//! The sipbridge binary.
fn main() {}
