//! Arbitrary bytes from a client through the request loop, read in pieces of a
//! size the input chooses. The loop must never panic, and whatever it writes must be
//! responses.

#![no_main]

use std::io::{self, Read, Write};

use cargo_overlay_registry::fuzzing::{
    Body, Handler, Limits, Request, RequestHead, Response, serve_connection,
};
use libfuzzer_sys::fuzz_target;

/// A client connection in memory: reads hand out at most `piece` bytes at a time.
struct Client<'a> {
    input: &'a [u8],
    piece: usize,
    output: Vec<u8>,
}

impl Read for Client<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.piece).min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Client<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Echoes requests; refuses `/refuse` before its body, and takes a body of up to 4 KiB
/// on `/upload`, 64 bytes elsewhere (small limits, so the fuzzer reaches them).
struct Echo;

impl Handler for Echo {
    fn check_head(&self, head: &RequestHead, _body_len: Option<u64>) -> Result<u64, Response> {
        match head.path() {
            "/refuse" => Err(self.protocol_error(403, "refused")),
            "/upload" => Ok(4096),
            _ => Ok(64),
        }
    }

    fn handle(&self, request: Request) -> Response {
        let _ = (request.head.path(), request.head.query());
        Response::new(200, Body::Bytes(request.body)).with_header("X-Target", "x")
    }

    fn protocol_error(&self, status: u16, detail: &str) -> Response {
        Response::new(status, Body::Bytes(detail.as_bytes().to_vec()))
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&piece, input)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        // Small limits so the fuzzer reaches them.
        max_head_len: 2048,
        max_target_len: 256,
        ..Limits::default()
    };
    let mut client = Client {
        input,
        piece: usize::from(piece).max(1),
        output: Vec::new(),
    };
    let _ = serve_connection(&mut client, &Echo, &limits);
    assert!(
        client.output.is_empty() || client.output.starts_with(b"HTTP/1.1 "),
        "not a response: {:?}",
        String::from_utf8_lossy(&client.output)
    );
});
