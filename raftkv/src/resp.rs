//! RESP2, the Redis serialization protocol: parsing client commands and encoding (and parsing)
//! replies.
//!
//! A client sends a command as an array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) or as
//! an inline line of space-separated words (`GET k\r\n`, what `telnet` users type). The parser is
//! incremental: it is handed everything received so far and either returns one complete command
//! with the number of bytes it used, or says that more input is needed. The limits are Redis's
//! own: a multibulk of at most 1,048,576 arguments, a bulk string of at most 512 MiB, an inline
//! line of at most 64 KiB.

use std::fmt;

/// The most arguments in one command (Redis: 1024 * 1024).
pub const MAX_ARGS: i64 = 1024 * 1024;
/// The largest bulk string in bytes (Redis `proto-max-bulk-len`: 512 MiB).
pub const MAX_BULK_BYTES: i64 = 512 * 1024 * 1024;
/// The longest inline command or header line in bytes (Redis `PROTO_INLINE_MAX_SIZE`: 64 KiB).
pub const MAX_INLINE_BYTES: usize = 64 * 1024;

/// Input that breaks the protocol. The connection cannot be resynchronised after it, so the server
/// replies with `-ERR Protocol error: <this>` and closes the connection (as Redis does).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A multibulk count that is not a number or is beyond [`MAX_ARGS`].
    #[error("invalid multibulk length")]
    InvalidMultibulkLength,
    /// A bulk length that is not a number, is negative or is beyond [`MAX_BULK_BYTES`].
    #[error("invalid bulk length")]
    InvalidBulkLength,
    /// An element of a command array that is not a bulk string.
    #[error("expected '$', got '{0}'")]
    ExpectedBulk(char),
    /// A bulk string not followed by CRLF.
    #[error("bulk string not terminated by CRLF")]
    MissingCrlf,
    /// An inline command or a header line longer than [`MAX_INLINE_BYTES`].
    #[error("too big inline request")]
    TooBigInline,
    /// An inline command with an unterminated quote.
    #[error("unbalanced quotes in request")]
    UnbalancedQuotes,
    /// A reply that starts with an unknown type byte or has a malformed header.
    #[error("invalid reply: {0}")]
    InvalidReply(&'static str),
}

/// An argument or a stored value read as an integer the way Redis reads one (`string2ll`): an
/// optional minus sign, decimal digits, no spaces, no leading `+`, no leading zeros, within `i64`.
pub fn parse_integer(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0";
    if !canonical {
        return None;
    }
    text.parse().ok()
}

/// The result of an incremental parse: the value and the number of bytes it took, or `None` when
/// the input does not hold a whole one yet.
pub type Parsed<T> = Result<Option<(T, usize)>, ProtocolError>;

/// A header line: its type byte, its text without CRLF, and its length with CRLF.
type Header<'a> = (u8, &'a [u8], usize);

/// A reply to a client, in RESP2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A simple string: `+OK`.
    Status(String),
    /// An error: `-ERR message`; the text starts with the error code (`ERR`, `MOVED`, ...).
    Error(String),
    /// An integer: `:42`.
    Integer(i64),
    /// A bulk string: `$5\r\nhello`.
    Bulk(Vec<u8>),
    /// The null bulk string `$-1` (a missing key); the null array `*-1` parses to this too.
    Nil,
    /// An array of replies.
    Array(Vec<Reply>),
}

impl Reply {
    /// `+OK`.
    pub fn ok() -> Reply {
        Reply::Status("OK".to_string())
    }

    /// An error reply with the code `ERR`.
    pub fn err(message: impl fmt::Display) -> Reply {
        Reply::Error(format!("ERR {message}"))
    }

