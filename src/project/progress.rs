//! The progress line of long work (`fetch`): one line on stderr, redrawn in place the
//! way cargo draws its own, and only when stderr is a terminal.
//!
//! It owns the display only: the work reports crates done and bytes read, and the
//! line is drawn at most every [`REDRAW_EVERY`] and cleared before the work's own
//! output. It never changes what the work does or returns; a failed write to stderr is
//! ignored.

use std::io::{self, IsTerminal, Read, Write};
use std::time::{Duration, Instant};

use crate::registry::publish::validate::thousands;

/// At most about ten redraws a second, whatever the number of crates or reads.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

/// Moves to the start of the line and clears to its end.
const CLEAR: &str = "\r\x1b[K";

/// What the line shows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct State {
    pub(crate) done: usize,
    pub(crate) total: usize,
    pub(crate) bytes: u64,
    pub(crate) elapsed: Duration,
}

/// The progress of a run over `total` crates.
pub(crate) struct Progress {
    /// `None` when nothing is shown (stderr is not a terminal).
    out: Option<Box<dyn Write>>,
    width: usize,
    started: Instant,
    last_draw: Option<Instant>,
    done: usize,
    total: usize,
    bytes: u64,
}

impl Progress {
    /// On stderr if it is a terminal, else shown nowhere.
    pub(crate) fn on_stderr(total: usize) -> Progress {
        let out: Option<Box<dyn Write>> = if io::stderr().is_terminal() {
            Some(Box::new(io::stderr()))
        } else {
            None
        };
        Progress::new(out, terminal_width(), total)
    }

    /// Shown nowhere.
    #[cfg(test)]
    fn hidden(total: usize) -> Progress {
        Progress::new(None, 80, total)
    }

    fn new(out: Option<Box<dyn Write>>, width: usize, total: usize) -> Progress {
        Progress {
            out,
            width,
            started: Instant::now(),
            last_draw: None,
            done: 0,
            total,
            bytes: 0,
        }
    }

    /// One more crate done (downloaded or already there).
    pub(crate) fn crate_done(&mut self) {
        self.done += 1;
        self.tick(Instant::now());
    }

    /// `reader`, counting what is read from it as downloaded bytes.
    pub(crate) fn counting<'a>(&'a mut self, reader: &'a mut dyn Read) -> Counting<'a> {
        Counting {
            inner: reader,
            progress: self,
        }
    }

    /// Redraws the line if the last drawing is old enough.
    fn tick(&mut self, now: Instant) {
        if self.out.is_none() || self.last_draw.is_some_and(|t| now - t < REDRAW_EVERY) {
            return;
        }
        self.last_draw = Some(now);
        let state = State {
            done: self.done,
            total: self.total,
            bytes: self.bytes,
            elapsed: now - self.started,
        };
        let line = render(&state, self.width);
        if let Some(out) = &mut self.out {
            let _ = write!(out, "\r{line}\x1b[K");
            let _ = out.flush();
        }
    }

    /// Clears the line, if one was drawn, so the next output starts on a clean line.
    /// Also done on drop, so an error after a drawing is printed on its own line.
    pub(crate) fn finish(&mut self) {
        if self.last_draw.take().is_some()
            && let Some(out) = &mut self.out
        {
            let _ = out.write_all(CLEAR.as_bytes());
            let _ = out.flush();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A reader that adds what it reads to a [`Progress`]'s bytes.
pub(crate) struct Counting<'a> {
    inner: &'a mut dyn Read,
    progress: &'a mut Progress,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.bytes += n as u64;
        self.progress.tick(Instant::now());
        Ok(n)
    }
}

/// The terminal's width from `COLUMNS`, else 80. Asking the terminal itself
/// (`TIOCGWINSZ`) would need `libc` or a terminal crate, a new dependency for a
/// cosmetic line; a bar too short or too long for the real width is harmless.
fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse().ok())
        .filter(|&w| w > 0)
        .unwrap_or(80)
}

