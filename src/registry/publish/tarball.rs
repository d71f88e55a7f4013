//! crates.io's checks on the `.crate` file itself, with crates.io's exact texts.
//!
//! crates.io (`crates_io_tarball::process_tarball` and the publish controller) gunzips
//! the upload with a cap on the decompressed size, walks the tar entries and refuses,
//! entry by entry and in this order: a malformed archive; a pax `size` that differs from
//! the header's; a path outside `{name}-{vers}/`, with a `..` component or not UTF-8; any
//! entry that is not a regular file or a directory. It then wants exactly one root
//! `Cargo.toml`, and that manifest's `[package]` name and version must equal the publish
//! metadata's. These are safety checks, so they run on every publish, permissive or not.
//!
//! The tar format is parsed here (512-byte headers, octal or base-256 numbers, padding,
//! end blocks, GNU `L`/`K` long names and pax `x` headers), the way the `tar` crate that
//! crates.io uses reads it, so what this module calls a path is what crates.io calls one.
//! Everything is streamed: the decompressed archive is never held in memory, only the
//! root manifests and the (capped) extension headers are.
//!
//! The reader is written here rather than taken from the `tar` crate for those caps: the
//! crate reads a GNU long name or pax header of any size into memory, where this one
//! stops at [`MAX_EXTENSION_LEN`] (and a root manifest at its own bound). The `tar`
//! crate still has two jobs: the tests build their archives with it, and the fuzz
//! target `tarball_vs_tar` checks that both read the same entries.
//!
//! A root manifest is read with the `toml` crate, as crates.io reads it, so that what
//! crates.io refuses as TOML (a repeated key or table, a bad escape) is refused here with
//! its words. Before that, its size, nesting depth and number of tables are bounded:
//! the `toml` crate's own limits do not keep a hostile manifest inside a worker's stack
//! or within a sane amount of memory.

use std::collections::BTreeMap;
use std::io::{self, Read};

// Inflate is not worth writing by hand: a correct, hardened DEFLATE decoder is far
// larger than everything else in this module, and a subtle bug in it would be a safety
// bug. flate2 with its default backend is pure Rust (miniz_oxide) and adds only a
// handful of small crates.
use flate2::read::GzDecoder;
use serde::Deserialize;
use serde::de::IgnoredAny;
// Nor is TOML: the `toml` crate is what crates.io reads manifests with, so it refuses
// what crates.io refuses, with crates.io's words. `toml_parser` is its parser, used
// directly only to bound a manifest's shape before the tree is built.
use toml_parser::decoder::Encoding;
use toml_parser::parser::EventReceiver;
use toml_parser::{ErrorSink, Span};

use crate::registry::error::{RegistryError, Result};

/// crates.io's default cap on the decompressed size of a `.crate` (512 MiB).
pub(crate) const DEFAULT_MAX_UNPACKED_LEN: u64 = 512 * 1024 * 1024;

/// crates.io's text for anything wrong with the gzip or tar structure, and for an archive
/// larger than the cap once decompressed.
pub(crate) const MALFORMED: &str = "uploaded tarball is malformed or too large when decompressed";

const BLOCK: usize = 512;
/// A cap on GNU long-name and pax header payloads, which are held in memory. The `tar`
/// crate has none, but no real path or pax record comes near it.
const MAX_EXTENSION_LEN: u64 = 1024 * 1024;

/// Checks a `.crate` the way crates.io does before it looks at any other metadata.
///
/// `name` and `vers` are the publish metadata's (`vers` as cargo sent it: semver's
/// `Display` reproduces any version it parsed, so it is also crates.io's
/// `{name}-{version}` root).
pub fn check(crate_bytes: &[u8], name: &str, vers: &str, max_unpacked_len: u64) -> Result<()> {
    let root = format!("{name}-{vers}");
    let source = Budget {
        inner: GzDecoder::new(crate_bytes),
        left: max_unpacked_len,
    };
    let manifest = read_archive(source, root.as_bytes())?;
    // crates.io compares with the metadata exactly as sent, before any other metadata rule.
    if manifest.name != name {
        return Err(RegistryError::invalid(format!(
            "metadata name `{name}` does not match manifest name `{}`",
            manifest.name
        )));
    }
    if manifest.version != vers {
        return Err(RegistryError::invalid(format!(
            "metadata version `{vers}` does not match manifest version `{}`",
            manifest.version
        )));
    }
    Ok(())
}

fn malformed() -> RegistryError {
    RegistryError::invalid(MALFORMED)
}

fn invalid_path(path: &[u8]) -> RegistryError {
    RegistryError::invalid(format!(
        "invalid path found: {}",
        String::from_utf8_lossy(path)
    ))
}

/// The largest root manifest read into memory. Real ones are a few KiB, the largest
/// (crates with thousands of features) a few hundred. The `toml` crate needs some 50
/// times a manifest's size while it parses, and one small, well-compressed upload can
/// carry a manifest of any size.
const MAX_MANIFEST_LEN: u64 = 1024 * 1024;

/// The `[package]` identity of a root `Cargo.toml`.
#[doc(hidden)]
#[derive(Debug)]
pub struct Manifest {
    pub name: String,
    pub version: String,
}

/// Walks every entry, then picks the one root manifest, as `process_tarball` does.
fn read_archive(source: impl Read, root: &[u8]) -> Result<Manifest> {
    let mut archive = Archive { src: source };
    // Root manifests by file name (any casing of `cargo.toml`). Like crates.io's map keyed
    // by path, a second entry with the same name replaces the first.
    let mut manifests: BTreeMap<Vec<u8>, Manifest> = BTreeMap::new();
    while let Some(entry) = archive.next_entry()? {
        if let Some(size) = entry.pax_size() {
            match size {
                Ok(size) if size == entry.header_size => {}
                Ok(_) => {
                    return Err(RegistryError::invalid(
                        "mismatched pax and tar header sizes",
                    ));
                }
                Err(()) => return Err(RegistryError::invalid("malformed pax size")),
            }
        }
        let path = entry.path();
        let components = components(&path);
        let Some((Component::Normal(first), rest)) = components.split_first() else {
            return Err(invalid_path(&path));
        };
        if *first != root || rest.contains(&Component::Parent) {
            return Err(invalid_path(&path));
        }
        if std::str::from_utf8(&path).is_err() {
            return Err(invalid_path(&path));
        }
        if !matches!(entry.kind, b'0' | b'\0' | b'5') {
            return Err(RegistryError::invalid(format!(
                "unexpected tar entry type {} found: {}",
                entry_type_name(entry.kind),
                String::from_utf8_lossy(&path)
            )));
        }
        if let [Component::Normal(file)] = rest
            && file.eq_ignore_ascii_case(b"cargo.toml")
        {
            let text = archive.read_data(entry.size, MAX_MANIFEST_LEN)?;
            let text = String::from_utf8(text).map_err(|_| malformed())?;
            let manifest = parse_manifest(&text).map_err(|detail| {
                RegistryError::invalid(format!(
                    "failed to parse `Cargo.toml` manifest file\n\n{detail}"
                ))
            })?;
            manifests.insert(file.to_vec(), manifest);
        } else {
            archive.skip_data(entry.size)?;
        }
    }
    if manifests.len() > 1 {
        let found: Vec<_> = manifests
            .keys()
            .map(|file| String::from_utf8_lossy(file).into_owned())
            .collect();
        return Err(RegistryError::invalid(format!(
            "uploaded tarball contains more than one `Cargo.toml` manifest file; found `{}`",
            found.join("`, `")
        )));
    }
    let Some((file, manifest)) = manifests.pop_first() else {
        return Err(RegistryError::invalid(
            "uploaded tarball is missing a `Cargo.toml` manifest file",
        ));
    };
    // Any casing is collected, so that a case-insensitive file system cannot hide a
    // second manifest, but only cargo's two spellings are accepted.
    if file != b"Cargo.toml" && file != b"cargo.toml" {
        return Err(RegistryError::invalid(format!(
            "uploaded tarball is missing a `Cargo.toml` manifest file; `{}` was found, but \
             must be named `Cargo.toml` with that exact casing",
            String::from_utf8_lossy(&file)
        )));
    }
    Ok(manifest)
}

