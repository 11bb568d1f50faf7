#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use proptest::prelude::*;

/// How decoding a whole input went.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// The body ended: its bytes, its trailer fields, and what followed.
    Ended(Vec<u8>, Vec<(String, String)>, Vec<u8>),
    /// It needs more bytes: what it gave so far.
    More(Vec<u8>),
    /// It was refused.
    Invalid,
}

/// Feeds `input` to `decoder` in the pieces `cuts` makes, decoding after
/// each piece as the connection would.
fn decode(mut decoder: Decoder, input: &[u8], cuts: &[usize]) -> Outcome {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.push(input.len());
    cuts.sort_unstable();
    let mut buf = BytesMut::new();
    let mut body = Vec::new();
    let mut fed = 0;
    for cut in cuts {
        buf.extend_from_slice(&input[fed..cut]);
        fed = cut;
        loop {
            match decoder.decode(&mut buf) {
                Err(_) => return Outcome::Invalid,
                Ok(Decoded::More) => break,
                Ok(Decoded::Data(data)) => {
                    assert!(!data.is_empty(), "empty data frame");
                    body.extend_from_slice(&data);
                }
                Ok(end @ (Decoded::End | Decoded::Trailers(_))) => {
                    assert!(decoder.is_done());
                    let trailers = match end {
                        Decoded::Trailers(map) => fields(&map),
                        _ => Vec::new(),
                    };
                    let mut rest = buf.to_vec();
                    rest.extend_from_slice(&input[fed..]);
                    return Outcome::Ended(body, trailers, rest);
                }
            }
        }
    }
    Outcome::More(body)
}

