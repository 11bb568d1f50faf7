//! Placeholder binary; filled in by its owner.

fn main() {}
