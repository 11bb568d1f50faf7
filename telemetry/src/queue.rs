//! A bounded queue between the request path and an exporter.
//!
//! Finished spans and access-log records are handed over with `try_send`:
//! when the queue is full (the collector is slow or down), the item is
//! dropped and counted in `tollgate.telemetry.dropped{signal}`, and the
//! request goes on. A task exports what is queued in batches (at most
//! `max_batch`) and awaits the exporter, so a slow collector slows only
//! that task. The SDK's own batch processors block a thread on a future
//! instead, which needs an exporter that runs without a Tokio reactor;
//! Tollgate's exporters (hyper, tonic) need one.
//!
//! Like the SDK's batch span processor, a pushed item does not wake the
//! task: it wakes every `interval`, when a full batch is waiting, and for
//! a flush. Waking it for each item cost a task switch into cold code
//! per sampled span, on the request path's thread.

use opentelemetry::KeyValue;
use opentelemetry::metrics::Counter;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{Notify, mpsc, oneshot};

/// How a queue is sized and paced.
#[derive(Clone, Copy, Debug)]
pub(crate) struct QueueConfig {
    /// Items held at most; more are dropped.
    pub(crate) capacity: usize,
    /// Items exported together at most.
    pub(crate) max_batch: usize,
    /// Longest wait before a partial batch is exported.
    pub(crate) interval: Duration,
}

/// What wakes the export task early, shared by both sides.
#[derive(Debug, Default)]
struct Wake {
    notify: Notify,
    /// A full batch's wake is pending: later pushes need not send another.
    batch_sent: AtomicBool,
}

/// The sending side, kept by a span or log processor.
#[derive(Debug)]
pub(crate) struct Queue<T> {
    items: mpsc::Sender<T>,
    flushes: mpsc::UnboundedSender<oneshot::Sender<()>>,
    wake: Arc<Wake>,
    max_batch: usize,
    dropped: Counter<u64>,
    signal: [KeyValue; 1],
}

impl<T: Send + 'static> Queue<T> {
    /// A queue whose batches go to `export`, run on the current Tokio
    /// runtime (or, without one, on a thread of its own).
    pub(crate) fn start<F, Fut>(
        config: QueueConfig,
        dropped: Counter<u64>,
        signal: &'static str,
        export: F,
    ) -> Queue<T>
    where
        F: FnMut(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (items, rx) = mpsc::channel(config.capacity.max(1));
        let (flushes, flush_rx) = mpsc::unbounded_channel();
        let wake = Arc::new(Wake::default());
        let task = drain(rx, flush_rx, Arc::clone(&wake), config, export);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(task);
            }
            Err(_) => {
                let _ = std::thread::Builder::new()
                    .name(format!("tollgate-{signal}-export"))
                    .spawn(move || {
                        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                        {
                            rt.block_on(task);
                        }
                    });
            }
        }
        Queue {
            items,
            flushes,
            wake,
            max_batch: config.max_batch.max(1),
            dropped,
            signal: [KeyValue::new("signal", signal)],
        }
    }

    /// Hands `item` to the exporter, or drops and counts it when the queue
    /// is full or closed. Never waits.
    pub(crate) fn push(&self, item: T) {
        if self.items.try_send(item).is_err() {
            self.dropped.add(1, &self.signal);
            return;
        }
        let queued = self.items.max_capacity() - self.items.capacity();
        if queued >= self.max_batch && !self.wake.batch_sent.swap(true, Ordering::AcqRel) {
            self.wake.notify.notify_one();
        }
    }

    /// Exports everything queued before this call; returns once done or
    /// after `timeout`.
    pub(crate) async fn flush(&self, timeout: Duration) {
        let (done, wait) = oneshot::channel();
        if self.flushes.send(done).is_ok() {
            self.wake.notify.notify_one();
            let _ = tokio::time::timeout(timeout, wait).await;
        }
    }
}

impl<T> Drop for Queue<T> {
    /// Lets the task see the closed queue now, not at its next interval.
    fn drop(&mut self) {
        self.wake.notify.notify_one();
    }
}