fn fields(map: &HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

fn chunked() -> Decoder {
    Decoder::new(BodyKind::Chunked)
}

fn ended(body: &str, rest: &str) -> Outcome {
    Outcome::Ended(body.into(), Vec::new(), rest.into())
}

/// Every split of a chunked body decodes to the same bytes, frame edges
/// aside: at every byte boundary, and one byte at a time.
#[test]
fn chunked_split_at_every_byte() {
    let wire = b"5\r\nhello\r\n1;ext=1\r\n \r\nA \t;x\r\n0123456789\r\n0\r\n\r\nNEXT";
    let whole = decode(chunked(), wire, &[]);
    assert_eq!(whole, ended("hello 0123456789", "NEXT"));
    for at in 0..=wire.len() {
        assert_eq!(decode(chunked(), wire, &[at]), whole, "split at {at}");
    }
    let every: Vec<usize> = (0..wire.len()).collect();
    assert_eq!(decode(chunked(), wire, &every), whole);
}

/// Trailer fields arrive as a trailers frame.
#[test]
fn chunked_trailers() {
    let wire = b"2\r\nok\r\n0\r\nx-sum: 1\r\nx-more: a b\r\n\r\n";
    let expected = Outcome::Ended(
        b"ok".to_vec(),
        vec![
            ("x-sum".into(), "1".into()),
            ("x-more".into(), "a b".into()),
        ],
        Vec::new(),
    );
    for at in 0..=wire.len() {
        assert_eq!(decode(chunked(), wire, &[at]), expected, "split at {at}");
    }
}

/// Chunked framing hyper refused is refused.
#[test]
fn chunked_refusals() {
    for wire in [
        &b"\r\n"[..],
        b"x\r\n",
        b";ext\r\n",
        b"5 5\r\nhello\r\n",
        b"5\nhello\r\n0\r\n\r\n",
        b"5\r\nhelloX\r\n",
        b"5\r\nhello\n0\r\n\r\n",
        b"5;a\nb\r\nhello\r\n",
        b"11111111111111111\r\n",
        b"0\r\nx: 1\ny: 2\r\n\r\n",
        b"0\r\n\rx",
        b"0\r\nbad\r\n\r\n",
    ] {
        assert_eq!(decode(chunked(), wire, &[]), Outcome::Invalid, "{wire:?}");
    }
    let long_extension = format!("1;{}\r\n", "e".repeat(EXTENSIONS_LIMIT as usize));
    assert_eq!(
        decode(chunked(), long_extension.as_bytes(), &[]),
        Outcome::Invalid
    );
    let long_trailers = format!("0\r\nx: {}", "t".repeat(TRAILERS_LIMIT));
    assert_eq!(
        decode(chunked(), long_trailers.as_bytes(), &[]),
        Outcome::Invalid
    );
}

/// A fixed length ends exactly there; what follows stays in the buffer.
#[test]
fn content_length() {
    let wire = b"hello world";
    for at in 0..=wire.len() {
        assert_eq!(
            decode(Decoder::new(BodyKind::Length(5)), wire, &[at]),
            ended("hello", " world")
        );
    }
    assert_eq!(
        decode(Decoder::new(BodyKind::Length(20)), wire, &[3]),
        Outcome::More(wire.to_vec())
    );
    let mut length = Decoder::new(BodyKind::Length(20));
    assert!(length.eof().is_err());
    assert_eq!(length.size_hint().exact(), Some(20));
}

/// No body at all, and a body that ends with the connection.
#[test]
fn empty_and_close_delimited() {
    for kind in [BodyKind::Empty, BodyKind::Length(0)] {
        assert!(Decoder::new(kind).is_done());
        assert_eq!(decode(Decoder::new(kind), b"next", &[]), ended("", "next"));
    }
    let mut close = Decoder::new(BodyKind::Close);
    assert_eq!(
        decode(Decoder::new(BodyKind::Close), b"all of it", &[4]),
        Outcome::More(b"all of it".to_vec())
    );
    assert!(close.eof().is_ok());
    assert!(close.is_done());
    assert!(chunked().eof().is_err());
}

/// A plain reading of RFC 9112 §7.1 with hyper's limits: the whole input
/// at once, line by line.
fn reference(input: &[u8]) -> Outcome {
    let mut at = 0;
    let mut body = Vec::new();
    let mut extensions = 0;
    loop {
        let rest = &input[at..];
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Outcome::More(body);
        };
        let line = &rest[..end];
        at += end + 2;
        let (size, extension) = match line.iter().position(|&b| b == b';') {
            Some(semi) => (&line[..semi], Some(&line[semi + 1..])),
            None => (line, None),
        };
        if line.iter().any(|&b| b == b'\n' || b == b'\r') {
            return Outcome::Invalid;
        }
        let digits = size.trim_ascii_end();
        if digits.is_empty()
            || !digits.iter().all(u8::is_ascii_hexdigit)
            || size[digits.len()..]
                .iter()
                .any(|&b| b != b' ' && b != b'\t')
        {
            return Outcome::Invalid;
        }
        extensions += extension.map_or(0, <[u8]>::len);
        if extensions >= EXTENSIONS_LIMIT as usize {
            return Outcome::Invalid;
        }
        let Ok(size) = u64::from_str_radix(std::str::from_utf8(digits).unwrap(), 16) else {
            return Outcome::Invalid;
        };
        if size == 0 {
            return reference_trailers(&input[at..], body);
        }
        let Some(need) = usize::try_from(size)
            .ok()
            .and_then(|size| size.checked_add(2))
        else {
            return Outcome::More(body);
        };
        if input.len() - at < need {
            return Outcome::More(body);
        }
        let size = need - 2;
        body.extend_from_slice(&input[at..at + size]);
        if &input[at + size..at + size + 2] != b"\r\n" {
            return Outcome::Invalid;
        }
        at += size + 2;
    }
}

fn reference_trailers(rest: &[u8], body: Vec<u8>) -> Outcome {
    if let Some(after) = rest.strip_prefix(b"\r\n") {
        return Outcome::Ended(body, Vec::new(), after.to_vec());
    }
    let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Outcome::More(body);
    };
    let section = &rest[..end + 4];
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(section, &mut fields) {
        Ok(httparse::Status::Complete((len, fields)))
            if len == section.len() && !bare_lf(section) && section.len() <= TRAILERS_LIMIT =>
        {
            let mut map = HeaderMap::new();
            for field in fields.iter() {
                let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(field.name.as_bytes()),
                    HeaderValue::from_bytes(field.value),
                ) else {
                    return Outcome::Invalid;
                };
                map.append(name, value);
            }
            Outcome::Ended(body, self::fields(&map), rest[end + 4..].to_vec())
        }
        _ => Outcome::Invalid,
    }
}

