//! Noticing Ctrl-C and `kill`, so the overlay can clean up before it exits.
//!
//! The handler only records which signal arrived (the one thing a signal handler may
//! safely do); the main thread polls for it and does the work: removing temporary
//! layers now, and in exec mode waiting for the child that got the same Ctrl-C.

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn record(signal: libc::c_int) {
    RECEIVED.store(signal, Ordering::SeqCst);
}

/// Routes SIGINT and SIGTERM to [`wait`] instead of ending the process.
pub fn install() {
    let handler = record as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: `record` only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// The last SIGINT or SIGTERM received, if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// Blocks until SIGINT or SIGTERM arrives and returns its number.
pub fn wait() -> i32 {
    loop {
        if let Some(signal) = received() {
            return signal;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
