//! Stopping without cutting requests off.
//!
//! When the overlay is told to stop, a publish may be half uploaded and a download
//! half sent. The request loop counts the requests between a parsed head and a written
//! response; on shutdown the listener refuses new connections with 503 (which cargo
//! retries), kept-alive connections close after their current request, and the caller
//! waits, up to a limit, for the count to reach zero. The state is process-wide
//! because it is a fact about the process: there is one listener per overlay.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static DRAINING: AtomicBool = AtomicBool::new(false);

/// Counts one request as in progress while it lives.
pub(crate) struct InFlight(());

impl InFlight {
    pub(crate) fn enter() -> InFlight {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether the overlay is shutting down: take no new connections or requests.
pub(crate) fn draining() -> bool {
    DRAINING.load(Ordering::SeqCst)
}

/// Starts the shutdown and waits up to `timeout` for the requests in progress to
/// finish. Returns how many were still unfinished.
pub(crate) fn drain(timeout: Duration) -> usize {
    DRAINING.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + timeout;
    loop {
        let in_flight = IN_FLIGHT.load(Ordering::SeqCst);
        if in_flight == 0 || Instant::now() >= deadline {
            return in_flight;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Ends a shutdown once its listener has stopped, so that another overlay started
/// later in the same process takes connections again.
pub(crate) fn resume() {
    DRAINING.store(false, Ordering::SeqCst);
}
