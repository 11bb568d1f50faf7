//! When to read the folder again: file notifications with a short quiet
//! window, or polling where notifications cannot be had.
//!
//! With notifications a change is read once no event has arrived for
//! [`QUIET`] (at most [`MAX_DELAY`] after the first event, so a folder that
//! never stops changing is still read), and a slow rescan every
//! [`BACKSTOP`] catches anything the kernel dropped. Reading the folder
//! opens the files, so access events are ignored, as are events on files
//! the provider does not read (an editor's or a tool's temporary files);
//! a rename onto a manifest still counts through its destination.
//!
//! Polling scans the folder every [`POLL_INTERVAL`] and waits for it to be
//! unchanged for [`POLL_DEBOUNCE`], which costs up to two intervals per
//! change but works on every file system.

use super::FileProvider;
use super::read::{is_manifest, scan};
use crate::provider::ResourcesTx;
use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tracing::{debug, warn};

/// How long the folder must be free of events before a change is read.
///
/// Only long enough to gather the events of one save or one tool's burst of
/// writes (they come microseconds apart); every millisecond here is a
/// millisecond from save to traffic, and a burst that straddles it costs
/// only a second, coalesced compile.
const QUIET: Duration = Duration::from_millis(2);
/// The longest a change waits for the folder to become quiet.
const MAX_DELAY: Duration = Duration::from_secs(1);
/// How often the folder is rescanned while notifications are on.
const BACKSTOP: Duration = Duration::from_secs(5);
/// How often the folder is scanned when it cannot be watched.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long a polled folder must stay unchanged before a change is read.
const POLL_DEBOUNCE: Duration = Duration::from_millis(100);

impl FileProvider {
    /// Watches the folder forever, sending a new [`Resources`] whenever a
    /// file's content changes. The first value is sent after the first
    /// complete read.
    ///
    /// [`Resources`]: tollgate_compile::resources::Resources
    pub async fn run(mut self, tx: ResourcesTx) {
        let (events_tx, events) = mpsc::unbounded_channel();
        match watch_folder(&self.root, events_tx) {
            Ok(watcher) => {
                debug!(dir = %self.root.display(), "watching the manifest folder for changes");
                self.run_watched(&tx, events).await;
                drop(watcher);
            }
            Err(e) => {
                warn!(dir = %self.root.display(), error = %e, "cannot watch the manifest folder; polling it instead");
            }
        }
        if !tx.is_closed() {
            self.run_polled(&tx).await;
        }
    }

    /// Reads what changed and sends the new view when there is one, or
    /// always when `first`. Returns `false` once nobody listens.
    fn send_view(&mut self, tx: &ResourcesTx, first: bool) -> bool {
        let (changed, errors) = self.refresh();
        for e in &errors {
            warn!(error = %e, "manifest not applied; its last good content stays in effect");
        }
        if changed || first {
            debug!("manifest change read; sending the new view");
            return tx.send(Some(Arc::new(self.resources()))).is_ok();
        }
        !tx.is_closed()
    }

    /// Follows notifications; returns when nobody listens or the watcher
    /// stopped (then the caller polls).
    async fn run_watched(&mut self, tx: &ResourcesTx, mut events: mpsc::UnboundedReceiver<()>) {
        if !self.send_view(tx, true) {
            return;
        }
        loop {
            match timeout(BACKSTOP, events.recv()).await {
                Ok(Some(())) => {
                    let deadline = Instant::now() + MAX_DELAY;
                    loop {
                        let quiet = (Instant::now() + QUIET).min(deadline);
                        tokio::select! {
                            more = events.recv() => if more.is_none() { return },
                            () = sleep_until(quiet) => break,
                        }
                    }
                }
                Ok(None) => {
                    warn!("the manifest folder watcher stopped; polling instead");
                    return;
                }
                Err(_) => {}
            }
            if !self.send_view(tx, false) {
                return;
            }
        }
    }

    /// Scans the folder every [`POLL_INTERVAL`] until nobody listens.
    async fn run_polled(&mut self, tx: &ResourcesTx) {
        let mut last_seen = None;
        loop {
            let stamps = scan(&self.root).unwrap_or_default();
            if last_seen.as_ref() != Some(&stamps) {
                // Wait until the folder is quiet so an editor's save, or a
                // tool writing many files, lands as one change.
                sleep(POLL_DEBOUNCE).await;
                let settled = scan(&self.root).unwrap_or_default();
                if settled != stamps {
                    continue;
                }
                if !self.send_view(tx, last_seen.is_none()) {
                    return;
                }
                last_seen = Some(settled);
            }
            sleep(POLL_INTERVAL).await;
        }
    }
}

/// Starts watching `root` recursively; every relevant event is a `()` on
/// `events` (the content is re-read from disk, so the event itself does
/// not matter). Watch errors, such as a dropped-events overflow, count as
/// events so the folder is rescanned.
fn watch_folder(
    root: &Path,
    events: mpsc::UnboundedSender<()>,
) -> notify::Result<RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
        if event.as_ref().map_or(true, relevant) {
            let _ = events.send(());
        }
    })?;
    watcher.watch(root, RecursiveMode::Recursive)?;
    Ok(watcher)
}

/// Whether an event may change what the provider reads: not a mere access,
/// and about a manifest, a folder, or a path it cannot classify.
fn relevant(event: &Event) -> bool {
    let access = matches!(event.kind, EventKind::Access(kind)
        if kind != AccessKind::Close(AccessMode::Write));
    !access
        && (event.paths.is_empty()
            || event
                .paths
                .iter()
                .any(|p| is_manifest(p) || p.extension().is_none()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind, RenameMode};
    use std::path::PathBuf;

    fn event(kind: EventKind, paths: &[&str]) -> Event {
        let mut e = Event::new(kind);
        e.paths = paths.iter().map(PathBuf::from).collect();
        e
    }

    /// Reads, temporary files and unrelated files do not wake the provider;
    /// writes, renames onto manifests and folder changes do.
    #[test]
    fn relevant_events() {
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        let closed_written = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let create = EventKind::Create(CreateKind::File);
        let rename = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        assert!(!relevant(&event(read, &["/m/a.yaml"])));
        assert!(relevant(&event(closed_written, &["/m/a.yaml"])));
        assert!(!relevant(&event(create, &["/m/.a.yaml.tmp"])));
        assert!(!relevant(&event(create, &["/m/notes.txt"])));
        assert!(relevant(&event(rename, &["/m/.a.yaml.tmp", "/m/a.yaml"])));
        assert!(relevant(&event(create, &["/m/sub"])));
        assert!(relevant(&event(EventKind::Any, &[])));
    }
}
