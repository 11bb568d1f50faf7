//! Integration tests of the controller: the Kubernetes provider, leader
//! election and the status writer against the in-memory API server, and
//! the change-to-traffic timing. (Compile goldens live in `tollgate-compile`.)
//!
//! One test binary for the whole crate: each file under `tests/` used to
//! link its own copy of every dependency, which cost gigabytes of disk and
//! minutes of linking in a clean build. Run one file's tests with
//! `cargo nextest run -p tollgate-controller --test integration <file>::`.

mod kube_provider;
mod kube_provider_auth;
mod kube_provider_secrets;
mod kube_undecodable;
mod leader;
mod pipeline_timing;
mod snapshot_mtls;
mod status_writer;

/// The controller's allocator, so `pipeline_timing` times what the
/// controller binary does (glibc's malloc took about a third of a compile).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
