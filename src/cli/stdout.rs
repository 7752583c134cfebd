//! Standard output that tells a reader who went away (`contact-sync plan | head`)
//! from any other failed write: the command then stops printing and exits quietly,
//! as ripgrep and git do, instead of reporting "Broken pipe" as an error.

use std::io::{self, Write};

// Named apart from the planner's ErrorKind (the architecture test keeps that one
// in src/plan).
use std::io::ErrorKind as Io;

/// The marker inside the `io::Error` a write to a closed stdout returns.
#[derive(Debug, thiserror::Error)]
#[error("the reader of standard output went away")]
pub struct Closed;

/// Locked stdout whose writes turn a broken pipe into [`Closed`].
pub struct Stdout(io::StdoutLock<'static>);

/// Locks stdout.
pub fn lock() -> Stdout {
    Stdout(io::stdout().lock())
}

fn mark(e: io::Error) -> io::Error {
    if e.kind() == Io::BrokenPipe { io::Error::new(e.kind(), Closed) } else { e }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(mark)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(mark)
    }
}

/// Whether `e` is, or was caused by, a write to a closed stdout.
pub fn closed(e: &anyhow::Error) -> bool {
    // Some writers (serde_json) pass on the io::Error's own source: `Closed`.
    e.chain().any(|cause| {
        cause.is::<Closed>()
            || cause
                .downcast_ref::<io::Error>()
                .and_then(io::Error::get_ref)
                .is_some_and(|inner| inner.is::<Closed>())
    })
}
