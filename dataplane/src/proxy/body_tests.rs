use super::*;
use crate::error::{ErrorKind, ProxyError};
use http_body_util::BodyExt;
use tokio::sync::mpsc;

/// A body fed by the test, one frame per message.
struct Feed(mpsc::UnboundedReceiver<Result<Bytes, std::io::Error>>);

impl Body for Feed {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|next| next.map(|item| item.map(Frame::data)))
    }
}

type Sender = mpsc::UnboundedSender<Result<Bytes, std::io::Error>>;

fn limited(timeout_ms: u64, min_rate: u32) -> (RequestBody<Feed>, Sender) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let limits = BodyLimits {
        timeout: Duration::from_millis(timeout_ms),
        min_rate,
    };
    (RequestBody::new(Feed(receiver), Some(limits)), sender)
}

/// Sends `bytes` bytes every `every_ms`, `times` times, then ends the body.
fn trickle(sender: Sender, bytes: usize, every_ms: u64, times: usize) {
    tokio::spawn(async move {
        for _ in 0..times {
            tokio::time::sleep(Duration::from_millis(every_ms)).await;
            if sender.send(Ok(Bytes::from(vec![b'x'; bytes]))).is_err() {
                return;
            }
        }
    });
}

/// Reads to the end or the first error: the bytes read and the error.
async fn drain(body: &mut RequestBody<Feed>) -> (usize, Option<BoxError>) {
    let mut read = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => read += frame.data_ref().map_or(0, Bytes::len),
            Err(error) => return (read, Some(error)),
        }
    }
    (read, None)
}

fn timed_out(error: Option<BoxError>) -> bool {
    error.is_some_and(|e| matches!(find(&*e), Some(RequestBodyError::TimedOut)))
}

/// A body that stops arriving is cut once the timeout passes.
#[tokio::test(start_paused = true)]
async fn a_stalled_body_is_cut_after_the_timeout() {
    let (mut body, _sender) = limited(1_000, 0);
    let started = Instant::now();
    let (_, error) = drain(&mut body).await;
    assert!(timed_out(error));
    assert_eq!(started.elapsed(), Duration::from_millis(1_000));
}

/// One byte every 100 ms against a 100 B/s minimum: each wait costs 100 ms
/// of credit and earns 10 ms back, so 1 s of credit lasts about 1.1 s.
/// Without a minimum rate the same trickle is never cut.
#[tokio::test(start_paused = true)]
async fn a_trickle_below_the_minimum_rate_is_cut() {
    let (mut body, sender) = limited(1_000, 100);
    trickle(sender, 1, 100, 1_000);
    let started = Instant::now();
    let (read, error) = drain(&mut body).await;
    assert!(timed_out(error));
    assert!((10..=12).contains(&read), "{read} bytes read");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1_000) && took <= Duration::from_millis(1_200));

    let (mut body, sender) = limited(1_000, 0);
    trickle(sender, 1, 100, 50);
    assert_eq!(drain(&mut body).await.0, 50);
}

/// A body at the minimum rate keeps its credit however long it lasts.
#[tokio::test(start_paused = true)]
async fn a_body_at_the_minimum_rate_is_never_cut() {
    let (mut body, sender) = limited(1_000, 100);
    trickle(sender, 10, 100, 100);
    let (read, error) = drain(&mut body).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(read, 1_000);
}

/// Time the body is not polled (the upstream is not reading) is not the
/// client's: only waiting while polled uses credit.
#[tokio::test(start_paused = true)]
async fn time_not_polled_is_not_counted() {
    let (mut body, sender) = limited(1_000, 0);
    sender.send(Ok(Bytes::from_static(b"a"))).unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    sender.send(Ok(Bytes::from_static(b"b"))).unwrap();
    let frame = body.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "a");
    let frame = body.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "b");
    let started = Instant::now();
    assert!(timed_out(body.frame().await.and_then(Result::err)));
    assert_eq!(started.elapsed(), Duration::from_millis(1_000));
}

/// Without limits a body waits as long as it takes.
#[tokio::test(start_paused = true)]
async fn no_limits_wait_forever() {
    let (sender, receiver) = mpsc::unbounded_channel();
    let mut body = RequestBody::new(Feed(receiver), None);
    trickle(sender, 1, 60_000, 3);
    let (read, error) = drain(&mut body).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(read, 3);
}

/// An upstream client's error, caused by what its request body returned.
#[derive(Debug, Error)]
#[error("upstream exchange failed")]
struct Upstream(#[source] BoxError);

/// A read error is the client's, found wherever the upstream client put
/// it; other upstream errors are left alone.
#[tokio::test]
async fn read_errors_are_the_clients() {
    let (mut body, sender) = limited(1_000, 0);
    sender
        .send(Err(std::io::Error::other("bad chunk")))
        .unwrap();
    let (_, error) = drain(&mut body).await;
    let error = error.unwrap();
    assert!(matches!(find(&*error), Some(RequestBodyError::Read(_))));
    // As the upstream client reports it: its own error, caused by ours.
    let wrapped: BoxError = Box::new(Upstream(error));
    let client = client_fault(wrapped).unwrap();
    assert_eq!(client.kind(), ErrorKind::RequestBody);
    let timeout: BoxError = Box::new(Upstream(Box::new(RequestBodyError::TimedOut)));
    assert!(matches!(
        client_fault(timeout),
        Ok(ProxyError::RequestBodyTimeout)
    ));
    let upstream: BoxError = Box::new(Upstream("connection reset".into()));
    assert!(client_fault(upstream).is_err());
}