/// The line for `state` in a terminal `width` columns wide, without control characters:
/// `    Fetching [=====>      ] 312/1,204 crates, 48.2 MiB, 6.1 MiB/s`. It is kept
/// shorter than `width` so it never wraps; the bar shrinks first, then goes.
pub(crate) fn render(state: &State, width: usize) -> String {
    let secs = state.elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        (state.bytes as f64 / secs) as u64
    } else {
        0
    };
    let counts = format!(
        "{}/{} crates, {}, {}/s",
        thousands(state.done),
        thousands(state.total),
        bytes(state.bytes),
        bytes(rate)
    );
    let head = format!("{:>12}", "Fetching");
    // head + " [" + bar + "] " + counts, one column left free.
    let fixed = head.len() + 4 + counts.len() + 1;
    let bar_width = width.saturating_sub(fixed).min(40);
    if bar_width < 10 {
        let mut line = format!("{head} {counts}");
        line.truncate(width.saturating_sub(1));
        return line;
    }
    // Nothing to fetch: a full bar.
    let filled = (bar_width * state.done.min(state.total))
        .checked_div(state.total)
        .unwrap_or(bar_width);
    let mut bar = "=".repeat(filled);
    if filled < bar_width {
        bar.push('>');
        bar.push_str(&" ".repeat(bar_width - filled - 1));
    }
    format!("{head} [{bar}] {counts}")
}

/// `50_541_363` as `48.2 MiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.borrow().clone()).unwrap()
        }
    }

    #[test]
    fn renders_cargo_style() {
        let state = State {
            done: 312,
            total: 1204,
            bytes: 50_541_363,
            elapsed: Duration::from_secs(8),
        };
        let line = render(&state, 80);
        assert_eq!(
            line,
            "    Fetching [======>                   ] 312/1,204 crates, 48.2 MiB, 6.0 MiB/s"
        );
        assert!(line.len() < 80);
        // Narrower: the bar shrinks, then goes; the line never reaches the width.
        let narrow = render(&state, 76);
        assert!(narrow.len() < 76, "{narrow}");
        assert!(narrow.starts_with("    Fetching [=====> "), "{narrow}");
        let tiny = render(&state, 40);
        assert_eq!(tiny, "    Fetching 312/1,204 crates, 48.2 MiB");
        // Done: a full bar; nothing yet: no division by zero.
        let full = State {
            done: 3,
            total: 3,
            bytes: 10,
            elapsed: Duration::ZERO,
        };
        assert_eq!(
            render(&full, 60),
            "    Fetching [====================] 3/3 crates, 10 B, 0 B/s"
        );
        assert!(render(&State { total: 0, ..full }, 80).contains("3/0 crates"));
    }

    #[test]
    fn formats_numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn redraws_at_most_ten_times_a_second_and_clears_at_the_end() {
        let out = Shared::default();
        let mut progress = Progress::new(Some(Box::new(out.clone())), 80, 5);
        let start = progress.started;
        progress.done = 1;
        progress.tick(start);
        // Many updates within 100 ms: no redraw.
        for ms in 1..100 {
            progress.bytes += 1000;
            progress.tick(start + Duration::from_millis(ms));
        }
        assert_eq!(out.text().matches('\r').count(), 1, "{:?}", out.text());
        progress.tick(start + Duration::from_millis(100));
        let text = out.text();
        assert_eq!(text.matches('\r').count(), 2, "{text:?}");
        assert!(
            text.ends_with("1/5 crates, 96.7 KiB, 966.8 KiB/s\x1b[K"),
            "{text:?}"
        );
        progress.finish();
        assert!(out.text().ends_with("\x1b[K\r\x1b[K"));
        // Cleared once: dropping after finishing writes nothing more.
        let len = out.text().len();
        drop(progress);
        assert_eq!(out.text().len(), len);
    }

    #[test]
    fn bytes_count_as_they_are_read_and_nothing_is_shown_when_hidden() {
        let mut progress = Progress::hidden(1);
        let data = vec![7u8; 200_000];
        let mut source: &[u8] = &data;
        let mut copied = Vec::new();
        io::copy(&mut progress.counting(&mut source), &mut copied).unwrap();
        assert_eq!(copied, data);
        assert_eq!(progress.bytes, 200_000);
        progress.crate_done();
        assert_eq!(progress.last_draw, None);

        // Never drawn: nothing to clear, on finish or on drop.
        let out = Shared::default();
        let mut quiet = Progress::new(Some(Box::new(out.clone())), 80, 1);
        quiet.finish();
        drop(quiet);
        assert_eq!(out.text(), "");
    }
}
