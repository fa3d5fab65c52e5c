//! RESP2/RESP3 reply decoding and command encoding, sans I/O.
//!
//! [`Decoder::decode`] takes the connection's read buffer and returns one whole
//! reply as a [`Frame`] whose strings are `Bytes` slices of that buffer (no
//! copies), `Ok(None)` when the reply is not complete yet, or an error. The
//! decoder remembers how far it has validated, so bytes already checked are
//! never scanned again when more arrive: decoding is linear in the reply size
//! however it is chunked. Every length, count and depth read off the wire is
//! bounded before it is used.

use bytes::{BufMut, Bytes, BytesMut};
use memchr::memchr;

/// Longest header or simple line (`+`, `-`, `:`, `$len`...). Real servers send
/// short status lines; 64 KiB leaves room for long error messages while a
/// line that never ends cannot grow the buffer without limit.
pub const MAX_LINE: usize = 64 * 1024;
/// Largest bulk string accepted. The biggest bulks redpulse asks for are
/// `INFO everything` (about 5 KiB on an idle Redis 7.0, tens of KiB with
/// many modules and commands) and `CLUSTER NODES` of a 1,000-node cluster
/// (about 200 bytes a node plus slot ranges: well under 512 KiB).
pub const MAX_BULK: usize = 1024 * 1024;
/// Largest whole reply on the wire, counting all its parts: room for a
/// pipelined poll's largest reply with margin, and a bound on what one
/// connection's read buffer holds.
pub const MAX_FRAME: usize = 4 * 1024 * 1024;
/// Most elements (every leaf and aggregate header) in one reply. The
/// largest legitimate reply is `CLUSTER SHARDS` of a 1,000-node cluster:
/// about 20 elements a node, so some 20,000, plus the shards' slot ranges.
/// A hostile `*1048576` of nulls is cut off here, after 3 bytes a token at
/// most, so a reply costs at most MAX_TOKENS × (token + frame) ≈ 4 MiB of
/// decoder memory however it is shaped.
pub const MAX_TOKENS: usize = 64 * 1024;
/// Most elements one aggregate header may announce.
pub const MAX_ELEMENTS: usize = MAX_TOKENS;
/// Token capacity a decoder keeps between replies.
const KEEP_TOKENS: usize = 256;
/// Spare working arrays kept per thread (see [`Decoder::release`]): about
/// the replies one poller tick has in flight at 10,000 instances.
const KEEP_SPARE: usize = 256;

thread_local! {
    static SPARE: std::cell::RefCell<Vec<(Vec<Open>, Vec<Token>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}
/// Deepest nesting of aggregates. Real replies nest three or four levels
/// (CLUSTER SHARDS: array, map, array of maps); this keeps the builder's
/// recursion and the state stack small.
pub const MAX_DEPTH: usize = 16;

/// One decoded reply. Strings are zero-copy slices of the read buffer.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+OK`
    Simple(Bytes),
    /// `-ERR message` (the text after `-`).
    Error(Bytes),
    /// `:42`
    Integer(i64),
    /// `$5\r\nhello`
    Bulk(Bytes),
    /// RESP2 null bulk / null array (`$-1`, `*-1`) and RESP3 `_`.
    Null,
    /// `*N`
    Array(Vec<Frame>),
    /// RESP3 `=len\r\nfmt:text`: `format` is the three-byte type, `text` the rest.
    Verbatim { format: [u8; 3], text: Bytes },
    /// RESP3 `!len\r\nmessage`.
    BulkError(Bytes),
    /// RESP3 `#t` / `#f`.
    Boolean(bool),
    /// RESP3 `,1.5` (also `inf`, `-inf`, `nan`).
    Double(f64),
    /// RESP3 `(1234...` kept as its digits.
    BigNumber(Bytes),
    /// RESP3 `%N` key/value pairs in wire order.
    Map(Vec<(Frame, Frame)>),
    /// RESP3 `~N`.
    Set(Vec<Frame>),
    /// RESP3 `>N` out-of-band push.
    Push(Vec<Frame>),
}