    /// Appends the RESP2 encoding of this reply to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Status(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(s) => line(out, b'-', s.as_bytes()),
            Reply::Integer(n) => line(out, b':', itoa::Buffer::new().format(*n).as_bytes()),
            Reply::Bulk(data) => {
                out.reserve(data.len() + 16);
                line(out, b'$', itoa::Buffer::new().format(data.len()).as_bytes());
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Nil => out.extend_from_slice(b"$-1\r\n"),
            Reply::Array(items) => {
                line(
                    out,
                    b'*',
                    itoa::Buffer::new().format(items.len()).as_bytes(),
                );
                for item in items {
                    item.encode(out);
                }
            }
        }
    }

    /// The RESP2 encoding of this reply.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Parses one reply from the front of `buf` (the client side of the protocol). Returns the
    /// reply and the number of bytes it took, or `None` when `buf` does not hold a whole reply yet.
    pub fn parse(buf: &[u8]) -> Parsed<Reply> {
        let Some((kind, header, mut used)) = header_line(buf)? else {
            return Ok(None);
        };
        let text = || String::from_utf8_lossy(header).into_owned();
        let number = || {
            std::str::from_utf8(header)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or(ProtocolError::InvalidReply(
                    "a length or integer is not a number",
                ))
        };
        let reply = match kind {
            b'+' => Reply::Status(text()),
            b'-' => Reply::Error(text()),
            b':' => Reply::Integer(number()?),
            b'$' => {
                let len = number()?;
                if len < 0 {
                    Reply::Nil
                } else {
                    let len = len as usize;
                    let Some(body) = buf.get(used..used + len + 2) else {
                        return Ok(None);
                    };
                    if &body[len..] != b"\r\n" {
                        return Err(ProtocolError::MissingCrlf);
                    }
                    used += len + 2;
                    Reply::Bulk(body[..len].to_vec())
                }
            }
            b'*' => {
                let count = number()?;
                if count < 0 {
                    Reply::Nil
                } else {
                    let mut items = Vec::with_capacity(count.min(1024) as usize);
                    for _ in 0..count {
                        let Some((item, n)) = Reply::parse(&buf[used..])? else {
                            return Ok(None);
                        };
                        items.push(item);
                        used += n;
                    }
                    Reply::Array(items)
                }
            }
            _ => return Err(ProtocolError::InvalidReply("unknown type byte")),
        };
        Ok(Some((reply, used)))
    }
}

fn line(out: &mut Vec<u8>, kind: u8, body: &[u8]) {
    out.push(kind);
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
}