/// The entries of an uncompressed tar archive as this reader sees them, each one's path
/// and type byte, up to the archive's end; `None` where it refuses the archive. Only
/// for the fuzz target that compares the reader with the `tar` crate.
#[doc(hidden)]
pub fn entries(tar: &[u8]) -> Option<Vec<(Vec<u8>, u8)>> {
    let mut archive = Archive { src: tar };
    let mut entries = Vec::new();
    while let Some(entry) = archive.next_entry().ok()? {
        entries.push((entry.path(), entry.kind));
        archive.skip_data(entry.size).ok()?;
    }
    Some(entries)
}

/// The names crates.io prints for tar entry types (the `Debug` form of `tar`'s
/// `EntryType`).
fn entry_type_name(kind: u8) -> String {
    let name = match kind {
        b'0' | b'\0' => "Regular",
        b'1' => "Link",
        b'2' => "Symlink",
        b'3' => "Char",
        b'4' => "Block",
        b'5' => "Directory",
        b'6' => "Fifo",
        b'7' => "Continuous",
        b'x' => "XHeader",
        b'g' => "XGlobalHeader",
        b'L' => "GNULongName",
        b'K' => "GNULongLink",
        b'S' => "GNUSparse",
        other => return format!("Other({other})"),
    };
    name.to_string()
}

/// A path component as `std::path::Path` sees one on Unix, which is what crates.io's
/// `strip_prefix` and `..` checks operate on.
#[derive(Debug, PartialEq)]
enum Component<'a> {
    Root,
    Current,
    Parent,
    Normal(&'a [u8]),
}

/// `Path::components`: repeated separators and `.` collapse, except a leading `.`.
fn components(path: &[u8]) -> Vec<Component<'_>> {
    let mut out = Vec::new();
    if path.first() == Some(&b'/') {
        out.push(Component::Root);
    }
    for (i, part) in path.split(|&b| b == b'/').enumerate() {
        match part {
            b"" => {}
            b"." if i == 0 => out.push(Component::Current),
            b"." => {}
            b".." => out.push(Component::Parent),
            normal => out.push(Component::Normal(normal)),
        }
    }
    out
}

/// A reader that fails once `left` decompressed bytes are used up: crates.io's
/// `LimitErrorReader`, which refuses an archive that needs as many bytes as the cap.
struct Budget<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..room])?;
        self.left -= n as u64;
        if self.left == 0 {
            return Err(io::Error::other("maximum limit reached when reading"));
        }
        Ok(n)
    }
}

/// One archive member, with the extension headers that preceded it applied.
struct Entry {
    header: [u8; BLOCK],
    kind: u8,
    /// The size in the header itself.
    header_size: u64,
    /// The size of the data that follows (a pax `size` overrides the header's).
    size: u64,
    long_name: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

impl Entry {
    /// The entry's path as the `tar` crate reports it: a GNU long name, else a pax
    /// `path`, else the header's (ustar `prefix/name`).
    fn path(&self) -> Vec<u8> {
        if let Some(name) = &self.long_name {
            return name.strip_suffix(b"\0").unwrap_or(name).to_vec();
        }
        if let Some(path) = self.pax.as_deref().and_then(|pax| pax_value(pax, b"path")) {
            return path.to_vec();
        }
        header_path(&self.header)
    }

    /// The pax `size` attached to this entry, if any, and whether it is a number.
    fn pax_size(&self) -> Option<Result<u64, ()>> {
        let value = pax_value(self.pax.as_deref()?, b"size")?;
        Some(parse_decimal(value))
    }
}

struct Archive<R> {
    src: R,
}

impl<R: Read> Archive<R> {
    /// The next real entry, consuming GNU long-name/long-link and pax headers on the
    /// way; `None` at the end of the archive (end of input or a zero block).
    fn next_entry(&mut self) -> Result<Option<Entry>> {
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link = false;
        let mut pax: Option<Vec<u8>> = None;
        loop {
            let Some(header) = self.read_header()? else {
                return Ok(None);
            };
            if !checksum_matches(&header)? {
                return Err(malformed());
            }
            let kind = header[156];
            let header_size = parse_numeric(&header[124..136])?;
            let is_extension = matches!(kind, b'L' | b'K' | b'x' | b'g');
            let size = match pax.as_deref().and_then(|p| pax_value(p, b"size")) {
                Some(value) if !is_extension => parse_decimal(value).map_err(|()| malformed())?,
                _ => header_size,
            };
            // Only headers with a ustar or GNU magic count as extensions; anything else
            // is an ordinary (and, as a path, invalid) entry.
            let recognized = is_ustar(&header) || is_gnu(&header);
            let pax_has = |key: &[u8]| pax.as_deref().and_then(|p| pax_value(p, key)).is_some();
            match kind {
                b'L' if recognized => {
                    if long_name.is_some() || pax_has(b"path") {
                        return Err(malformed());
                    }
                    long_name = Some(self.read_data(size, MAX_EXTENSION_LEN)?);
                }
                b'K' if recognized => {
                    if long_link || pax_has(b"linkpath") {
                        return Err(malformed());
                    }
                    self.read_data(size, MAX_EXTENSION_LEN)?;
                    long_link = true;
                }
                b'x' if recognized => {
                    if pax.is_some() {
                        return Err(malformed());
                    }
                    let records = self.read_data(size, MAX_EXTENSION_LEN)?;
                    let keys = pax_records(&records).map_err(|()| malformed())?;
                    let has = |key: &[u8]| keys.iter().any(|(k, _)| *k == key);
                    if (long_name.is_some() && has(b"path")) || (long_link && has(b"linkpath")) {
                        return Err(malformed());
                    }
                    pax = Some(records);
                }
                _ => {
                    if kind == b'S' {
                        self.skip_sparse_extensions(&header)?;
                    }
                    return Ok(Some(Entry {
                        header,
                        kind,
                        header_size,
                        size,
                        long_name,
                        pax,
                    }));
                }
            }
        }
    }

