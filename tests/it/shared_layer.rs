//! Several overlays sharing one local layer directory, as instances on different
//! machines sharing a network filesystem do. `CARGO_OVERLAY_REGISTRY_HOST_ID` (a test
//! hook) gives each one the identity of a different machine.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, SystemTime};

use crate::harness::{Overlay, crate_file, index_lines, local_layer, scratch, upload};

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
    for path in &theirs {
        assert!(path.exists(), "{} was removed", path.display());
    }
    assert!(!mine.exists(), "{} was kept", mine.display());
    assert!(!abandoned.exists(), "{} was kept", abandoned.display());
    // A restart keeps them too; the other host removes its own.
    overlay.stop();
    let overlay = instance(&layer, HERE);
    for path in &theirs {
        assert!(path.exists(), "{} was removed", path.display());
    }
    overlay.stop();
    let other = instance(&layer, THERE);
    for path in &theirs {
        assert!(!path.exists(), "{} was kept", path.display());
    }
    other.stop();
}