impl Frame {
    /// The error text if this is an error reply (`-` or `!`).
    pub fn as_error(&self) -> Option<&Bytes> {
        match self {
            Frame::Error(b) | Frame::BulkError(b) => Some(b),
            _ => None,
        }
    }

    /// The bytes of a string reply: simple, bulk or verbatim.
    pub fn as_text(&self) -> Option<&[u8]> {
        match self {
            Frame::Bulk(b) | Frame::Simple(b) => Some(b),
            Frame::Verbatim { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The field/value pairs of a RESP2 flat array (of even length) or a
    /// RESP3 map, when every field is a string.
    pub fn as_pairs(&self) -> Option<Vec<(&[u8], &Frame)>> {
        match self {
            Frame::Map(m) => m.iter().map(|(k, v)| Some((k.as_text()?, v))).collect(),
            Frame::Array(a) if a.len() % 2 == 0 => a
                .chunks_exact(2)
                .map(|kv| Some((kv[0].as_text()?, &kv[1])))
                .collect(),
            _ => None,
        }
    }
}

/// Why a reply could not be decoded. Small and allocation-free: the
/// connection is dropped and the instance reported as `protocol_error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The first byte of an element is not a RESP type.
    UnknownType(u8),
    /// A header line exceeds [`MAX_LINE`].
    LineTooLong,
    /// A `\r` not followed by `\n`, or data not followed by CRLF.
    MissingCrlf,
    /// A length, count or integer that is not a decimal number.
    BadNumber,
    /// A length or count over its bound.
    TooLarge,
    /// Aggregates nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A boolean, double or verbatim string with invalid contents.
    BadValue,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::UnknownType(b) => write!(f, "unknown RESP type byte 0x{b:02x}"),
            DecodeError::LineTooLong => write!(f, "RESP line longer than {MAX_LINE} bytes"),
            DecodeError::MissingCrlf => write!(f, "RESP element not terminated by CRLF"),
            DecodeError::BadNumber => write!(f, "invalid number in RESP header"),
            DecodeError::TooLarge => write!(f, "RESP length or count over the limit"),
            DecodeError::TooDeep => write!(f, "RESP aggregates nested deeper than {MAX_DEPTH}"),
            DecodeError::BadValue => write!(f, "invalid RESP value"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// What the scan found at one position; the builder turns these into frames.
#[derive(Clone, Copy, Debug)]
struct Token {
    kind: u8,
    /// Start and end of the payload within the frame (a frame is at most
    /// [`MAX_FRAME`] bytes, so `u32` holds them and a token is 24 bytes).
    start: u32,
    end: u32,
    /// Integer value, or element count for aggregates (-1 for RESP2 null).
    n: i64,
}

/// An aggregate still waiting for elements.
#[derive(Clone, Copy, Debug)]
struct Open {
    remaining: usize,
    /// An attribute map (`|`) annotates the next element and is not itself
    /// one: its completion does not count toward the parent.
    attribute: bool,
}

/// Incremental decoder. Keep one per connection, next to the one read
/// buffer it decodes; do not consume that buffer elsewhere between calls.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Offset of the next element header not yet validated.
    pos: usize,
    /// Where the search for the current header's CR resumes.
    scan_from: usize,
    open: Vec<Open>,
    tokens: Vec<Token>,
}

impl Decoder {
    /// A decoder with no partial state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget any partial reply (after the connection is dropped).
    pub fn reset(&mut self) {
        self.pos = 0;
        self.scan_from = 0;
        self.open.clear();
        self.tokens.clear();
        // A rare large reply (a cluster topology) must not pin its token
        // array for the connection's life: INFO replies need a handful.
        if self.tokens.capacity() > KEEP_TOKENS {
            self.tokens = Vec::new();
        }
    }

    /// Give this decoder's working arrays to the thread's spares, when it
    /// holds no partial reply: a connection between polls then holds none
    /// (at 10,000 instances, the token arrays a metrics poll grew were
    /// 0.4 KiB per instance), and the next decode on this thread takes a
    /// spare back instead of allocating.
    pub fn release(&mut self) {
        let idle = self.pos == 0 && self.open.is_empty() && self.tokens.is_empty();
        if !idle || (self.tokens.capacity() == 0 && self.open.capacity() == 0) {
            return;
        }
        let arrays = (
            std::mem::take(&mut self.open),
            std::mem::take(&mut self.tokens),
        );
        SPARE.with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < KEEP_SPARE {
                s.push(arrays);
            }
        });
    }

    /// Decode one reply from the front of `buf`. On success its bytes are
    /// split off `buf`; `Ok(None)` leaves `buf` untouched for more input.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        if self.tokens.capacity() == 0 {
            if let Some((open, tokens)) = SPARE.with(|s| s.borrow_mut().pop()) {
                self.open = open;
                self.tokens = tokens;
            }
        }
        match self.scan(buf) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => {
                self.reset();
                return Err(e);
            }
        }
        let bytes = buf.split_to(self.pos).freeze();
        let mut at = 0;
        let frame = build(&bytes, &self.tokens, &mut at);
        self.reset();
        Ok(Some(frame))
    }

    /// Validate elements from `self.pos` on. True when a whole top-level
    /// reply lies in `buf[..self.pos]`.
    fn scan(&mut self, buf: &[u8]) -> Result<bool, DecodeError> {
        loop {
            let pos = self.pos;
            if pos >= buf.len() {
                return Ok(false);
            }
            let kind = buf[pos];
            let from = self.scan_from.max(pos + 1);
            let Some(cr) = memchr(b'\r', &buf[from..]).map(|i| from + i) else {
                if buf.len() - pos > MAX_LINE {
                    return Err(DecodeError::LineTooLong);
                }
                self.scan_from = buf.len();
                return Ok(false);
            };
            if cr - pos > MAX_LINE {
                return Err(DecodeError::LineTooLong);
            }
            if cr + 1 >= buf.len() {
                // The LF has not arrived yet: resume at this CR next time.
                self.scan_from = cr;
                return Ok(false);
            }
            if buf[cr + 1] != b'\n' {
                return Err(DecodeError::MissingCrlf);
            }
            let line = &buf[pos + 1..cr];
            let next = cr + 2;
            let mut token = Token {
                kind,
                start: offset(pos + 1),
                end: offset(cr),
                n: 0,
            };
            // End of this element if it is a leaf; None for an aggregate header.
            let mut leaf_end = Some(next);
            match kind {
                b'+' | b'-' | b'(' => {}
                b':' => token.n = parse_i64(line)?,
                b'_' => {
                    if !line.is_empty() {
                        return Err(DecodeError::BadValue);
                    }
                }
                b'#' => {
                    token.n = match line {
                        b"t" => 1,
                        b"f" => 0,
                        _ => return Err(DecodeError::BadValue),
                    }
                }
                b',' => {
                    parse_double(line)?;
                }
                b'$' | b'!' | b'=' => {
                    let len = parse_i64(line)?;
                    if len == -1 && kind == b'$' {
                        token.n = -1;
                    } else {
                        let len = bounded(len, MAX_BULK)?;
                        let end = next + len;
                        if end + 2 > MAX_FRAME {
                            return Err(DecodeError::TooLarge);
                        }
                        if buf.len() < end + 2 {
                            // Header validated; wait for the payload. Only the
                            // short header is looked at again next time.
                            self.scan_from = cr;
                            return Ok(false);
                        }
                        if &buf[end..end + 2] != b"\r\n" {
                            return Err(DecodeError::MissingCrlf);
                        }
                        if kind == b'=' && (len < 4 || buf[next + 3] != b':') {
                            return Err(DecodeError::BadValue);
                        }
                        token.start = offset(next);
                        token.end = offset(end);
                        leaf_end = Some(end + 2);
                    }
                }
                b'*' | b'~' | b'>' | b'%' | b'|' => {
                    let count = parse_i64(line)?;
                    if count == -1 && kind == b'*' {
                        token.n = -1;
                    } else {
                        let mut count = bounded(count, MAX_ELEMENTS)?;
                        if kind == b'%' || kind == b'|' {
                            count *= 2;
                        }
                        token.n = count as i64;
                        if count == 0 && kind == b'|' {
                            // An empty attribute annotates nothing and is not an element.
                            leaf_end = None;
                        } else if count > 0 {
                            if self.open.len() >= MAX_DEPTH {
                                return Err(DecodeError::TooDeep);
                            }
                            self.open.push(Open {
                                remaining: count,
                                attribute: kind == b'|',
                            });
                            leaf_end = None;
                        }
                    }
                }
                other => return Err(DecodeError::UnknownType(other)),
            }
            // Counted per reply, not per aggregate: wide arrays nested in
            // wide arrays must not multiply past the bound.
            if self.tokens.len() >= MAX_TOKENS {
                return Err(DecodeError::TooLarge);
            }
            self.tokens.push(token);
            let end = leaf_end.unwrap_or(next);
            if end > MAX_FRAME {
                return Err(DecodeError::TooLarge);
            }
            self.pos = end;
            self.scan_from = end;
            if leaf_end.is_some() && self.complete_one() {
                return Ok(true);
            }
        }
    }

    /// An element just finished: close every aggregate it completes. True
    /// when that finishes the top-level reply.
    fn complete_one(&mut self) -> bool {
        loop {
            let Some(top) = self.open.last_mut() else {
                return true;
            };
            top.remaining -= 1;
            if top.remaining > 0 {
                return false;
            }
            let attribute = top.attribute;
            self.open.pop();
            if attribute {
                // The annotated element is still to come.
                return false;
            }
        }
    }
}

