//! Arbitrary uncompressed tar archives through both our tar reader (the one
//! `tarball::check` walks) and the `tar` crate, the reader crates.io uses. Where both
//! accept an archive, they must agree on every entry's path and type: what the publish
//! checks call a path is what crates.io calls one. (Where they differ on acceptance is
//! allowed: ours caps extension headers, and neither is asked for more.)

#![no_main]

use cargo_overlay_registry::fuzzing::tar_entries;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(ours) = tar_entries(data) else {
        return;
    };
    // Types compared as the `tar` crate names them: a NUL type byte and `0` are both
    // a regular file.
    let ours: Vec<_> = ours
        .into_iter()
        .map(|(path, kind)| (path, tar::EntryType::new(kind)))
        .collect();
    let mut archive = tar::Archive::new(data);
    let Ok(iter) = archive.entries() else {
        return;
    };
    let mut theirs = Vec::new();
    for entry in iter {
        let Ok(entry) = entry else {
            return;
        };
        let kind = entry.header().entry_type();
        theirs.push((entry.path_bytes().into_owned(), kind));
    }
    assert_eq!(ours, theirs);
});
