//! Arbitrary index files, as an upstream could send them, through the prefetch plan:
//! learned under a few names in turn, so that what one asks of another is spread, with
//! a project member read from the input too. Nothing may panic or loop.

#![no_main]

use std::sync::Arc;

use cargo_overlay_registry::fuzzing::parse_index_file;
use cargo_overlay_registry::fuzzing::{Plan, Release};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut plan = Plan::new(64);
    // What the index cache would hold: the plan keeps only weak references.
    let mut held = Vec::new();
    let mut files = text.split("\n\n");
    if let Some(member) = files.next()
        && let Ok(member) = serde_json::from_str::<Release>(member)
    {
        plan.expect_members(&[member]);
    }
    for (i, file) in files.enumerate() {
        let lines = parse_index_file(file);
        // Learn each file under the name its lines give, and under a fixed one, so
        // names that dependencies mention are learned too.
        let named = lines.first().map(|l| l.name.to_ascii_lowercase());
        let lines = Arc::new(lines);
        held.push(Arc::clone(&lines));
        for name in named.into_iter().chain([["a", "b", "c"][i % 3].to_string()]) {
            let wanted = plan.learn(&name, Arc::clone(&lines));
            assert!(wanted.len() <= 100_000);
        }
    }
});
