//! SHA-256 as lowercase hex: the index `cksum` of a `.crate` and the router's ETags.
//!
//! One place owns the algorithm and the hex form, so a checksum written at publish, one
//! checked in the disk cache and an ETag are computed the same way.

use std::io::{self, Read};

use ring::digest::{Context, SHA256};

/// Lowercase hex SHA-256 of `bytes`, the form of the index `cksum` field.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(bytes);
    hasher.finish_hex()
}

/// Lowercase hex SHA-256 of everything `reader` yields.
pub(crate) fn sha256_hex_of(reader: &mut dyn Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finish_hex());
        }
        hasher.update(&buf[..n]);
    }
}

/// A SHA-256 computed piece by piece, for data hashed while it is copied.
pub(crate) struct Sha256(Context);

impl Sha256 {
    pub(crate) fn new() -> Self {
        Self(Context::new(&SHA256))
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest as lowercase hex.
    pub(crate) fn finish_hex(self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let digest = self.0.finish();
        let mut hex = String::with_capacity(2 * digest.as_ref().len());
        for b in digest.as_ref() {
            hex.push(char::from(DIGITS[usize::from(b >> 4)]));
            hex.push(char::from(DIGITS[usize::from(b & 0xf)]));
        }
        hex
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn one_shot_streaming_and_piecewise_agree_with_known_digests() {
        assert_eq!(sha256_hex(b""), EMPTY);
        assert_eq!(sha256_hex(b"abc"), ABC);
        assert_eq!(sha256_hex_of(&mut &b"abc"[..]).unwrap(), ABC);
        let mut hasher = Sha256::new();
        hasher.update(b"a");
        hasher.update(b"bc");
        assert_eq!(hasher.finish_hex(), ABC);
    }
}
