//! Exec mode: the command runs with the overlay's environment, and its exit code
//! becomes ours.

use std::ffi::OsString;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use super::AppError;
use super::environment::Environment;
use super::signals;

/// Runs the command with the overlay's environment, calls `spawned` once it runs, and
/// returns its exit code, or 128 + the signal that ended it. Ctrl-C reaches the child
/// from the terminal, so the overlay only waits; a SIGTERM or SIGHUP sent to the
/// overlay alone is passed on to the child.
pub(crate) fn run_command(
    command: &[OsString],
    environment: &Environment,
    spawned: impl FnOnce(),
) -> Result<i32, AppError> {
    let (program, args) = command.split_first().expect("exec mode has a command");
    let mut child = Command::new(program);
    child.args(args);
    // The tokens too replace any the user set: a token meant for another registry
    // must not reach the overlay, and the overlay accepts only its own.
    child.envs(environment.vars());
    let mut child = child.spawn().map_err(|source| AppError::Command {
        program: program.clone(),
        source,
    })?;
    spawned();
    let finished = Arc::new(AtomicBool::new(false));
    let forwarder = {
        let finished = Arc::clone(&finished);
        let pid = child.id() as libc::pid_t;
        thread::spawn(move || {
            while !finished.load(Ordering::SeqCst) {
                if let Some(signal) =
                    signals::received().filter(|s| signals::forwarded_to_child(*s))
                {
                    // SAFETY: sending a signal to our own child's pid has no memory effects.
                    unsafe { libc::kill(pid, signal) };
                    return;
                }
                thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let status = child.wait().map_err(|source| AppError::Command {
        program: program.clone(),
        source,
    })?;
    // The forwarder sees this within one tick and ends; waiting for it would only
    // add that tick to every run.
    finished.store(true, Ordering::SeqCst);
    drop(forwarder);
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1))
}
