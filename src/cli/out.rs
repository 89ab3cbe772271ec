//! stdout, for every command: nothing in the CLI uses `print!`/`println!`. [`print`] writes a
//! command's text whole; [`Out`] is the locked stdout for output that streams (logs, events).
//! Writes return `io::Result`; [`CliError::stdout`] turns a failed one into the command's
//! error, a closed pipe (`| head`) into [`CliError::Closed`], which ends the command quietly.

use super::error::CliError;
use std::io::{self, Write};

/// The locked stdout (line-buffered by std); [`Out::send`] flushes.
pub struct Out(io::StdoutLock<'static>);

impl Out {
    pub fn lock() -> Out {
        Out(io::stdout().lock())
    }

    /// `bytes`, then a flush; a failure is the command's error.
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) -> Result<(), CliError> {
        self.write_all(bytes.as_ref())
            .and_then(|()| self.flush())
            .map_err(CliError::stdout)
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Write `text` to stdout and flush it.
pub fn print(text: impl AsRef<[u8]>) -> Result<(), CliError> {
    Out::lock().send(text)
}