    /// A header block, or `None` at a clean end of input or at a zero block.
    fn read_header(&mut self) -> Result<Option<[u8; BLOCK]>> {
        let mut block = [0u8; BLOCK];
        let mut filled = 0;
        while filled < BLOCK {
            match self.src.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(malformed()),
            }
        }
        match filled {
            0 => Ok(None),
            BLOCK if block.iter().all(|&b| b == 0) => Ok(None),
            BLOCK => Ok(Some(block)),
            _ => Err(malformed()),
        }
    }

    /// Reads an entry's data (at most `max` bytes, else malformed) and its padding.
    fn read_data(&mut self, size: u64, max: u64) -> Result<Vec<u8>> {
        if size > max {
            return Err(malformed());
        }
        let mut data = Vec::new();
        (&mut self.src)
            .take(size)
            .read_to_end(&mut data)
            .map_err(|_| malformed())?;
        if (data.len() as u64) < size {
            return Err(malformed());
        }
        self.skip(padding(size)?)?;
        Ok(data)
    }

    /// Skips an entry's data and padding.
    fn skip_data(&mut self, size: u64) -> Result<()> {
        let padded = size.checked_add(padding(size)?).ok_or_else(malformed)?;
        self.skip(padded)
    }

    fn skip(&mut self, len: u64) -> Result<()> {
        let skipped =
            io::copy(&mut (&mut self.src).take(len), &mut io::sink()).map_err(|_| malformed())?;
        if skipped < len {
            return Err(malformed());
        }
        Ok(())
    }

    /// A GNU sparse header may be followed by extension blocks listing more chunks.
    fn skip_sparse_extensions(&mut self, header: &[u8; BLOCK]) -> Result<()> {
        if !is_gnu(header) {
            return Err(malformed());
        }
        let mut extended = header[482] != 0;
        while extended {
            let block = self.read_header()?.ok_or_else(malformed)?;
            extended = block[504] != 0;
        }
        Ok(())
    }
}

fn padding(size: u64) -> Result<u64> {
    let rounded = size.checked_add(BLOCK as u64 - 1).ok_or_else(malformed)? & !(BLOCK as u64 - 1);
    Ok(rounded - size)
}

fn is_ustar(header: &[u8; BLOCK]) -> bool {
    &header[257..263] == b"ustar\0" && &header[263..265] == b"00"
}

fn is_gnu(header: &[u8; BLOCK]) -> bool {
    &header[257..263] == b"ustar " && &header[263..265] == b" \0"
}

/// A header field up to its first NUL.
fn truncate(field: &[u8]) -> &[u8] {
    field
        .iter()
        .position(|&b| b == 0)
        .map_or(field, |end| &field[..end])
}

/// The header's own path: `name`, or for ustar headers `prefix/name`.
fn header_path(header: &[u8; BLOCK]) -> Vec<u8> {
    let name = &header[0..100];
    let prefix = truncate(&header[345..500]);
    let mut path = Vec::new();
    if is_ustar(header) && !prefix.is_empty() {
        path.extend_from_slice(prefix);
        path.push(b'/');
    }
    path.extend_from_slice(truncate(name));
    path
}

/// The header checksum: the byte sum with the checksum field counted as spaces.
fn checksum_matches(header: &[u8; BLOCK]) -> Result<bool> {
    let expected = parse_octal(&header[148..156])?;
    let sum: u64 = header[..148]
        .iter()
        .chain(&header[156..])
        .map(|&b| u64::from(b))
        .sum::<u64>()
        + 8 * u64::from(b' ');
    Ok(sum == expected)
}

/// A numeric field: octal text, or GNU base-256 when the high bit is set.
fn parse_numeric(field: &[u8]) -> Result<u64> {
    if field[0] & 0x80 == 0 {
        return parse_octal(field);
    }
    let (first, skip) = if field.len() == 8 {
        (u64::from(field[0] ^ 0x80), 1)
    } else {
        (0, field.len() - 8)
    };
    Ok(field[skip..]
        .iter()
        .fold(first, |n, &b| (n << 8) | u64::from(b)))
}

fn parse_octal(field: &[u8]) -> Result<u64> {
    let text = std::str::from_utf8(truncate(field)).map_err(|_| malformed())?;
    u64::from_str_radix(text.trim(), 8).map_err(|_| malformed())
}

fn parse_decimal(value: &[u8]) -> Result<u64, ()> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or(())
}

/// A pax record's key and value.
type PaxRecord<'a> = (&'a [u8], &'a [u8]);

/// pax records, `"<len> <key>=<value>\n"` each, as `(key, value)` pairs; an empty line
/// ends them.
fn pax_records(data: &[u8]) -> Result<Vec<PaxRecord<'_>>, ()> {
    let mut records = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        if line.is_empty() {
            break;
        }
        let space = line.iter().position(|&b| b == b' ').ok_or(())?;
        let len: usize = std::str::from_utf8(&line[..space])
            .ok()
            .and_then(|l| l.parse().ok())
            .ok_or(())?;
        if len != line.len() + 1 {
            return Err(());
        }
        let record = &line[space + 1..];
        let equals = record.iter().position(|&b| b == b'=').ok_or(())?;
        records.push((&record[..equals], &record[equals + 1..]));
    }
    Ok(records)
}

/// The first value of `key` among well-formed pax records.
fn pax_value<'a>(data: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    pax_records(data)
        .ok()?
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// A root `Cargo.toml` as crates.io deserialises it, reduced to what it checks here:
/// `[package]` (or its old name `[project]`) and whether there are `[patch]` tables.
/// Other keys are skipped, as serde skips unknown fields.
#[derive(Deserialize)]
struct Document {
    #[serde(alias = "project")]
    package: Option<Package>,
    patch: Option<BTreeMap<String, IgnoredAny>>,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    version: Option<MaybeInherited>,
}

/// A field that may say `field.workspace = true`, which cargo resolves when it
/// packages, so an upload that still has it was not made by `cargo package`.
#[derive(Deserialize)]
#[serde(untagged)]
enum MaybeInherited {
    Inherited {
        #[allow(dead_code, reason = "only its presence matters")]
        workspace: bool,
    },
    Local(String),
}

/// Reads `[package]`'s `name` and `version` from a manifest, as crates.io does: with
/// the `toml` crate, then crates.io's own checks in crates.io's order. An error is the
/// detail crates.io gives after "failed to parse `Cargo.toml` manifest file".
#[doc(hidden)]
pub fn parse_manifest(text: &str) -> Result<Manifest, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    check_shape(text)?;
    let document: Document = toml::from_str(text).map_err(toml_error)?;
    let package = document
        .package
        .ok_or("missing field `package`".to_string())?;
    if document.patch.is_some_and(|patch| !patch.is_empty()) {
        return Err("crates cannot be published with `[patch]` tables".into());
    }
    match package.version {
        Some(MaybeInherited::Local(version)) => Ok(Manifest {
            name: package.name,
            version,
        }),
        Some(MaybeInherited::Inherited { .. }) => {
            Err("value from workspace hasn't been set".into())
        }
        None => Err("missing field `version`".into()),
    }
}

