//! Arbitrary `.crate` files through `tarball::check`. The first byte chooses whether the
//! rest is taken as the `.crate` itself (fuzzing the gzip layer) or as a tar archive the
//! target gzips first (so the fuzzer reaches the tar and manifest parsers). It must
//! never panic, and an accepted archive is one for `crashy` 0.1.0.

#![no_main]

use std::io::Write;

use cargo_overlay_registry::fuzzing::check_tarball;
use flate2::Compression;
use flate2::write::GzEncoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let gzipped;
    let crate_bytes = if mode % 2 == 0 {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(rest).unwrap();
        gzipped = encoder.finish().unwrap();
        &gzipped[..]
    } else {
        rest
    };
    let _ = check_tarball(crate_bytes, "crashy", "0.1.0", 4 * 1024 * 1024);
});
