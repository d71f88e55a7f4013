//! Arbitrary index file text through the index parser, and every line it accepts
//! through `with_yanked`, which must keep the line readable with the new flag.

#![no_main]

use cargo_overlay_registry::fuzzing::{IndexLine, parse_index_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for line in parse_index_file(text) {
        for yanked in [true, false] {
            let changed = line.with_yanked(yanked);
            assert_eq!(changed.yanked, yanked);
            let reparsed = IndexLine::parse(&changed.raw).expect("a yanked line parses");
            assert_eq!(reparsed.yanked, yanked);
            assert_eq!(reparsed.name, line.name);
            assert_eq!(reparsed.version, line.version);
        }
    }
});
