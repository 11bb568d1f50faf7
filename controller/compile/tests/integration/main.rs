//! Integration tests of compile: the golden cases, and the memoizing
//! `Compiler` with its endpoint refills and reused attachments against
//! compile from scratch.
//!
//! One test binary for the crate, like the other crates; run one file's
//! tests with `cargo nextest run -p tollgate-compile --test integration
//! <file>::`.

mod auth_unreadable;
mod compile_attach;
mod compile_memo;
mod compile_refill;
mod golden;