/// The longest parse error passed on. The `toml` crate's text (crates.io's) quotes the
/// offending line, which an upload can make megabytes long, and it reaches the log.
const MAX_ERROR_LEN: usize = 1024;

/// The `toml` crate's error text, as crates.io gives it, unless it is too long: then
/// its position line and message, without the quoted source, and cut if need be.
fn toml_error(error: toml::de::Error) -> String {
    let full = error.to_string();
    if full.len() <= MAX_ERROR_LEN {
        return full;
    }
    let mut short = match full.lines().next() {
        Some(position) if position.starts_with("TOML parse error at") => {
            format!("{position}\n{}\n", error.message())
        }
        _ => format!("{}\n", error.message()),
    };
    if short.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !short.is_char_boundary(end) {
            end -= 1;
        }
        short.truncate(end);
        short.push_str("…\n");
    }
    short
}

/// How deep a manifest may nest, counting each key part, array and inline table as a
/// level and each table-header part as two (it may pass through an array of tables).
/// Real manifests stay near 10; the bound keeps the worst case well inside a worker's
/// stack even in a debug build (`manifest_nesting_is_bounded`).
const MAX_DEPTH: usize = 128;

/// How many tables a manifest may name: each table-header part, dotted-key part and
/// inline table counts, whether or not it names a table already made. The `toml`
/// crate spends about 1 KiB on a table (a map node), against two bytes of `a.`, so
/// without a bound a 1 MiB manifest takes some 450 MiB. Real manifests name at most a
/// few thousand (`manifest_tables_are_bounded`).
const MAX_TABLES: usize = 20_000;

/// Refuses a manifest nested deeper than [`MAX_DEPTH`] or naming more than
/// [`MAX_TABLES`] tables, before the `toml` crate builds it.
///
/// The `toml` crate bounds arrays and inline tables at 80 deep and keys at 80 parts,
/// but not their product: inline tables inside inline tables, each under an 80-part
/// dotted key, make a tree over 6,000 levels deep, and both serde's skipping of unknown
/// keys (`IgnoredAny`) and the tree's drop recurse once per level, which overflows a
/// 2 MiB stack. The `toml` crate has no setting for either bound, so the shape is
/// measured here, on the events of its own parser (`toml_parser`): nothing here reads
/// TOML syntax. A syntax error is left for the real parse to report.
fn check_shape(text: &str) -> Result<(), String> {
    let tokens = toml_parser::Source::new(text).lex().into_vec();
    let mut shape = Shape::default();
    toml_parser::parser::parse_document(&tokens, &mut shape, &mut ());
    if shape.too_deep {
        return Err(format!(
            "the manifest nests tables, arrays and dotted keys more than {MAX_DEPTH} levels deep"
        ));
    }
    if shape.tables > MAX_TABLES {
        return Err(format!("the manifest names more than {MAX_TABLES} tables"));
    }
    Ok(())
}

/// Follows the nesting depth and counts tables through the parser's events.
#[derive(Default)]
struct Shape {
    /// Levels above the key being read: the table header's and the open containers'.
    base: usize,
    /// Parts of the key being read so far.
    key: usize,
    /// Whether the last key part was followed by a `.`, so the next one extends it.
    dotted: bool,
    /// `base` outside each open array or inline table.
    outer: Vec<usize>,
    too_deep: bool,
    tables: usize,
}

impl Shape {
    fn reach(&mut self, depth: usize) {
        self.too_deep |= depth > MAX_DEPTH;
    }

    fn header_open(&mut self) {
        self.base = 0;
        self.key = 0;
        self.dotted = false;
    }

    fn header_close(&mut self) {
        // The dots counted the tables along the way; this is the header's own.
        self.tables += 1;
        self.base = self.key.saturating_mul(2);
        self.key = 0;
        self.reach(self.base);
    }

    /// An array or inline table opens under the current key. Refusing it makes the
    /// parser skip its contents rather than recurse into them, so the parser's own
    /// recursion is bounded too.
    fn open(&mut self) -> bool {
        self.outer.push(self.base);
        self.base = self.base.saturating_add(self.key).saturating_add(1);
        self.key = 0;
        self.reach(self.base);
        !self.too_deep
    }

    fn close(&mut self) {
        self.base = self.outer.pop().unwrap_or(0);
        self.key = 0;
    }
}