/// A position inside a frame as stored in a token. Positions are checked
/// against [`MAX_FRAME`] (plus one line) before tokens are made, far below
/// `u32::MAX`; saturating keeps a broken invariant a decode error later,
/// not a panic.
fn offset(pos: usize) -> u32 {
    u32::try_from(pos).unwrap_or(u32::MAX)
}

fn bounded(n: i64, max: usize) -> Result<usize, DecodeError> {
    match usize::try_from(n) {
        Ok(n) if n <= max => Ok(n),
        Ok(_) => Err(DecodeError::TooLarge),
        Err(_) => Err(DecodeError::BadNumber),
    }
}

/// Build the frame starting at token `*at` from the validated bytes.
fn build(bytes: &Bytes, tokens: &[Token], at: &mut usize) -> Frame {
    // Attributes annotate the next element; redpulse does not use them.
    while tokens.get(*at).is_some_and(|t| t.kind == b'|') {
        let n = tokens[*at].n as usize;
        *at += 1;
        for _ in 0..n {
            build(bytes, tokens, at);
        }
    }
    let Some(&t) = tokens.get(*at) else {
        // The scan guarantees a complete token stream; an empty frame is
        // still better than a panic on wire data.
        return Frame::Null;
    };
    *at += 1;
    let (start, end) = (t.start as usize, t.end as usize);
    let slice = || bytes.slice(start..end);
    let children = |at: &mut usize, n: i64| -> Vec<Frame> {
        (0..n).map(|_| build(bytes, tokens, at)).collect()
    };
    match t.kind {
        b'+' => Frame::Simple(slice()),
        b'-' => Frame::Error(slice()),
        b':' => Frame::Integer(t.n),
        b'_' => Frame::Null,
        b'#' => Frame::Boolean(t.n == 1),
        b',' => Frame::Double(parse_double(&bytes[start..end]).unwrap_or(f64::NAN)),
        b'(' => Frame::BigNumber(slice()),
        b'$' if t.n == -1 => Frame::Null,
        b'$' => Frame::Bulk(slice()),
        b'!' => Frame::BulkError(slice()),
        b'=' => {
            let s = &bytes[start..end];
            Frame::Verbatim {
                format: [s[0], s[1], s[2]],
                text: bytes.slice(start + 4..end),
            }
        }
        b'*' if t.n == -1 => Frame::Null,
        b'*' => Frame::Array(children(at, t.n)),
        b'~' => Frame::Set(children(at, t.n)),
        b'>' => Frame::Push(children(at, t.n)),
        b'%' => {
            let pairs = (0..t.n / 2)
                .map(|_| {
                    let k = build(bytes, tokens, at);
                    (k, build(bytes, tokens, at))
                })
                .collect();
            Frame::Map(pairs)
        }
        _ => Frame::Null,
    }
}

