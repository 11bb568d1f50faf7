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
    (!queue.stopped).then(|| queue.ambiguous.iter().copied().collect())
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

/// What hyper refuses or hands over (upgrades, HTTP/1.0, obs-fold, bad
/// lengths, non-chunked codings) stops the watch rather than guess.
#[test]
fn stops_on_what_it_does_not_follow() {
    for wire in [
        &b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"[..],
        b"GET / HTTP/1.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        assert_eq!(verdicts(wire, 3), None, "{}", String::from_utf8_lossy(wire));
    }
}

#[test]
fn once_stopped_every_request_passes() {
    let verdicts = Verdicts::default();
    verdicts.push(true);
    verdicts.stop();
    assert!(!verdicts.next_is_ambiguous());
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
    let wires: [&[u8]; 9] = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nabGET / HTTP/1.1\r\n\r\n",
        b"POST / HTTP/1.1\r\ncontent-length:  0 \r\n\r\nGET / HTTP/1.1\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
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