impl EventReceiver for Shape {
    fn std_table_open(&mut self, _: Span, _: &mut dyn ErrorSink) {
        self.header_open();
    }
    fn std_table_close(&mut self, _: Span, _: &mut dyn ErrorSink) {
        self.header_close();
    }
    fn array_table_open(&mut self, _: Span, _: &mut dyn ErrorSink) {
        self.header_open();
    }
    fn array_table_close(&mut self, _: Span, _: &mut dyn ErrorSink) {
        self.header_close();
    }
    fn inline_table_open(&mut self, _: Span, _: &mut dyn ErrorSink) -> bool {
        self.tables += 1;
        self.open()
    }
    fn inline_table_close(&mut self, _: Span, _: &mut dyn ErrorSink) {
        self.close();
    }
    fn array_open(&mut self, _: Span, _: &mut dyn ErrorSink) -> bool {
        self.open()
    }
    fn array_close(&mut self, _: Span, _: &mut dyn ErrorSink) {
        self.close();
    }
    fn simple_key(&mut self, _: Span, _: Option<Encoding>, _: &mut dyn ErrorSink) {
        if !self.dotted {
            self.key = 0;
        }
        self.dotted = false;
        self.key = self.key.saturating_add(1);
        self.reach(self.base.saturating_add(self.key));
    }
    fn key_sep(&mut self, _: Span, _: &mut dyn ErrorSink) {
        self.tables += 1;
        self.dotted = true;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    const MANIFEST: &str = "[package]\nname = \"demo\"\nversion = \"0.1.0\"\n";

    /// A header block written by the `tar` crate (GNU magic with `gnu`), with `path` put
    /// into its name field byte for byte: the crate's own `set_path` refuses `..` and
    /// absolute paths and tidies `./` and `//`, and these tests need hostile paths to
    /// reach the reader as written. For entries the crate writes itself, see
    /// [`Tar::entry`].
    fn header(path: &str, kind: u8, size: usize, gnu: bool) -> tar::Header {
        let mut h = if gnu {
            tar::Header::new_gnu()
        } else {
            tar::Header::new_ustar()
        };
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(size as u64);
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_cksum();
        h
    }

    /// An uncompressed tar being built by the `tar` crate; the end blocks come with
    /// [`Tar::gz`] or [`Tar::finished`].
    struct Tar(tar::Builder<Vec<u8>>);

    impl Default for Tar {
        fn default() -> Self {
            Tar(tar::Builder::new(Vec::new()))
        }
    }

    impl Tar {
        /// `header` as it is, then `data` and its padding: for archives the `tar` crate
        /// would not write through its path API (see [`header`]).
        fn raw(mut self, header: tar::Header, data: &[u8]) -> Self {
            self.0.append(&header, data).unwrap();
            self
        }

        /// An entry of type `kind`, written by the `tar` crate.
        fn entry(self, path: &str, kind: u8, data: &[u8]) -> Self {
            self.append(tar::Header::new_ustar(), path, kind, data)
        }

        /// A regular file with a GNU header: a path too long for the header goes into a
        /// GNU long-name entry, as cargo writes it.
        fn gnu_file(self, path: &str, data: &[u8]) -> Self {
            self.append(tar::Header::new_gnu(), path, b'0', data)
        }

        fn append(mut self, mut header: tar::Header, path: &str, kind: u8, data: &[u8]) -> Self {
            header.set_mode(0o644);
            header.set_size(data.len() as u64);
            header.set_entry_type(tar::EntryType::new(kind));
            self.0.append_data(&mut header, path, data).unwrap();
            self
        }

        fn file(self, path: &str, data: &str) -> Self {
            self.entry(path, b'0', data.as_bytes())
        }

        /// The archive so far, without its end blocks.
        fn unfinished(&self) -> Vec<u8> {
            self.0.get_ref().clone()
        }

        /// The archive with its two end blocks.
        fn finished(self) -> Vec<u8> {
            self.0.into_inner().unwrap()
        }

        fn gz(self) -> Vec<u8> {
            gzip(&self.finished())
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// A minimal `.crate` for `name`@`vers`, for other modules' tests.
    pub(crate) fn demo_crate(name: &str, vers: &str) -> Vec<u8> {
        let root = format!("{name}-{vers}");
        Tar::default()
            .file(
                &format!("{root}/Cargo.toml"),
                &format!("[package]\nname = \"{name}\"\nversion = \"{vers}\"\n"),
            )
            .file(&format!("{root}/src/lib.rs"), "")
            .gz()
    }

    /// A `.crate` whose `{name}-{vers}/link` is a symlink, for other modules' tests.
    pub(crate) fn crate_with_symlink(name: &str, vers: &str) -> Vec<u8> {
        let root = format!("{name}-{vers}");
        Tar::default()
            .file(
                &format!("{root}/Cargo.toml"),
                &format!("[package]\nname = \"{name}\"\nversion = \"{vers}\"\n"),
            )
            .entry(&format!("{root}/link"), b'2', b"")
            .gz()
    }

    fn good() -> Tar {
        Tar::default()
            .entry("demo-0.1.0/", b'5', b"")
            .file("demo-0.1.0/Cargo.toml", MANIFEST)
            .file("demo-0.1.0/src/lib.rs", "pub fn f() {}\n")
    }

    fn run(crate_bytes: &[u8]) -> Result<()> {
        check(crate_bytes, "demo", "0.1.0", DEFAULT_MAX_UNPACKED_LEN)
    }

    fn refusal(crate_bytes: &[u8]) -> String {
        match run(crate_bytes) {
            Err(RegistryError::Invalid(detail)) => detail,
            other => panic!("expected an Invalid error, got {other:?}"),
        }
    }

    #[test]
    fn a_good_tarball_passes() {
        run(&good().gz()).unwrap();
    }

    #[test]
    fn paths_must_be_under_the_package_root() {
        let outside = good().file("other-0.1.0/evil.rs", "").gz();
        assert_eq!(refusal(&outside), "invalid path found: other-0.1.0/evil.rs");
        let sibling = good().file("demo-0.1.0x/a", "").gz();
        assert_eq!(refusal(&sibling), "invalid path found: demo-0.1.0x/a");
        let as_written = |path: &str| good().raw(header(path, b'0', 0, false), b"").gz();
        let absolute = as_written("/demo-0.1.0/a");
        assert_eq!(refusal(&absolute), "invalid path found: /demo-0.1.0/a");
        let dotted = as_written("./demo-0.1.0/a");
        assert_eq!(refusal(&dotted), "invalid path found: ./demo-0.1.0/a");
        // `Path` collapses `//` and inner `.`, so these are inside.
        run(&as_written("demo-0.1.0//src/./x.rs")).unwrap();
    }

    #[test]
    fn parent_components_are_refused() {
        let as_written = |path: &str| good().raw(header(path, b'0', 0, false), b"").gz();
        let escape = as_written("demo-0.1.0/../outside");
        assert_eq!(
            refusal(&escape),
            "invalid path found: demo-0.1.0/../outside"
        );
        let deep = as_written("demo-0.1.0/src/../../x");
        assert_eq!(refusal(&deep), "invalid path found: demo-0.1.0/src/../../x");
    }

    #[test]
    fn non_utf8_paths_are_refused() {
        let mut h = header("demo-0.1.0/x", b'0', 0, false);
        h.as_mut_bytes()[12] = 0xff;
        h.set_cksum();
        let tarball = good().raw(h, b"").gz();
        assert_eq!(
            refusal(&tarball),
            "invalid path found: demo-0.1.0/x\u{fffd}"
        );
    }

    #[test]
    fn symlinks_are_refused() {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        let mut tar = good();
        tar.0
            .append_link(&mut h, "demo-0.1.0/link", "/etc/passwd")
            .unwrap();
        let tarball = tar.gz();
        assert_eq!(
            refusal(&tarball),
            "unexpected tar entry type Symlink found: demo-0.1.0/link"
        );
    }

    #[test]
    fn hard_links_and_other_types_are_refused() {
        for (kind, name) in [
            (b'1', "Link"),
            (b'3', "Char"),
            (b'4', "Block"),
            (b'6', "Fifo"),
            (b'7', "Continuous"),
            (b'Z', "Other(90)"),
        ] {
            let tarball = good().entry("demo-0.1.0/bar", kind, b"").gz();
            assert_eq!(
                refusal(&tarball),
                format!("unexpected tar entry type {name} found: demo-0.1.0/bar")
            );
        }
    }

    #[test]
    fn path_checks_come_before_type_checks() {
        let tarball = good().entry("elsewhere/link", b'2', b"").gz();
        assert_eq!(refusal(&tarball), "invalid path found: elsewhere/link");
    }

    #[test]
    fn a_root_manifest_is_required() {
        let none = Tar::default().file("demo-0.1.0/src/lib.rs", "").gz();
        let text = "uploaded tarball is missing a `Cargo.toml` manifest file";
        assert_eq!(refusal(&none), text);
        let nested = Tar::default()
            .file("demo-0.1.0/sub/Cargo.toml", MANIFEST)
            .gz();
        assert_eq!(refusal(&nested), text);
        let shouting = Tar::default().file("demo-0.1.0/CARGO.TOML", MANIFEST).gz();
        assert_eq!(
            refusal(&shouting),
            "uploaded tarball is missing a `Cargo.toml` manifest file; `CARGO.TOML` was \
             found, but must be named `Cargo.toml` with that exact casing"
        );
        let two = good().file("demo-0.1.0/cargo.toml", MANIFEST).gz();
        assert_eq!(
            refusal(&two),
            "uploaded tarball contains more than one `Cargo.toml` manifest file; found \
             `Cargo.toml`, `cargo.toml`"
        );
        run(&Tar::default().file("demo-0.1.0/cargo.toml", MANIFEST).gz()).unwrap();
    }

    #[test]
    fn manifest_name_must_match() {
        let other = Tar::default()
            .file(
                "demo-0.1.0/Cargo.toml",
                "[package]\nname = \"other\"\nversion = \"0.1.0\"\n",
            )
            .gz();
        assert_eq!(
            refusal(&other),
            "metadata name `demo` does not match manifest name `other`"
        );
    }

    #[test]
    fn manifest_version_must_match() {
        let other = Tar::default()
            .file(
                "demo-0.1.0/Cargo.toml",
                "[package]\nname = \"demo\"\nversion = \"0.2.0\"\n",
            )
            .gz();
        assert_eq!(
            refusal(&other),
            "metadata version `0.1.0` does not match manifest version `0.2.0`"
        );
    }

    #[test]
    fn entry_checks_come_before_manifest_checks() {
        let tarball = Tar::default()
            .file(
                "demo-0.1.0/Cargo.toml",
                "[package]\nname = \"other\"\nversion = \"0.1.0\"\n",
            )
            .entry("demo-0.1.0/link", b'2', b"")
            .gz();
        assert_eq!(
            refusal(&tarball),
            "unexpected tar entry type Symlink found: demo-0.1.0/link"
        );
    }

    #[test]
    fn truncated_or_bad_gzip_is_malformed() {
        let whole = good().gz();
        assert_eq!(refusal(&whole[..whole.len() / 2]), MALFORMED);
        assert_eq!(refusal(&whole[..5]), MALFORMED);
        assert_eq!(refusal(b"not gzip at all"), MALFORMED);
        let mut corrupt = whole.clone();
        corrupt[20] ^= 0xff;
        assert!(run(&corrupt).is_err());
    }

    #[test]
    fn truncated_tar_inside_good_gzip_is_malformed() {
        let mut tar = good().unfinished();
        tar.extend_from_slice(header("demo-0.1.0/big", b'0', 4096, false).as_bytes());
        tar.extend_from_slice(&[b'x'; 100]);
        assert_eq!(refusal(&gzip(&tar)), MALFORMED);
        // A partial header block.
        let mut tar = good().unfinished();
        tar.extend_from_slice(&[1; 100]);
        assert_eq!(refusal(&gzip(&tar)), MALFORMED);
    }

    #[test]
    fn bad_checksums_are_malformed() {
        let mut h = header("demo-0.1.0/x", b'0', 0, false);
        h.as_mut_bytes()[0] ^= 1;
        assert_eq!(refusal(&good().raw(h, b"").gz()), MALFORMED);
    }

    #[test]
    fn gzip_bombs_hit_the_cap() {
        let bomb = good().file("demo-0.1.0/zeros", &"\0".repeat(1 << 20)).gz();
        assert!(bomb.len() < 4096, "{}", bomb.len());
        let small = |max| check(&bomb, "demo", "0.1.0", max);
        match small(64 * 1024) {
            Err(RegistryError::Invalid(detail)) => assert_eq!(detail, MALFORMED),
            other => panic!("{other:?}"),
        }
        small(4 << 20).unwrap();
        // The cap is crates.io's: an archive needing exactly the cap is refused.
        let plain = good();
        let needed = plain.unfinished().len() as u64 + BLOCK as u64;
        let tarball = plain.gz();
        assert!(check(&tarball, "demo", "0.1.0", needed).is_err());
        check(&tarball, "demo", "0.1.0", needed + 1).unwrap();
    }

    #[test]
    fn gnu_long_names_are_followed() {
        let long = format!("demo-0.1.0/{}/lib.rs", "a".repeat(150));
        let tarball = good().gnu_file(&long, b"abc").gz();
        run(&tarball).unwrap();
        // The long name is what gets checked, not the header's truncated one ...
        let evil = format!("elsewhere/{}", "b".repeat(150));
        let tarball = good().gnu_file(&evil, b"").gz();
        assert_eq!(refusal(&tarball), format!("invalid path found: {evil}"));
        // ... even where the header names an innocent path (by hand: the `tar` crate
        // writes the long name's start into the header).
        let tarball = good()
            .raw(
                header("././@LongLink", b'L', evil.len(), true),
                evil.as_bytes(),
            )
            .raw(header("demo-0.1.0/innocent", b'0', 0, true), b"")
            .gz();
        assert_eq!(refusal(&tarball), format!("invalid path found: {evil}"));
        // Two long names for one member (by hand: malformed).
        let tarball = good()
            .raw(header("././@LongLink", b'L', 3, true), b"a\0\0")
            .raw(header("././@LongLink", b'L', 3, true), b"b\0\0")
            .raw(header("demo-0.1.0/x", b'0', 0, true), b"")
            .gz();
        assert_eq!(refusal(&tarball), MALFORMED);
    }

    /// pax records; each starts with its own length, digits included. (The `tar` crate
    /// reads pax headers but this version writes none, so they are built by hand.)
    fn pax(records: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (key, value) in records {
            let body = format!(" {key}={value}\n");
            let mut len = body.len() + 1;
            while len != body.len() + len.to_string().len() {
                len = body.len() + len.to_string().len();
            }
            out.extend(format!("{len}{body}").into_bytes());
        }
        out
    }

    #[test]
    fn pax_paths_are_followed() {
        let records = pax(&[("path", "demo-0.1.0/from-pax.rs")]);
        let tarball = good()
            .raw(header("PaxHeaders/x", b'x', records.len(), false), &records)
            .raw(header("demo-0.1.0/short", b'0', 0, false), b"")
            .gz();
        run(&tarball).unwrap();
        let records = pax(&[("path", "../../etc/passwd")]);
        let tarball = good()
            .raw(header("PaxHeaders/x", b'x', records.len(), false), &records)
            .raw(header("demo-0.1.0/innocent", b'0', 0, false), b"")
            .gz();
        assert_eq!(refusal(&tarball), "invalid path found: ../../etc/passwd");
    }

    #[test]
    fn pax_sizes_must_agree_with_the_header() {
        let records = pax(&[("size", "3")]);
        let tarball = good()
            .raw(header("PaxHeaders/x", b'x', records.len(), false), &records)
            .raw(header("demo-0.1.0/x", b'0', 5, false), b"abcde")
            .gz();
        assert_eq!(refusal(&tarball), "mismatched pax and tar header sizes");
        let records = b"9 size=x\n";
        let tarball = good()
            .raw(header("PaxHeaders/x", b'x', records.len(), false), records)
            .raw(header("demo-0.1.0/x", b'0', 0, false), b"")
            .gz();
        assert_eq!(refusal(&tarball), MALFORMED);
        let records = b"99 path=x\n";
        let tarball = good()
            .raw(header("PaxHeaders/x", b'x', records.len(), false), records)
            .raw(header("demo-0.1.0/x", b'0', 0, false), b"")
            .gz();
        assert_eq!(refusal(&tarball), MALFORMED);
    }

    #[test]
    fn pax_records_are_measured_correctly() {
        // The helper above must produce what real writers produce.
        assert_eq!(pax(&[("path", "a")]), b"9 path=a\n");
        let value = "x".repeat(90);
        let records = pax(&[("path", &value)]);
        assert_eq!(
            pax_records(&records).unwrap(),
            [(&b"path"[..], value.as_bytes())]
        );
    }

    #[test]
    fn extension_headers_without_a_magic_are_plain_entries() {
        let mut h = header("././@LongLink", b'L', 0, false);
        h.as_mut_bytes()[257..265].fill(0);
        h.set_cksum();
        assert_eq!(
            refusal(&good().raw(h, b"").gz()),
            "invalid path found: ././@LongLink"
        );
        let global = good().entry("demo-0.1.0/g", b'g', b"").gz();
        assert_eq!(
            refusal(&global),
            "unexpected tar entry type XGlobalHeader found: demo-0.1.0/g"
        );
    }

    #[test]
    fn base256_sizes_are_read() {
        // By hand: the `tar` crate writes base-256 only for sizes beyond 8 GiB.
        let mut h = header("demo-0.1.0/x", b'0', 0, true);
        let bytes = h.as_mut_bytes();
        bytes[124..136].fill(0);
        bytes[124] = 0x80;
        bytes[135] = 3;
        h.set_cksum();
        run(&good().raw(h, b"abc").gz()).unwrap();
    }

    #[test]
    fn ustar_prefixes_are_part_of_the_path() {
        let with_prefix = |prefix: &str| {
            let mut h = header("lib.rs", b'0', 0, false);
            let ustar = h.as_ustar_mut().unwrap();
            ustar.prefix[..prefix.len()].copy_from_slice(prefix.as_bytes());
            h.set_cksum();
            h
        };
        run(&good().raw(with_prefix("demo-0.1.0/src"), b"").gz()).unwrap();
        let h = with_prefix("outside");
        assert_eq!(
            refusal(&good().raw(h, b"").gz()),
            "invalid path found: outside/lib.rs"
        );
    }

    #[test]
    fn entries_lists_paths_and_types_as_the_fuzz_target_compares_them() {
        let long = format!("demo-0.1.0/{}", "l".repeat(120));
        let tar = good().gnu_file(&long, b"x").finished();
        let listed = entries(&tar).unwrap();
        let expected: Vec<(Vec<u8>, u8)> = [
            ("demo-0.1.0/", b'5'),
            ("demo-0.1.0/Cargo.toml", b'0'),
            ("demo-0.1.0/src/lib.rs", b'0'),
            (long.as_str(), b'0'),
        ]
        .into_iter()
        .map(|(path, kind)| (path.as_bytes().to_vec(), kind))
        .collect();
        assert_eq!(listed, expected);
        assert_eq!(entries(&tar[..700]), None);
    }

    #[test]
    fn the_archive_ends_at_a_zero_block() {
        let mut tar = good().unfinished();
        tar.extend_from_slice(&[0; BLOCK]);
        // What follows the end is not looked at, as with crates.io.
        tar.extend_from_slice(header("elsewhere/x", b'2', 0, false).as_bytes());
        run(&gzip(&tar)).unwrap();
        // No end blocks at all is fine too.
        run(&gzip(&good().unfinished())).unwrap();
    }

    fn manifest(text: &str) -> Result<Manifest, String> {
        parse_manifest(text)
    }

    #[test]
    fn manifests_as_cargo_normalizes_them() {
        let text = r#"# THIS FILE IS AUTOMATICALLY GENERATED BY CARGO
#
# When uploading crates to the registry Cargo will automatically
# "normalize" Cargo.toml files for maximal compatibility

[package]
edition = "2021"
rust-version = "1.70"
name = "demo-crate"
version = "1.2.3-beta.1+build.5"
authors = [
    "A <a@example.com>",
    "B",
]
build = "build.rs"
description = """
A multi-line description.
name = "not-the-name"
[lib]
"""
readme = false
license = 'MIT OR Apache-2.0'
metadata.docs.rs = { all-features = true, targets = ["x86_64-unknown-linux-gnu"] }

[lib]
name = "demo_lib"
path = "src/lib.rs"

[dependencies.serde]
version = "1.0"
features = ["derive"]

[target.'cfg(unix)'.dependencies]
libc = "0.2"
"#;
        let parsed = manifest(text).unwrap();
        assert_eq!(parsed.name, "demo-crate");
        assert_eq!(parsed.version, "1.2.3-beta.1+build.5");
    }

    #[test]
    fn manifest_strings_and_keys() {
        let parsed =
            manifest("[ package ]\n\"name\" = \"d\\u0065mo\" # comment\n'version' = '0.1.0'\r\n")
                .unwrap();
        assert_eq!(
            (parsed.name.as_str(), parsed.version.as_str()),
            ("demo", "0.1.0")
        );
        let dotted = manifest("package.name = \"demo\"\npackage.version = \"0.1.0\"\n").unwrap();
        assert_eq!(dotted.name, "demo");
        let project = manifest("[project]\nname = \"demo\"\nversion = \"0.1.0\"\n").unwrap();
        assert_eq!(project.version, "0.1.0");
    }

    #[test]
    fn manifest_errors() {
        assert_eq!(manifest("").unwrap_err(), "missing field `package`");
        // The `toml` crate's text for serde's error, as crates.io gives it.
        assert_eq!(
            manifest("[package]\nversion = \"1.0.0\"").unwrap_err(),
            "TOML parse error at line 1, column 1\n  |\n1 | [package]\n  | ^^^^^^^^^\n\
             missing field `name`\n"
        );
        assert_eq!(
            manifest("[package]\nname = \"a\"\n").unwrap_err(),
            "missing field `version`"
        );
        assert_eq!(
            manifest("[package]\nname = \"a\"\nversion.workspace = true\n").unwrap_err(),
            "value from workspace hasn't been set"
        );
        assert_eq!(
            manifest(
                "[package]\nname = \"a\"\nversion = \"1.0.0\"\n[patch.crates-io]\nx = \"1\"\n"
            )
            .unwrap_err(),
            "crates cannot be published with `[patch]` tables"
        );
        assert_eq!(
            manifest("[package]\nname = \"a\nversion = \"1\"\n").unwrap_err(),
            "TOML parse error at line 2, column 10\n  |\n2 | name = \"a\n  |          ^\n\
             invalid basic string, expected `\"`\n"
        );
        let tarball = Tar::default()
            .file("demo-0.1.0/Cargo.toml", "[package]\nname = \"demo\"\n")
            .gz();
        assert_eq!(
            refusal(&tarball),
            "failed to parse `Cargo.toml` manifest file\n\nmissing field `version`"
        );
    }

    /// Parses on a thread with the stack a server worker gets (std's default, 2 MiB).
    fn manifest_on_worker_stack(text: String) -> Result<Manifest, String> {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || manifest(&text))
            .unwrap()
            .join()
            .expect("parsing must not overflow a worker's stack")
    }

    #[test]
    fn manifest_nesting_is_bounded() {
        let deep = 200_000;
        let key = |parts: usize| vec!["a"; parts].join(".");
        let too_deep =
            "the manifest nests tables, arrays and dotted keys more than 128 levels deep";
        // The deepest tree the `toml` crate alone would build: a long table header, then
        // inline tables as deep as it allows, each under a dotted key as long as it
        // allows; over 6,000 levels, which overflowed a worker's stack.
        let mut product = format!("{MANIFEST}[{}]\n{} = ", key(79), key(79));
        product.push_str(&format!("{{ {} = ", key(79)).repeat(79));
        product.push_str(&format!("1{}\n", " }".repeat(79)));
        // Not even nesting: refused by the parser before any depth is reached.
        for bomb in [format!("x = {}", "{".repeat(deep)), "[[a]]\n".repeat(deep)] {
            let error = manifest_on_worker_stack(bomb).unwrap_err();
            assert!(error.len() <= MAX_ERROR_LEN + 4, "{}", error.len());
        }
        for bomb in [
            format!("x = {}", "[".repeat(deep)),
            format!("x = {}1{}", "[".repeat(deep), "]".repeat(deep)),
            format!("x = {}", "{a = ".repeat(deep)),
            format!("x = {}", "[{a = ".repeat(deep)),
            format!("{MANIFEST}[patch.x]\ny = {}", "{a = [".repeat(deep)),
            format!("{} = 1", key(deep)),
            format!("[{}]", key(deep)),
            format!("[[{}]]", key(deep)),
            (1..=200).map(|n| format!("[[{}]]\n", key(n))).collect(),
            format!(
                "[package]\nname = \"demo\"\nversion = {}",
                "{a = ".repeat(deep)
            ),
            product,
        ] {
            let start: String = bomb.chars().take(30).collect();
            match manifest_on_worker_stack(bomb) {
                Err(e) if e == too_deep => {}
                other => panic!("{start:?}: {:?}", other.map(|m| m.name)),
            }
        }
        // What the bound leaves is still parsed (and within the `toml` crate's limits).
        let arrays = format!("{MANIFEST}x = {}1{}\n", "[".repeat(80), "]".repeat(80));
        manifest_on_worker_stack(arrays).unwrap();
        let keys = format!("{MANIFEST}[{}]\n{} = 1\n", key(30), key(60));
        manifest_on_worker_stack(keys).unwrap();
        let tables = format!(
            "{MANIFEST}x = {}1{}\n",
            "{ a = ".repeat(60),
            " }".repeat(60)
        );
        manifest_on_worker_stack(tables).unwrap();
    }

    #[test]
    fn manifest_tables_are_bounded() {
        let many = |lines: usize, line: &dyn Fn(usize) -> String| {
            let mut text = MANIFEST.to_string();
            text.extend((0..lines).map(line));
            text
        };
        let too_many = "the manifest names more than 20000 tables";
        // About 400 MiB in the `toml` crate without the bound.
        let dotted = many(25_000, &|i| {
            format!("k{i}.a.b.c.d.e.f.g.h.i.j.k.l.m.n = 1\n")
        });
        assert!(dotted.len() < MAX_MANIFEST_LEN as usize);
        assert_eq!(manifest(&dotted).unwrap_err(), too_many);
        let headers = many(20_001, &|_| "[[bin]]\n".into());
        assert_eq!(manifest(&headers).unwrap_err(), too_many);
        let inline = many(20_001, &|i| format!("d{i} = {{}}\n"));
        assert_eq!(manifest(&inline).unwrap_err(), too_many);
        // A crate with crates.io's most dependencies (500), each a target-specific
        // table with an inline one, and 1,000 binaries is far inside it.
        let mut big = many(500, &|i| {
            format!("[target.'cfg(unix)'.dependencies.d{i}]\nversion = \"1\"\nx = {{ a = 1 }}\n")
        });
        big.push_str(&"[[bin]]\nname = \"b\"\n".repeat(1000));
        manifest(&big).unwrap();
    }

    #[test]
    fn repeated_keys_and_tables_are_refused() {
        let key = manifest("[package]\nname = \"demo\"\nname = \"evil\"\nversion = \"0.1.0\"\n")
            .unwrap_err();
        assert!(key.contains("duplicate key"), "{key}");
        let table = manifest(&format!("{MANIFEST}[package]\nname = \"evil\"\n")).unwrap_err();
        assert!(table.contains("duplicate key"), "{table}");
        let both = manifest(&format!("{MANIFEST}[project]\nname = \"evil\"\n")).unwrap_err();
        assert!(both.contains("duplicate field `package`"), "{both}");
    }

    #[test]
    fn bad_unicode_escapes_are_refused() {
        for escape in ["\\u+041", "\\u-041", "\\u 041", "\\U+0000041", "\\uD800"] {
            let text = format!("[package]\nname = \"demo{escape}\"\nversion = \"0.1.0\"\n");
            let error = manifest(&text).unwrap_err();
            assert!(error.starts_with("TOML parse error"), "{escape}: {error}");
        }
    }

    #[test]
    fn an_inline_package_table_is_read() {
        let parsed = manifest("package = { name = \"demo\", version = \"0.1.0\" }\n").unwrap();
        assert_eq!(
            (parsed.name.as_str(), parsed.version.as_str()),
            ("demo", "0.1.0")
        );
        let tarball = Tar::default()
            .file(
                "demo-0.1.0/Cargo.toml",
                "package = { name = \"demo\", version = \"0.1.0\" }\n",
            )
            .gz();
        run(&tarball).unwrap();
    }

    #[test]
    fn components_follow_std_path() {
        use std::path::{Component as Std, Path};
        for path in [
            "a/b", "/a//b/", "./a/./b", "a/../b", ".", "..", "a/.", "//", "a/.../b", "",
        ] {
            let ours: Vec<String> = components(path.as_bytes())
                .iter()
                .map(|c| match c {
                    Component::Root => "/".into(),
                    Component::Current => ".".into(),
                    Component::Parent => "..".into(),
                    Component::Normal(n) => String::from_utf8_lossy(n).into_owned(),
                })
                .collect();
            let std: Vec<String> = Path::new(path)
                .components()
                .map(|c| match c {
                    Std::RootDir => "/".into(),
                    Std::CurDir => ".".into(),
                    Std::ParentDir => "..".into(),
                    Std::Normal(n) => n.to_string_lossy().into_owned(),
                    Std::Prefix(_) => unreachable!(),
                })
                .collect();
            assert_eq!(ours, std, "{path:?}");
        }
    }
}