/// Parse a decimal `i64` with an optional sign; no spaces, no empty input.
/// Accumulates toward the sign, so `i64::MIN` parses like `str::parse`.
pub fn parse_i64(s: &[u8]) -> Result<i64, DecodeError> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return Err(DecodeError::BadNumber);
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(DecodeError::BadNumber);
        }
        let d = (d - b'0') as i64;
        v = v
            .checked_mul(10)
            .and_then(|v| {
                if neg {
                    v.checked_sub(d)
                } else {
                    v.checked_add(d)
                }
            })
            .ok_or(DecodeError::BadNumber)?;
    }
    Ok(v)
}

fn parse_double(s: &[u8]) -> Result<f64, DecodeError> {
    let text = std::str::from_utf8(s).map_err(|_| DecodeError::BadValue)?;
    match text {
        "inf" => Ok(f64::INFINITY),
        "-inf" => Ok(f64::NEG_INFINITY),
        "nan" => Ok(f64::NAN),
        _ => text.parse().map_err(|_| DecodeError::BadValue),
    }
}

/// Append one command as a RESP array of bulk strings.
pub fn encode_command(out: &mut BytesMut, args: &[&[u8]]) {
    out.reserve(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    out.put_u8(b'*');
    put_decimal(out, args.len() as u64);
    out.put_slice(b"\r\n");
    for arg in args {
        out.put_u8(b'$');
        put_decimal(out, arg.len() as u64);
        out.put_slice(b"\r\n");
        out.put_slice(arg);
        out.put_slice(b"\r\n");
    }
}

/// Append `n` in decimal.
pub fn put_decimal(out: &mut impl BufMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<Vec<Frame>, DecodeError> {
        let mut buf = BytesMut::from(input);
        let mut d = Decoder::new();
        let mut frames = Vec::new();
        while let Some(f) = d.decode(&mut buf)? {
            frames.push(f);
        }
        assert!(buf.is_empty(), "trailing bytes after whole input: {buf:?}");
        Ok(frames)
    }

    #[test]
    fn an_idle_decoder_lends_its_arrays_and_a_busy_one_keeps_them() {
        let reply = b"*3\r\n$1\r\na\r\n:7\r\n*1\r\n+x\r\n";
        let mut d = Decoder::new();
        let mut buf = BytesMut::from(&reply[..]);
        let first = d.decode(&mut buf).unwrap().unwrap();
        assert!(d.tokens.capacity() > 0);
        let lent = d.tokens.as_ptr();
        d.release();
        assert_eq!(d.tokens.capacity(), 0, "an idle decoder kept its tokens");
        // The next decoder on this thread takes the spare arrays back.
        let mut other = Decoder::new();
        let mut buf = BytesMut::from(&reply[..]);
        assert_eq!(other.decode(&mut buf).unwrap().unwrap(), first);
        assert_eq!(
            other.tokens.as_ptr(),
            lent,
            "the spare arrays were not reused"
        );
        // Half a reply: release must keep the partial state, and the rest
        // completes the same reply.
        let mut buf = BytesMut::from(&reply[..9]);
        assert_eq!(other.decode(&mut buf).unwrap(), None);
        let held = other.tokens.capacity();
        other.release();
        assert_eq!(
            other.tokens.capacity(),
            held,
            "a busy decoder lent its arrays"
        );
        buf.extend_from_slice(&reply[9..]);
        assert_eq!(other.decode(&mut buf).unwrap().unwrap(), first);
    }

    /// Feed `input` in pieces cut at the given positions.
    fn decode_split(input: &[u8], cuts: &[usize]) -> Result<Vec<Frame>, DecodeError> {
        let mut buf = BytesMut::new();
        let mut d = Decoder::new();
        let mut frames = Vec::new();
        let mut last = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            buf.extend_from_slice(&input[last..cut]);
            last = cut;
            while let Some(f) = d.decode(&mut buf)? {
                frames.push(f);
            }
        }
        Ok(frames)
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn resp2_scalars_decode() {
        let frames = decode_all(b"+OK\r\n-ERR bad\r\n:-42\r\n$5\r\nhello\r\n$0\r\n\r\n").unwrap();
        assert_eq!(
            frames,
            vec![
                Frame::Simple(b("OK")),
                Frame::Error(b("ERR bad")),
                Frame::Integer(-42),
                Frame::Bulk(b("hello")),
                Frame::Bulk(b("")),
            ]
        );
    }

    #[test]
    fn null_bulk_and_null_array_decode_to_null() {
        assert_eq!(
            decode_all(b"$-1\r\n*-1\r\n_\r\n").unwrap(),
            vec![Frame::Null; 3]
        );
    }

    #[test]
    fn bulk_may_contain_crlf() {
        let frames = decode_all(b"$4\r\na\r\nb\r\n").unwrap();
        assert_eq!(frames, vec![Frame::Bulk(b("a\r\nb"))]);
    }

    #[test]
    fn nested_arrays_decode() {
        let frames = decode_all(b"*2\r\n*1\r\n:1\r\n*0\r\n").unwrap();
        assert_eq!(
            frames,
            vec![Frame::Array(vec![
                Frame::Array(vec![Frame::Integer(1)]),
                Frame::Array(vec![])
            ])]
        );
    }

    #[test]
    fn resp3_types_decode() {
        let input = b"%2\r\n+a\r\n#t\r\n+b\r\n,1.5\r\n~1\r\n(12345678901234567890\r\n>2\r\n+message\r\n,-inf\r\n=8\r\ntxt:abcd\r\n!3\r\nERR\r\n";
        let frames = decode_all(input).unwrap();
        assert_eq!(
            frames,
            vec![
                Frame::Map(vec![
                    (Frame::Simple(b("a")), Frame::Boolean(true)),
                    (Frame::Simple(b("b")), Frame::Double(1.5)),
                ]),
                Frame::Set(vec![Frame::BigNumber(b("12345678901234567890"))]),
                Frame::Push(vec![
                    Frame::Simple(b("message")),
                    Frame::Double(f64::NEG_INFINITY)
                ]),
                Frame::Verbatim {
                    format: *b"txt",
                    text: b("abcd")
                },
                Frame::BulkError(b("ERR")),
            ]
        );
    }

    #[test]
    fn attribute_is_skipped_and_annotates_next_element() {
        let input = b"*2\r\n|1\r\n+ttl\r\n:3\r\n:7\r\n:8\r\n|1\r\n+k\r\n+v\r\n+top\r\n";
        let frames = decode_all(input).unwrap();
        assert_eq!(
            frames,
            vec![
                Frame::Array(vec![Frame::Integer(7), Frame::Integer(8)]),
                Frame::Simple(b("top"))
            ]
        );
    }

    #[test]
    fn partial_frame_is_none_and_keeps_buffer() {
        let mut d = Decoder::new();
        let mut buf = BytesMut::from(&b"$10\r\nhello"[..]);
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        assert_eq!(&buf[..], b"$10\r\nhello");
        buf.extend_from_slice(b"world\r\n+OK\r\n");
        assert_eq!(
            d.decode(&mut buf).unwrap(),
            Some(Frame::Bulk(b("helloworld")))
        );
        assert_eq!(d.decode(&mut buf).unwrap(), Some(Frame::Simple(b("OK"))));
        assert_eq!(d.decode(&mut buf).unwrap(), None);
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let cases: &[(&[u8], DecodeError)] = &[
            (b"?x\r\n", DecodeError::UnknownType(b'?')),
            (b"$abc\r\n", DecodeError::BadNumber),
            (b"$-2\r\n", DecodeError::BadNumber),
            (b"$99999999999\r\n", DecodeError::TooLarge),
            (b"*99999999999\r\n", DecodeError::TooLarge),
            (b"$3\r\nabcde\r\n", DecodeError::MissingCrlf),
            (b"+OK\rX", DecodeError::MissingCrlf),
            (b":99999999999999999999\r\n", DecodeError::BadNumber),
            (b"#x\r\n", DecodeError::BadValue),
            (b",abc\r\n", DecodeError::BadValue),
            (b"=3\r\ntxt\r\n", DecodeError::BadValue),
            (b"_x\r\n", DecodeError::BadValue),
        ];
        for (input, want) in cases {
            assert_eq!(
                decode_all(input),
                Err(*want),
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let input = b"*1\r\n".repeat(100_000);
        assert_eq!(decode_all(&input), Err(DecodeError::TooDeep));
        let ok = [b"*1\r\n".repeat(MAX_DEPTH), b":1\r\n".to_vec()].concat();
        assert_eq!(decode_all(&ok).unwrap().len(), 1);
    }

    #[test]
    fn endless_line_is_rejected_once_over_the_limit() {
        let mut d = Decoder::new();
        let mut buf = BytesMut::from(&b"+"[..]);
        buf.extend_from_slice(&vec![b'a'; MAX_LINE - 1]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&[b'a'; 2]);
        assert_eq!(d.decode(&mut buf), Err(DecodeError::LineTooLong));
    }

    #[test]
    fn lf_split_from_cr_is_waited_for() {
        assert_eq!(
            decode_split(b"+OK\r\n", &[4]).unwrap(),
            vec![Frame::Simple(b("OK"))]
        );
        assert_eq!(
            decode_split(b"$2\r\nab\r\n", &[3, 7]).unwrap(),
            vec![Frame::Bulk(b("ab"))]
        );
    }

    #[test]
    fn encoder_writes_resp_arrays() {
        let mut out = BytesMut::new();
        encode_command(&mut out, &[b"INFO", b"memory"]);
        encode_command(&mut out, &[]);
        assert_eq!(&out[..], b"*2\r\n$4\r\nINFO\r\n$6\r\nmemory\r\n*0\r\n");
        // What we encode, we decode back.
        let mut long = BytesMut::new();
        let arg = vec![b'x'; 12345];
        encode_command(&mut long, &[&arg]);
        assert_eq!(
            decode_all(&long).unwrap(),
            vec![Frame::Array(vec![Frame::Bulk(Bytes::from(arg))])]
        );
    }

    #[test]
    fn parse_i64_matches_std_on_edge_cases() {
        for s in [
            "0",
            "-0",
            "+7",
            "9223372036854775807",
            "-9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "-9223372036854775809",
            "+-1",
            "--1",
            "00000000000000000001",
            "12a",
            "",
            "-",
            "1 ",
        ] {
            let ours = parse_i64(s.as_bytes()).ok();
            let std = s.parse::<i64>().ok();
            assert_eq!(ours, std, "{s:?}");
        }
    }

    /// Every captured reply file, by name.
    fn corpus() -> Vec<(String, Vec<u8>)> {
        crate::testdata::names()
            .into_iter()
            .map(|name| {
                let bytes = crate::testdata::bytes(&name);
                (name, bytes)
            })
            .collect()
    }

    /// How many replies each capture holds, from the corpus README (not
    /// from the decoder): seven pipelined single-section INFOs, `+OK` from
    /// AUTH before an INFO, else one reply (the HELLO capture holds only
    /// the INFO that followed it).
    fn replies_in_capture(name: &str) -> usize {
        if name.contains("pipelined_sections") {
            7
        } else if name.contains("auth_ok_then_info") {
            2
        } else {
            1
        }
    }

    #[test]
    fn every_corpus_reply_decodes_completely() {
        for (name, bytes) in corpus() {
            let frames = decode_all(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(frames.len(), replies_in_capture(&name), "{name}");
        }
    }

    #[test]
    fn flat_wide_array_of_nulls_is_cut_at_the_token_cap() {
        let mut input = b"*1048576\r\n".to_vec();
        input.extend(b"_\r\n".repeat(1_048_576));
        let mut d = Decoder::new();
        let mut buf = BytesMut::from(&input[..]);
        assert_eq!(d.decode(&mut buf), Err(DecodeError::TooLarge));
        // Cut off after MAX_TOKENS tokens, not after a million.
        assert!(
            d.tokens.capacity() <= KEEP_TOKENS,
            "kept {}",
            d.tokens.capacity()
        );
        // One element fewer than the cap decodes.
        let mut ok = format!("*{}\r\n", MAX_TOKENS - 1).into_bytes();
        ok.extend(b"_\r\n".repeat(MAX_TOKENS - 1));
        assert_eq!(decode_all(&ok).unwrap().len(), 1);
    }

    #[test]
    fn wide_arrays_nested_in_wide_arrays_are_bounded_per_reply() {
        // Each level announces the cap; the product is never reached.
        let mut input = Vec::new();
        for _ in 0..MAX_DEPTH {
            input.extend(format!("*{MAX_ELEMENTS}\r\n").bytes());
        }
        input.extend(b":1\r\n".repeat(MAX_TOKENS));
        assert_eq!(decode_all(&input), Err(DecodeError::TooLarge));
        let deeper = format!("*{MAX_ELEMENTS}\r\n").repeat(MAX_DEPTH + 1);
        assert_eq!(decode_all(deeper.as_bytes()), Err(DecodeError::TooDeep));
    }

    #[test]
    fn many_small_bulks_are_cut_at_the_frame_cap() {
        let bulk = format!("${}\r\n{}\r\n", 60, "x".repeat(60));
        let n = MAX_FRAME / bulk.len() + 1;
        assert!(
            n < MAX_TOKENS,
            "the frame cap, not the token cap, must bite"
        );
        let mut input = format!("*{n}\r\n").into_bytes();
        input.extend(bulk.repeat(n).bytes());
        assert_eq!(decode_all(&input), Err(DecodeError::TooLarge));
        let fits = (MAX_FRAME - 16) / bulk.len();
        let mut ok = format!("*{fits}\r\n").into_bytes();
        ok.extend(bulk.repeat(fits).bytes());
        assert_eq!(decode_all(&ok).unwrap().len(), 1);
    }

    #[test]
    fn corpus_split_at_every_byte_gives_the_same_frames() {
        for (name, bytes) in corpus() {
            let whole = decode_all(&bytes).unwrap();
            for cut in 0..=bytes.len() {
                let split = decode_split(&bytes, &[cut]).unwrap();
                assert_eq!(split, whole, "{name} cut at {cut}");
            }
        }
    }

    #[test]
    fn corpus_fed_one_byte_at_a_time_gives_the_same_frames() {
        for (name, bytes) in corpus() {
            let cuts: Vec<usize> = (1..bytes.len()).collect();
            assert_eq!(
                decode_split(&bytes, &cuts).unwrap(),
                decode_all(&bytes).unwrap(),
                "{name}"
            );
        }
    }
}
