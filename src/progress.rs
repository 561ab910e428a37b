//! Terminal feedback of the command line: a progress line on stderr for
//! work that lasts more than a second, and the check whether messages may
//! use colour. Nothing here reaches an output file.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Work shorter than this shows no progress line at all.
const QUIET_START: Duration = Duration::from_secs(1);
/// Minimum time between two redraws of the line.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

/// Checks whether stderr may carry colour: it is a terminal and the
/// `NO_COLOR` environment variable is unset or empty (<https://no-color.org>).
pub fn stderr_color() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    !no_color && std::io::stderr().is_terminal()
}

/// A one-line progress display on stderr, redrawn in place. It draws
/// nothing when disabled, when stderr is not a terminal, or during the
/// first second of the work.
pub struct ProgressLine {
    enabled: bool,
    started: Instant,
    last_draw: Option<Instant>,
}

impl ProgressLine {
    /// Creates a progress line; `requested` is false under `--quiet`.
    pub fn new(requested: bool) -> ProgressLine {
        ProgressLine {
            enabled: requested && std::io::stderr().is_terminal(),
            started: Instant::now(),
            last_draw: None,
        }
    }

    /// Shows `fraction` (0 to 1) of the work as done, followed by `detail`;
    /// without a fraction (the end is unknown) it shows `detail` alone.
    pub fn update(&mut self, fraction: Option<f64>, detail: &str) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.started) < QUIET_START {
            return;
        }
        if self
            .last_draw
            .is_some_and(|last| now.duration_since(last) < REDRAW_EVERY)
        {
            return;
        }
        self.last_draw = Some(now);
        let percent = match fraction {
            Some(fraction) => format!("{:3.0}% ", (fraction.clamp(0.0, 1.0) * 100.0).floor()),
            None => String::new(),
        };
        let elapsed = now.duration_since(self.started).as_secs_f64();
        let mut stderr = std::io::stderr().lock();
        // `\r` returns to the start of the line and `\x1b[K` clears the rest
        // of it, so a shorter line leaves no trace of a longer one.
        let _ = write!(
            stderr,
            "\r\x1b[Ktrafficsim: {percent}{detail} ({elapsed:.0} s)"
        );
        let _ = stderr.flush();
    }

    /// Removes the line, if one was drawn, so later messages start clean.
    pub fn finish(&mut self) {
        if self.last_draw.take().is_some() {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[K");
            let _ = stderr.flush();
        }
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.finish();
    }
}
