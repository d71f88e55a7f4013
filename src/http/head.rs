//! The I/O-free half of reading a request: parsing a head out of bytes already read,
//! and deciding how its body is framed (RFC 9112 section 6: one `Content-Length`, or
//! `Transfer-Encoding: chunked`, never both). The request loop in `conn` feeds it what
//! it has read; the fuzz target exercises it through that loop.

use super::{Limits, RequestHead};

/// Most headers a request may carry.
const MAX_HEADERS: usize = 100;
/// A request the HTTP layer refuses itself, with its status and reason.
#[derive(Debug)]
pub(super) struct Refusal {
    pub(super) status: u16,
    pub(super) detail: String,
}

pub(super) fn refuse(status: u16, detail: impl Into<String>) -> Refusal {
    Refusal {
        status,
        detail: detail.into(),
    }
}

/// How the body of a request is framed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// A parsed head and what the loop needs to know about it.
pub(super) struct Head {
    pub(super) head: RequestHead,
    pub(super) framing: Framing,
    pub(super) keep_alive: bool,
    pub(super) expects_continue: bool,
    /// An HTTP/1.0 request: its response cannot be chunked.
    pub(super) http10: bool,
}

/// The length of the request target on the (possibly incomplete) request line at the
/// start of `buf`, once its start has arrived.
fn target_len(buf: &[u8]) -> Option<usize> {
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let line = &buf[start..];
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let after_method = line.iter().position(|&b| b == b' ')? + 1;
    let target = &line[after_method..];
    Some(
        target
            .iter()
            .position(|&b| b == b' ')
            .unwrap_or(target.len()),
    )
}

/// Parses a request head at the start of `buf`. `Ok(None)` when more bytes are needed.
pub(super) fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<(Head, usize)>, Refusal> {
    let too_long = || {
        refuse(
            414,
            format!(
                "request target longer than the limit of {} bytes",
                limits.max_target_len
            ),
        )
    };
    let too_large = || {
        refuse(
            431,
            format!(
                "request head larger than the limit of {} bytes",
                limits.max_head_len
            ),
        )
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            if parsed.path.is_some_and(|p| p.len() > limits.max_target_len) {
                return Err(too_long());
            }
            if len > limits.max_head_len {
                return Err(too_large());
            }
            len
        }
        Ok(httparse::Status::Partial) => {
            let head_part = &buf[..buf.len().min(limits.max_head_len + 1)];
            if target_len(head_part).is_some_and(|n| n > limits.max_target_len) {
                return Err(too_long());
            }
            if buf.len() > limits.max_head_len {
                return Err(too_large());
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(refuse(
                431,
                format!("more than {MAX_HEADERS} request headers"),
            ));
        }
        Err(e) => return Err(refuse(400, format!("malformed request: {e}"))),
    };
    let method = parsed.method.unwrap_or_default().to_string();
    let target = parsed.path.unwrap_or_default().to_string();
    let http10 = parsed.version == Some(0);
    let mut fields = Vec::with_capacity(parsed.headers.len());
    for header in parsed.headers.iter() {
        let value = std::str::from_utf8(header.value)
            .map_err(|_| refuse(400, format!("header {} is not UTF-8", header.name)))?;
        fields.push((header.name.to_string(), value.trim().to_string()));
    }
    let head = RequestHead {
        method,
        target,
        headers: fields,
    };
    // RFC 9112 section 3.2: exactly one Host in HTTP/1.1, at most one in HTTP/1.0.
    match head
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("host"))
        .count()
    {
        0 if !http10 => return Err(refuse(400, "missing Host header")),
        0 | 1 => {}
        _ => return Err(refuse(400, "more than one Host header")),
    }
    let framing = framing(&head, http10)?;
    let connection = head.header("connection").unwrap_or("").to_ascii_lowercase();
    let has_token = |token: &str| connection.split(',').any(|t| t.trim() == token);
    let keep_alive = if http10 {
        has_token("keep-alive")
    } else {
        !has_token("close")
    };
    // RFC 9110 section 10.1.1: an HTTP/1.0 client's 100-continue is ignored.
    let expects_continue = !http10
        && head
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    Ok(Some((
        Head {
            head,
            framing,
            keep_alive,
            expects_continue,
            http10,
        },
        len,
    )))
}

/// Decides how the body is framed, refusing the ambiguous cases that enable request
/// smuggling (RFC 9112 section 6.3).
fn framing(head: &RequestHead, http10: bool) -> Result<Framing, Refusal> {
    let named = |name: &str| {
        head.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    let transfer_encodings = named("transfer-encoding");
    let lengths = named("content-length");
    if !transfer_encodings.is_empty() {
        if !lengths.is_empty() {
            return Err(refuse(
                400,
                "both Content-Length and Transfer-Encoding sent",
            ));
        }
        // RFC 9112 section 6.1: HTTP/1.0 has no transfer codings; the framing is
        // faulty.
        if http10 {
            return Err(refuse(400, "Transfer-Encoding in an HTTP/1.0 request"));
        }
        let codings: Vec<String> = transfer_encodings
            .iter()
            .flat_map(|v| v.split(','))
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        if codings != ["chunked"] {
            return Err(refuse(
                501,
                format!(
                    "unsupported transfer coding `{}`: only `chunked` is accepted",
                    transfer_encodings.join(", ")
                ),
            ));
        }
        return Ok(Framing::Chunked);
    }
    match lengths.as_slice() {
        [] => Ok(Framing::None),
        // Digits only: no sign, no list. A length too large for a u64 is still a
        // length, and too large.
        [one] if !one.is_empty() && one.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Framing::Length(one.parse().unwrap_or(u64::MAX)))
        }
        [one] => Err(refuse(400, format!("invalid Content-Length `{one}`"))),
        _ => Err(refuse(400, "more than one Content-Length header")),
    }
}