/// Exports what `items` holds, in batches, at every wake, until every
/// sender is gone.
async fn drain<T, F, Fut>(
    mut items: mpsc::Receiver<T>,
    mut flushes: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
    wake: Arc<Wake>,
    config: QueueConfig,
    mut export: F,
) where
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = ()>,
{
    let max_batch = config.max_batch.max(1);
    let mut answer = Vec::new();
    loop {
        tokio::select! {
            () = tokio::time::sleep(config.interval) => {}
            () = wake.notify.notified() => {}
        }
        wake.batch_sent.store(false, Ordering::Release);
        // The flushes asked for so far: every item pushed before them is
        // queued already, and is exported below before they are answered.
        while let Ok(done) = flushes.try_recv() {
            answer.push(done);
        }
        let mut open = true;
        loop {
            let mut batch = Vec::with_capacity(max_batch.min(items.len()));
            while batch.len() < max_batch {
                match items.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            let full = batch.len() == max_batch;
            if !batch.is_empty() {
                export(batch).await;
            }
            if !full {
                break;
            }
        }
        for done in answer.drain(..) {
            let _ = done.send(());
        }
        if !open {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetricsPipeline;

    fn counter(metrics: &MetricsPipeline) -> Counter<u64> {
        metrics
            .meter("test")
            .u64_counter("tollgate.telemetry.dropped")
            .build()
    }

    /// A queue of batches of three, paced by the hour (so only a full
    /// batch, a flush or the end sends one), and the batches it exports.
    fn batches_of_three(
        metrics: &MetricsPipeline,
    ) -> (Queue<u32>, mpsc::UnboundedReceiver<Vec<u32>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let config = QueueConfig {
            capacity: 100,
            max_batch: 3,
            interval: Duration::from_secs(3600),
        };
        let queue = Queue::start(
            config,
            counter(metrics),
            "traces",
            move |batch: Vec<u32>| {
                let _ = tx.send(batch);
                async {}
            },
        );
        (queue, rx)
    }

    /// Items arrive in order and in batches; a flush exports a partial batch
    /// at once.
    #[tokio::test]
    async fn batches_and_flushes() {
        let metrics = MetricsPipeline::prometheus_only();
        let (queue, mut rx) = batches_of_three(&metrics);
        for i in 0..4 {
            queue.push(i);
        }
        queue.flush(Duration::from_secs(5)).await;
        let mut batches = Vec::new();
        while let Ok(batch) = rx.try_recv() {
            batches.push(batch);
        }
        assert_eq!(batches, vec![vec![0, 1, 2], vec![3]]);
    }

    /// A full batch goes out without waiting for the interval or a flush;
    /// a partial one waits; dropping the queue ends the task.
    #[tokio::test]
    async fn a_full_batch_wakes_the_task() {
        let metrics = MetricsPipeline::prometheus_only();
        let (queue, mut rx) = batches_of_three(&metrics);
        queue.push(0);
        queue.push(1);
        let early = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await;
        assert!(early.is_err(), "a partial batch went out early: {early:?}");
        queue.push(2);
        let full = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert_eq!(full.ok().flatten(), Some(vec![0, 1, 2]));
        queue.push(3);
        drop(queue);
        // The task sees the closed queue, exports what is left and ends,
        // dropping the exporter (and its sender) with it.
        let rest = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert_eq!(rest.ok().flatten(), Some(vec![3]));
        let end = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert_eq!(end.ok(), Some(None), "the export task is still running");
    }

    /// An exporter that never returns fills the queue; further items are
    /// dropped and counted, and pushing never waits.
    #[tokio::test]
    async fn a_stuck_exporter_drops_and_counts() {
        let metrics = MetricsPipeline::prometheus_only();
        let config = QueueConfig {
            capacity: 2,
            max_batch: 1,
            interval: Duration::from_millis(1),
        };
        let queue = Queue::start(config, counter(&metrics), "logs", |_batch: Vec<u32>| {
            std::future::pending::<()>()
        });
        let started = std::time::Instant::now();
        for i in 0..50 {
            queue.push(i);
            tokio::task::yield_now().await;
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        let text = metrics.encode();
        let line = text
            .lines()
            .find(|l| l.starts_with("tollgate_telemetry_dropped_total{"))
            .unwrap_or_default();
        assert!(line.contains("signal=\"logs\""), "{text}");
        let dropped: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        assert!((45.0..=48.0).contains(&dropped), "{line}");
    }
}
