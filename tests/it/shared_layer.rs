//! Several overlays sharing one local layer directory, as instances on different
//! machines sharing a network filesystem do. `CARGO_OVERLAY_REGISTRY_HOST_ID` (a test
//! hook) gives each one the identity of a different machine.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, SystemTime};

use crate::harness::{Overlay, crate_file, index_lines, local_layer, scratch, settle, upload};

const HOST_ID: &str = "CARGO_OVERLAY_REGISTRY_HOST_ID";
const HERE: &str = "aaaa1111aaaa";
const THERE: &str = "bbbb2222bbbb";

fn instance(layer: &Path, host: &str) -> Overlay {
    Overlay::start_env(&["-r", &local_layer(layer)], &[(HOST_ID, host)])
}

/// The pid of a process that has exited.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn plant(path: &Path, age: Duration) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = fs::File::create(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

#[test]
fn concurrent_publishes_through_two_instances_lose_nothing() {
    let work = scratch("shared-publish");
    let layer = work.join("layer");
    let (a, b) = (instance(&layer, HERE), instance(&layer, THERE));
    let names: Vec<String> = (0..20).map(|i| format!("shared-{i:02}")).collect();
    thread::scope(|scope| {
        for (i, name) in names.iter().enumerate() {
            let overlay = if i % 2 == 0 { &a } else { &b };
            scope.spawn(move || {
                let path = format!("{name}-0.1.0/Cargo.toml");
                let manifest = crate::harness::manifest(name, "0.1.0");
                let body = upload(name, "0.1.0", &crate_file(&[(&path, b'0', &manifest, "")]));
                let response = overlay.publish_raw(&body);
                assert_eq!(response.status, 200, "{name}: {}", response.text());
            });
        }
    });
    for name in &names {
        for overlay in [&a, &b] {
            let lines = index_lines(&overlay.get(&format!("/sh/ar/{name}")).text());
            assert_eq!(lines.len(), 1, "{name}");
            assert_eq!(lines[0]["vers"], "0.1.0");
            let download = overlay.get(&format!("/api/v1/crates/{name}/0.1.0/download"));
            assert_eq!(download.status, 200, "{name}");
            assert_eq!(
                download.body,
                fs::read(layer.join(format!("{name}-0.1.0.crate"))).unwrap()
            );
        }
    }
    // No write left a temporary file behind.
    let leftovers: Vec<_> = fs::read_dir(&layer)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_restart_never_removes_another_hosts_temp_files() {
    let work = scratch("shared-restart");
    let layer = work.join("layer");
    let dead = dead_pid();
    let fresh = Duration::ZERO;
    // Another machine's writes in progress: its pid means nothing here.
    let theirs = [
        layer.join(format!(".tmp-{THERE}.{dead}-0-theirs-0.1.0.crate")),
        layer.join(format!("index/th/ei/.tmp-{THERE}.{dead}-1-theirs")),
        layer.join(format!("meta/.tmp-{THERE}.{dead}-2-theirs-0.1.0.json")),
    ];
    // Left by a crashed writer on this machine, and by one elsewhere an hour ago.
    let mine = layer.join(format!(".tmp-{HERE}.{dead}-3-mine-0.1.0.crate"));
    let abandoned = layer.join(format!("index/ab/an/.tmp-{THERE}.{dead}-4-abandoned"));
    for path in &theirs {
        plant(path, fresh);
    }
    plant(&mine, fresh);
    plant(&abandoned, Duration::from_secs(2 * 3600));

    let overlay = instance(&layer, HERE);
    overlay.wait_for_sweep();
    for path in &theirs {
        assert!(path.exists(), "{} was removed", path.display());
    }
    assert!(!mine.exists(), "{} was kept", mine.display());
    assert!(!abandoned.exists(), "{} was kept", abandoned.display());
    // A restart keeps them too; the other host removes its own.
    overlay.stop();
    let overlay = instance(&layer, HERE);
    overlay.wait_for_sweep();
    for path in &theirs {
        assert!(path.exists(), "{} was removed", path.display());
    }
    overlay.stop();
    let other = instance(&layer, THERE);
    other.wait_for_sweep();
    for path in &theirs {
        assert!(!path.exists(), "{} was kept", path.display());
    }
    other.stop();
}

fn versions(overlay: &Overlay, path: &str) -> Vec<String> {
    let response = overlay.get(path);
    assert_eq!(response.status, 200, "{}", response.text());
    index_lines(&response.text())
        .iter()
        .map(|line| line["vers"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_cached_index_file_shows_the_next_change_another_process_makes() {
    let work = scratch("shared-cached-get");
    let layer = work.join("layer");
    let (a, b) = (instance(&layer, HERE), instance(&layer, THERE));
    let publish = |overlay: &Overlay, version: &str| {
        let path = format!("watched-{version}/Cargo.toml");
        let manifest = crate::harness::manifest("watched", version);
        let body = upload(
            "watched",
            version,
            &crate_file(&[(&path, b'0', &manifest, "")]),
        );
        let response = overlay.publish_raw(&body);
        assert_eq!(response.status, 200, "{}", response.text());
    };
    let index = layer.join("index/wa/tc/watched");
    let path = "/wa/tc/watched";

    publish(&b, "1.0.0");
    settle(&index);
    for _ in 0..3 {
        assert_eq!(versions(&a, path), ["1.0.0"]);
    }
    // A publish through the other instance renames a new file into place.
    publish(&b, "1.1.0");
    assert_eq!(versions(&a, path), ["1.0.0", "1.1.0"]);

    // An edit in place keeps the file; its size tells, even with its time set back to
    // what it was when the answer was kept.
    settle(&index);
    assert_eq!(versions(&a, path), ["1.0.0", "1.1.0"]);
    let kept = fs::metadata(&index).unwrap().modified().unwrap();
    let text = fs::read_to_string(&index).unwrap();
    let copied = text.lines().last().unwrap().replace("1.1.0", "1.2.0");
    let mut file = fs::File::options().append(true).open(&index).unwrap();
    std::io::Write::write_all(&mut file, format!("{copied}\n").as_bytes()).unwrap();
    file.set_modified(kept).unwrap();
    assert_eq!(versions(&a, path), ["1.0.0", "1.1.0", "1.2.0"]);
}

#[test]
fn a_cached_index_file_shows_a_crate_cargo_repackages_into_its_tmp_registry() {
    let work = scratch("shared-cached-tmp-registry");
    let line = |version: &str| {
        format!(
            "{{\"name\":\"repack\",\"vers\":\"{version}\",\"deps\":[],\"cksum\":\"{}\",\"features\":{{}}}}\n",
            "0".repeat(64)
        )
    };
    let plant_release = |root: &Path, version: &str| {
        let index = root.join("index/re/pa/repack");
        fs::create_dir_all(index.parent().unwrap()).unwrap();
        fs::write(&index, line(version)).unwrap();
        let crate_file = root.join(format!("repack-{version}.crate"));
        fs::write(&crate_file, b"packaged").unwrap();
        settle(&index);
        settle(&crate_file);
        crate_file
    };
    let lower = work.join("lower");
    plant_release(&lower, "0.2.0");
    // Left by an earlier `cargo publish --workspace`: served only once cargo writes
    // the `.crate` again (see `registry/local/package.rs`).
    let tmp_registry = work.join("target/package/tmp-registry");
    let repackaged = plant_release(&tmp_registry, "0.3.0");
    let overlay = Overlay::start(&[
        "-r",
        &local_layer(&tmp_registry),
        "-r",
        &local_layer(&lower),
    ]);
    let path = "/re/pa/repack";
    for _ in 0..3 {
        assert_eq!(versions(&overlay, path), ["0.2.0"]);
    }
    // cargo packages the same version again: the index file does not change, the
    // `.crate` does.
    fs::write(&repackaged, b"packaged again").unwrap();
    assert_eq!(versions(&overlay, path), ["0.2.0", "0.3.0"]);
}