/// A chunked encoding of `chunks`, with extensions and trailers.
fn encoding() -> impl Strategy<Value = Vec<u8>> {
    let chunk = (
        proptest::collection::vec(any::<u8>(), 1..40),
        proptest::option::of("[a-z=\"; ]{0,8}"),
        any::<bool>(),
    );
    let trailers = proptest::collection::vec(("x-[a-z]{1,5}", "[a-z0-9 ]{0,6}"), 0..3);
    (proptest::collection::vec(chunk, 0..6), trailers).prop_map(|(chunks, trailers)| {
        let mut wire = Vec::new();
        for (data, extension, upper) in chunks {
            let size = if upper {
                format!("{:X}", data.len())
            } else {
                format!("{:x}", data.len())
            };
            wire.extend_from_slice(size.as_bytes());
            if let Some(extension) = extension {
                wire.push(b';');
                wire.extend_from_slice(extension.as_bytes());
            }
            wire.extend_from_slice(b"\r\n");
            wire.extend_from_slice(&data);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n");
        for (name, value) in trailers {
            wire.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        wire.extend_from_slice(b"\r\n");
        wire
    })
}

/// Mostly framing bytes, so arbitrary inputs get past the first line.
fn noise() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => proptest::sample::select(&b"0123456789abcdefAF;\r\n \t:x="[..]),
        1 => any::<u8>(),
    ];
    proptest::collection::vec(byte, 0..80)
}

/// Valid encodings, some with a byte changed, and noise.
fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        encoding(),
        (encoding(), any::<usize>(), any::<u8>()).prop_map(|(mut wire, at, byte)| {
            let at = at % wire.len();
            wire[at] = byte;
            wire
        }),
        noise(),
    ]
}

proptest! {
    /// However the bytes arrive, the decoder never panics, agrees with
    /// itself, and agrees with the reference: the same body and rest when
    /// the reference ends it, a refusal when the reference refuses, and
    /// at most an earlier refusal while the reference waits for more.
    #[test]
    fn chunked_agrees_with_the_reference(
        wire in input(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let whole = decode(chunked(), &wire, &[]);
        let pieces = decode(chunked(), &wire, &cuts);
        prop_assert_eq!(&pieces, &whole);
        match reference(&wire) {
            Outcome::More(_) => prop_assert!(
                matches!(whole, Outcome::More(_) | Outcome::Invalid), "{:?}", whole
            ),
            expected => prop_assert_eq!(whole, expected),
        }
    }

    /// Valid encodings come back whole, however split.
    #[test]
    fn chunked_encodings_decode(
        wire in encoding(),
        tail in proptest::collection::vec(any::<u8>(), 0..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut input = wire.clone();
        input.extend_from_slice(&tail);
        match decode(chunked(), &input, &cuts) {
            Outcome::Ended(_, _, rest) => prop_assert_eq!(rest, tail),
            other => prop_assert!(false, "{:?}", other),
        }
    }

    /// Fixed lengths take exactly their bytes.
    #[test]
    fn lengths_take_their_bytes(
        wire in proptest::collection::vec(any::<u8>(), 0..64),
        length in 0u64..80,
        cuts in proptest::collection::vec(any::<usize>(), 0..4),
    ) {
        let outcome = decode(Decoder::new(BodyKind::Length(length)), &wire, &cuts);
        let n = length as usize;
        if n <= wire.len() {
            prop_assert_eq!(outcome, Outcome::Ended(wire[..n].to_vec(), Vec::new(), wire[n..].to_vec()));
        } else {
            prop_assert_eq!(outcome, Outcome::More(wire));
        }
    }
}
