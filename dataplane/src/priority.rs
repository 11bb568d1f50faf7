//! Keeping configuration work out of the way of requests.
//!
//! Building a runtime from a snapshot (and, in the controller, compiling
//! one) runs on Tokio's blocking threads, never on a worker. But a data
//! plane pinned to one core shares that core between its worker and those
//! threads, and at equal priority the kernel gives a long build half the
//! core: every request waiting meanwhile pays for it. Configuration threads
//! therefore lower their own priority first; the build still finishes, in
//! the gaps the request path leaves.

/// The nice value configuration work runs at (0 is the default, 19 lowest).
const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to `BACKGROUND_NICE`.
///
/// Linux keeps a nice value per thread, so only the caller is affected
/// (Tokio's blocking threads only ever run background work for Tollgate).
/// Raising one's nice value needs no privilege; if the call fails anyway
/// the work simply runs at normal priority.
pub fn background_priority() {
    let tid = rustix::thread::gettid();
    if let Err(error) = rustix::process::setpriority_process(Some(tid), BACKGROUND_NICE) {
        tracing::debug!(%error, "could not lower a background thread's priority");
    }
}

/// Runs `work` on a blocking thread at background priority.
///
/// # Errors
///
/// The join error when `work` panicked.
pub async fn in_background<T, F>(work: F) -> Result<T, tokio::task::JoinError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        background_priority();
        work()
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Work in the background runs at the lower priority and leaves the
    /// calling thread's alone.
    #[tokio::test]
    async fn background_work_runs_at_lower_priority() {
        let own = rustix::process::getpriority_process(Some(rustix::thread::gettid()));
        let inside =
            in_background(|| rustix::process::getpriority_process(Some(rustix::thread::gettid())))
                .await
                .expect("background work");
        assert_eq!(inside.ok(), Some(BACKGROUND_NICE));
        assert_eq!(
            rustix::process::getpriority_process(Some(rustix::thread::gettid())).ok(),
            own.ok()
        );
    }
}
