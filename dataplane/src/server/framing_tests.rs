use super::*;

/// Feeds `wire` to a watch in chunks of `chunk` bytes; returns the verdicts
/// of the heads it saw, `None` if it stopped watching.
fn verdicts(wire: &[u8], chunk: usize) -> Option<Vec<bool>> {
    let verdicts = Arc::new(Verdicts::default());
    let mut watch = FramingWatch::new((), Arc::clone(&verdicts), Arc::default());
    for part in wire.chunks(chunk) {
        watch.feed(part);
    }
    let queue = verdicts.inner.lock().unwrap();
    (!matches!(watch.scan, Scan::Stopped)).then(|| queue.ambiguous.iter().copied().collect())
}

/// Heads are found after bodies framed by Content-Length and by chunked
/// encoding (with extensions and trailers), whatever the read sizes; only
/// the head with both framing headers is flagged.
#[test]
fn finds_every_head_and_flags_only_the_ambiguous_one() {
    let wire = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
        POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nGET /x\
        POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n\
        POST /d HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
        GET /e HTTP/1.1\r\nHost: x\r\n\r\n";
    for chunk in [1, 2, 7, 64, wire.len()] {
        assert_eq!(
            verdicts(wire, chunk),
            Some(vec![false, false, false, true, false]),
            "chunk size {chunk}"
        );
    }
}

/// What hyper refuses, and then closes the connection on (obs-fold, bad
/// lengths, non-chunked codings, bad chunks, other versions), stops the
/// watch rather than guess.
#[test]
fn stops_on_what_hyper_refuses() {
    for wire in [
        &b"GET / HTTP/2.0\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\nx",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
    ] {
        assert_eq!(verdicts(wire, 3), None, "{}", String::from_utf8_lossy(wire));
    }
}

/// HTTP/1.0 requests and `Upgrade` offers are framed like any other:
/// unless the answer is `101`, hyper reads the next request right after
/// them, and that request must be judged too.
#[test]
fn follows_http10_and_upgrade_offers() {
    let wire = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n\
        POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nab\
        GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\
        POST / HTTP/1.1\r\nUpgrade: h2c\r\nContent-Length: 3\r\n\r\nabc\
        POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    for chunk in [1, 5, wire.len()] {
        assert_eq!(
            verdicts(wire, chunk),
            Some(vec![false, false, false, false, true]),
            "chunk size {chunk}"
        );
    }
}

/// Values hyper accepts keep the watch following: bytes outside UTF-8 in a
/// header value, chunk sizes with leading zeros, a Content-Length after
/// Transfer-Encoding (which hyper ignores, and which is still ambiguous).
#[test]
fn follows_what_hyper_accepts() {
    let wire = b"GET / HTTP/1.1\r\nX-Name: caf\xe9\r\n\r\n\
        POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000001\r\na\r\n0\r\n\r\n\
        POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n0\r\n\r\n";
    for chunk in [1, 3, wire.len()] {
        assert_eq!(
            verdicts(wire, chunk),
            Some(vec![false, false, true]),
            "chunk size {chunk}"
        );
    }
}

/// Verdicts taken before the watch stopped still count; a request past
/// them has none and is refused.
#[test]
fn requests_past_a_stop_are_unfollowed() {
    let verdicts = Arc::new(Verdicts::default());
    let mut watch = FramingWatch::new((), Arc::clone(&verdicts), Arc::default());
    watch.feed(
        b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
          GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n",
    );
    assert!(matches!(watch.scan, Scan::Stopped));
    assert_eq!(verdicts.next(), Framing::Ambiguous);
    assert_eq!(verdicts.next(), Framing::Unfollowed);
}

/// Heads end at `\n\n` as well as `\n\r\n`, blank lines before a request
/// line are skipped, and a head longer than the limit stops the watch,
/// whatever the read sizes.
#[test]
fn head_ends_and_limits_hold_across_reads() {
    let wire = b"\r\n\r\nGET /a HTTP/1.1\nHost: x\n\n\nGET /b HTTP/1.1\r\nHost: x\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n0\r\n\r\n";
    for chunk in [1, 2, 3, 5, wire.len()] {
        assert_eq!(
            verdicts(wire, chunk),
            Some(vec![false, true]),
            "chunk size {chunk}"
        );
    }
    let mut long = b"GET / HTTP/1.1\r\nX-A: ".to_vec();
    long.resize(MAX_HEAD + 10, b'a');
    long.extend_from_slice(b"\r\n\r\n");
    assert_eq!(verdicts(&long, 4096), None);
}

/// The in-place path for whole heads and the line-by-line path for heads
/// split across reads reach the same verdicts (one-byte reads never see a
/// whole head, whole-wire reads always do).
#[test]
fn whole_and_split_heads_agree() {
    let wires: [&[u8]; 10] = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nabGET / HTTP/1.1\r\n\r\n",
        b"POST / HTTP/1.1\r\ncontent-length:  0 \r\n\r\nGET / HTTP/1.1\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nX-A: caf\xe9\r\n\r\n",
        b"GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
        b"POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
    ];
    for wire in wires {
        assert_eq!(
            verdicts(wire, wire.len()),
            verdicts(wire, 1),
            "{}",
            String::from_utf8_lossy(wire)
        );
    }
}