/// The first line of `buf`: its type byte, the rest of the line without CRLF, and the number of
/// bytes up to and including the CRLF. `None` if the line is not complete yet.
fn header_line(buf: &[u8]) -> Result<Option<Header<'_>>, ProtocolError> {
    let Some(&kind) = buf.first() else {
        return Ok(None);
    };
    match find_crlf(buf) {
        Some(end) => Ok(Some((kind, &buf[1..end], end + 2))),
        None if buf.len() > MAX_INLINE_BYTES => Err(ProtocolError::TooBigInline),
        None => Ok(None),
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(cr) = buf[from..].iter().position(|&b| b == b'\r') {
        let at = from + cr;
        if buf.get(at + 1) == Some(&b'\n') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Parses one command from the front of `buf`: its arguments and the number of bytes it took, or
/// `None` when `buf` does not hold a whole command yet. An empty argument list (an empty inline
/// line, `*0`) is a command the caller skips.
pub fn parse_command(buf: &[u8]) -> Parsed<Vec<Vec<u8>>> {
    match buf.first() {
        None => Ok(None),
        Some(b'*') => parse_multibulk(buf),
        Some(_) => parse_inline(buf),
    }
}

fn parse_multibulk(buf: &[u8]) -> Parsed<Vec<Vec<u8>>> {
    let Some((_, header, mut used)) = header_line(buf)? else {
        return Ok(None);
    };
    let count = parse_i64(header).ok_or(ProtocolError::InvalidMultibulkLength)?;
    if count > MAX_ARGS {
        return Err(ProtocolError::InvalidMultibulkLength);
    }
    if count <= 0 {
        return Ok(Some((Vec::new(), used)));
    }
    let mut args = Vec::with_capacity(count.min(1024) as usize);
    for _ in 0..count {
        let rest = &buf[used..];
        match rest.first() {
            None => return Ok(None),
            Some(b'$') => {}
            Some(&other) => return Err(ProtocolError::ExpectedBulk(other as char)),
        }
        let Some((_, header, n)) = header_line(rest)? else {
            return Ok(None);
        };
        let len = parse_i64(header).ok_or(ProtocolError::InvalidBulkLength)?;
        if !(0..=MAX_BULK_BYTES).contains(&len) {
            return Err(ProtocolError::InvalidBulkLength);
        }
        let len = len as usize;
        let Some(body) = rest.get(n..n + len + 2) else {
            return Ok(None);
        };
        if &body[len..] != b"\r\n" {
            return Err(ProtocolError::MissingCrlf);
        }
        args.push(body[..len].to_vec());
        used += n + len + 2;
    }
    Ok(Some((args, used)))
}

/// An inline command: one line (ended by LF, with an optional CR before it) of words separated by
/// spaces or tabs; a word may be double-quoted (with `\"`, `\\`, `\n`, `\r`, `\t` escapes) or
/// single-quoted, as `redis-cli` and Redis accept.
fn parse_inline(buf: &[u8]) -> Parsed<Vec<Vec<u8>>> {
    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > MAX_INLINE_BYTES {
            return Err(ProtocolError::TooBigInline);
        }
        return Ok(None);
    };
    if end > MAX_INLINE_BYTES {
        return Err(ProtocolError::TooBigInline);
    }
    let mut line = &buf[..end];
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    Ok(Some((split_inline(line)?, end + 1)))
}

fn split_inline(line: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
    let mut args = Vec::new();
    let mut i = 0;
    while i < line.len() {
        if line[i] == b' ' || line[i] == b'\t' {
            i += 1;
            continue;
        }
        let mut word = Vec::new();
        match line[i] {
            quote @ (b'"' | b'\'') => {
                i += 1;
                loop {
                    let Some(&c) = line.get(i) else {
                        return Err(ProtocolError::UnbalancedQuotes);
                    };
                    i += 1;
                    if c == quote {
                        break;
                    }
                    if c == b'\\' && quote == b'"' {
                        let Some(&escaped) = line.get(i) else {
                            return Err(ProtocolError::UnbalancedQuotes);
                        };
                        i += 1;
                        word.push(match escaped {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            other => other,
                        });
                    } else {
                        word.push(c);
                    }
                }
                // A closing quote must end the word (Redis's sdssplitargs rule).
                if line.get(i).is_some_and(|&c| c != b' ' && c != b'\t') {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
            }
            _ => {
                while i < line.len() && line[i] != b' ' && line[i] != b'\t' {
                    word.push(line[i]);
                    i += 1;
                }
            }
        }
        args.push(word);
    }
    Ok(args)
}

fn parse_i64(text: &[u8]) -> Option<i64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Vec<u8>> {
        words.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn multibulk_command_parses_with_its_length() {
        let frame = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\nrest";
        let (parsed, used) = parse_command(frame).unwrap().expect("a whole command");
        assert_eq!(parsed, args(&["GET", "key"]));
        assert_eq!(
            used,
            frame.len() - 4,
            "the bytes after the command are not consumed"
        );
    }

    #[test]
    fn multibulk_command_is_incomplete_at_every_proper_prefix() {
        let frame = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nva\r\nl\r\n";
        for cut in 0..frame.len() {
            assert_eq!(
                parse_command(&frame[..cut]),
                Ok(None),
                "a prefix of {cut} bytes must ask for more input"
            );
        }
        let (parsed, used) = parse_command(frame).unwrap().unwrap();
        assert_eq!(
            parsed,
            vec![b"SET".to_vec(), b"k".to_vec(), b"va\r\nl".to_vec()]
        );
        assert_eq!(used, frame.len());
    }

    #[test]
    fn binary_and_empty_bulk_strings_survive() {
        let frame = b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$3\r\n\x00\xff\n\r\n";
        let (parsed, _) = parse_command(frame).unwrap().unwrap();
        assert_eq!(
            parsed,
            vec![b"SET".to_vec(), Vec::new(), vec![0, 0xff, b'\n']]
        );
    }

    #[test]
    fn pipelined_commands_parse_one_at_a_time() {
        let frames = b"*1\r\n$4\r\nPING\r\n*1\r\n$6\r\nDBSIZE\r\n";
        let (first, used) = parse_command(frames).unwrap().unwrap();
        assert_eq!(first, args(&["PING"]));
        let (second, used2) = parse_command(&frames[used..]).unwrap().unwrap();
        assert_eq!(second, args(&["DBSIZE"]));
        assert_eq!(used + used2, frames.len());
    }

    #[test]
    fn empty_multibulk_is_an_empty_command() {
        assert_eq!(parse_command(b"*0\r\n"), Ok(Some((Vec::new(), 4))));
        assert_eq!(parse_command(b"*-1\r\n"), Ok(Some((Vec::new(), 5))));
    }

    #[test]
    fn inline_commands_split_on_whitespace_and_honour_quotes() {
        let (parsed, used) = parse_command(b"set  k \"a b\\n\"\r\nGET k\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            parsed,
            vec![b"set".to_vec(), b"k".to_vec(), b"a b\n".to_vec()]
        );
        assert_eq!(used, 16);
        assert_eq!(
            parse_command(b"GET k\n"),
            Ok(Some((args(&["GET", "k"]), 6)))
        );
        assert_eq!(
            parse_command(b"echo 'x y'\n"),
            Ok(Some((args(&["echo", "x y"]), 11)))
        );
        assert_eq!(parse_command(b"\r\n"), Ok(Some((Vec::new(), 2))));
        assert_eq!(parse_command(b"GET k"), Ok(None), "no newline yet");
    }

    #[test]
    fn malformed_frames_are_protocol_errors() {
        assert_eq!(
            parse_command(b"*x\r\n"),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            parse_command(b"*2000000\r\n"),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            parse_command(b"*1\r\n:1\r\n"),
            Err(ProtocolError::ExpectedBulk(':'))
        );
        assert_eq!(
            parse_command(b"*1\r\n$-3\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            parse_command(b"*1\r\n$999999999999\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            parse_command(b"*1\r\n$2\r\nabcd"),
            Err(ProtocolError::MissingCrlf)
        );
        assert_eq!(
            parse_command(b"SET \"open\n"),
            Err(ProtocolError::UnbalancedQuotes)
        );
        assert_eq!(
            parse_command(b"SET \"a\"b\n"),
            Err(ProtocolError::UnbalancedQuotes)
        );
    }

    #[test]
    fn overlong_lines_without_a_terminator_are_refused() {
        let inline = vec![b'a'; MAX_INLINE_BYTES + 1];
        assert_eq!(parse_command(&inline), Err(ProtocolError::TooBigInline));
        let mut header = b"*".to_vec();
        header.extend(vec![b'1'; MAX_INLINE_BYTES + 1]);
        assert_eq!(parse_command(&header), Err(ProtocolError::TooBigInline));
    }

    #[test]
    fn replies_encode_as_resp2() {
        assert_eq!(Reply::ok().to_bytes(), b"+OK\r\n");
        assert_eq!(Reply::err("boom").to_bytes(), b"-ERR boom\r\n");
        assert_eq!(Reply::Integer(-7).to_bytes(), b":-7\r\n");
        assert_eq!(Reply::Bulk(b"hi".to_vec()).to_bytes(), b"$2\r\nhi\r\n");
        assert_eq!(Reply::Nil.to_bytes(), b"$-1\r\n");
        let array = Reply::Array(vec![Reply::Bulk(b"a".to_vec()), Reply::Nil]);
        assert_eq!(array.to_bytes(), b"*2\r\n$1\r\na\r\n$-1\r\n");
        assert_eq!(Reply::Array(Vec::new()).to_bytes(), b"*0\r\n");
    }

    #[test]
    fn replies_parse_back_to_what_was_encoded() {
        let replies = vec![
            Reply::ok(),
            Reply::Error("MOVED 0 127.0.0.1:7001".to_string()),
            Reply::Integer(i64::MIN),
            Reply::Bulk(b"a\r\nb".to_vec()),
            Reply::Nil,
            Reply::Array(vec![
                Reply::Integer(1),
                Reply::Array(vec![Reply::Bulk(Vec::new())]),
            ]),
        ];
        for reply in replies {
            let bytes = reply.to_bytes();
            assert_eq!(
                Reply::parse(&bytes),
                Ok(Some((reply.clone(), bytes.len()))),
                "{reply:?} must round-trip"
            );
            for cut in 0..bytes.len() {
                assert_eq!(
                    Reply::parse(&bytes[..cut]),
                    Ok(None),
                    "prefix {cut} of {reply:?}"
                );
            }
        }
        assert_eq!(Reply::parse(b"*-1\r\n"), Ok(Some((Reply::Nil, 5))));
        assert!(
            Reply::parse(b"?x\r\n").is_err(),
            "an unknown type byte is refused"
        );
    }
}
