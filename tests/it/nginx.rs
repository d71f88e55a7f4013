//! nginx as the yardstick of the benchmarks: a static file server on loopback, what a
//! registry that only serves files can do on this machine. Not a CI dependency
//! (`apt-get install nginx-light` on a benchmark machine); a benchmark that needs it
//! and does not find it says so loudly and returns.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::scratch;

/// The nginx binary, if one runs here (`nginx -v`): `OVERLAY_BENCH_NGINX`, or else
/// `nginx` on the `PATH` or `/usr/sbin/nginx`.
pub fn binary() -> Option<String> {
    let candidates = match std::env::var("OVERLAY_BENCH_NGINX") {
        Ok(binary) => vec![binary],
        Err(_) => vec!["nginx".to_string(), "/usr/sbin/nginx".to_string()],
    };
    candidates.into_iter().find(|binary| {
        Command::new(binary)
            .arg("-v")
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Says, loudly, that `what` is skipped because `tool` is not installed.
pub fn say_missing(what: &str, tool: &str) {
    eprintln!(
        "\n*** SKIPPED {what}: it needs {tool}, which is not installed here.\n\
         *** On a benchmark machine (not CI): apt-get install nginx-light wrk\n"
    );
}

/// How nginx is run.
#[derive(Clone, Copy, PartialEq)]
pub enum Mode {
    /// One process that logs every request, so a benchmark can count them.
    Counting,
    /// A worker per core and no access log: as fast as it serves files here.
    Throughput,
}

/// nginx serving a directory on a free loopback port, its configuration, logs and
/// temporary files in a scratch directory. Stopped when dropped, so also when the
/// benchmark panics.
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    pub addr: SocketAddr,
}

impl Nginx {
    /// Starts `binary` serving `root` and waits until it accepts connections.
    pub fn start(binary: &str, root: &Path, mode: Mode) -> Nginx {
        let dir = scratch("nginx");
        let d = dir.display();
        // Free when asked; nginx takes it right after.
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let (processes, access_log) = match mode {
            Mode::Counting => (
                "master_process off;\nworker_processes 1;",
                format!("{d}/access.log"),
            ),
            Mode::Throughput => ("worker_processes auto;", "off".to_string()),
        };
        let conf = format!(
            "daemon off;\n{processes}\npid {d}/nginx.pid;\n\
             error_log {d}/error.log;\nevents {{ worker_connections 1024; }}\nhttp {{\n\
             access_log {access_log};\nclient_body_temp_path {d}/body;\n\
             proxy_temp_path {d}/proxy;\nfastcgi_temp_path {d}/fastcgi;\n\
             uwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
             types {{ application/json json; }}\ndefault_type text/plain;\n\
             server {{ listen {addr}; root {}; }}\n}}\n",
            root.display()
        );
        fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let mut nginx = Nginx { child, dir, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            let exited = nginx.child.try_wait().unwrap().is_some();
            assert!(
                !exited && Instant::now() < deadline,
                "nginx did not start:\n{}",
                fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    /// The requests it answered so far (lines in its access log; `Mode::Counting`).
    pub fn requests(&self) -> usize {
        fs::read_to_string(self.dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .count()
    }
}

impl Drop for Nginx {
    /// SIGTERM, which a master process passes on to its workers (SIGKILL would leave
    /// them serving the port), then SIGKILL if it is still there after a while.
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
