//! Noticing Ctrl-C, `kill` and a closed terminal, so the overlay can clean up before it
//! exits.
//!
//! The handler only records which signal arrived (the one thing a signal handler may
//! safely do); the main thread polls for it and does the work: removing temporary
//! layers now, and in exec mode waiting for the child that got the same Ctrl-C.
//! SIGHUP (the terminal went away, or a plain `kill -HUP`) stops the overlay the way
//! SIGTERM does: left at its default it would kill the overlay on the spot, orphaning
//! an exec-mode child and leaving the run directory behind.

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// The signals that stop the overlay.
const STOPPING: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn record(signal: libc::c_int) {
    RECEIVED.store(signal, Ordering::SeqCst);
}

/// Routes SIGINT, SIGTERM and SIGHUP to [`wait`] instead of ending the process.
pub(crate) fn install() {
    let handler = record as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for signal in STOPPING {
        // SAFETY: `record` only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(signal, handler);
        }
    }
}

/// The last stopping signal received, if any.
pub(crate) fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// Whether an exec-mode child must be sent `signal` by the overlay. SIGINT from a
/// terminal reaches the whole foreground process group, so the child has it already;
/// SIGTERM and SIGHUP may have been sent to the overlay alone.
pub(crate) fn forwarded_to_child(signal: i32) -> bool {
    signal == libc::SIGTERM || signal == libc::SIGHUP
}

/// Blocks until a stopping signal arrives and returns its number.
pub(crate) fn wait() -> i32 {
    loop {
        if let Some(signal) = received() {
            return signal;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigterm_and_sighup_are_passed_on_but_not_sigint() {
        assert!(forwarded_to_child(libc::SIGTERM));
        assert!(forwarded_to_child(libc::SIGHUP));
        assert!(!forwarded_to_child(libc::SIGINT));
    }
}
