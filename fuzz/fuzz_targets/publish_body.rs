//! Arbitrary upload bodies through `publish::prepare` with the default policy. It must
//! never panic, and what it accepts must make an index line the layers can read back
//! (the local layer relies on that).

#![no_main]

use cargo_overlay_registry::fuzzing::IndexLine;
use cargo_overlay_registry::fuzzing::{PublishPolicy, prepare};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(publish) = prepare(data, &PublishPolicy::default(), "2026-01-01T00:00:00Z") else {
        return;
    };
    let line = serde_json::to_string(&publish.entry).expect("index entries serialize");
    let parsed = IndexLine::parse(&line).expect("a built index entry parses");
    assert_eq!(parsed.version, publish.version);
    assert!(parsed.name.eq_ignore_ascii_case(publish.name.as_str()));
});
