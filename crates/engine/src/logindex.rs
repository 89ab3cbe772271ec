//! The build log's line index, `build.log.idx` beside `build.log`: where each line starts and
//! its time, so a reader fetches any page of lines without reading the whole log.
//!
//! Format: one 16-byte entry per line, in order: the byte offset where the line starts (u64)
//! and its time in ms since the epoch (i64), both little-endian. A line's time is that of the
//! agent line (`[Container] 2026/11/30 18:32:00.123456 …`) it is or follows, as CloudWatch
//! shows CodeBuild's lines; a line before any agent line has [`BEFORE_AGENT`] (a reader puts
//! the build's start there).
//!
//! The [`Hub`](crate::handle) appends the entries of a piece of log text *before* it writes
//! the text, so a reader that takes the log's length first and reads the index afterwards
//! knows every line the log holds (entries at or past that length are not used). A log
//! without an index (written before indexes existed) gets one from a streaming pass the first
//! time [`LogIndex::open`] reads it. Memory stays bounded by what a caller asks for.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::log::{AGENT_PREFIX, agent_time};

/// Bytes per index entry.
pub const ENTRY: u64 = 16;
/// The time of lines before the first agent line: the reader's build start.
pub const BEFORE_AGENT: i64 = i64::MIN;
/// Entries read at once when a reader walks the index.
const BLOCK: u64 = 4096;

/// The index file of a build log (`build.log` → `build.log.idx`).
pub fn path_for(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".idx");
    PathBuf::from(name)
}

/// Turns text appended to a log into index entries (the writer's side).
#[derive(Debug, Clone)]
pub struct Lines {
    /// The next byte starts a line.
    at_line_start: bool,
    /// The time of the last agent line.
    time: i64,
}

impl Default for Lines {
    fn default() -> Lines {
        Lines {
            at_line_start: true,
            time: BEFORE_AGENT,
        }
    }
}

impl Lines {
    /// Append to `out` the entries of the lines that begin in `text`, which goes to the log at
    /// byte `offset`. A line's time is read from its first bytes in `text`.
    pub fn entries(&mut self, offset: u64, text: &[u8], out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        let mut start = |at: usize, lines: &mut Lines| {
            let head = &text[at..text.len().min(at + AGENT_PREFIX)];
            if let Some(t) = agent_time(head) {
                lines.time = t;
            }
            out.extend_from_slice(&(offset + at as u64).to_le_bytes());
            out.extend_from_slice(&lines.time.to_le_bytes());
        };
        if self.at_line_start {
            start(0, self);
        }
        for nl in memchr::memchr_iter(b'\n', text) {
            if nl + 1 < text.len() {
                start(nl + 1, self);
            }
        }
        self.at_line_start = text.ends_with(b"\n");
    }
}

/// One entry: where a line starts and its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub offset: u64,
    pub time: i64,
}

impl Entry {
    fn parse(b: &[u8]) -> Entry {
        let mut o = [0u8; 8];
        let mut t = [0u8; 8];
        o.copy_from_slice(&b[..8]);
        t.copy_from_slice(&b[8..16]);
        Entry {
            offset: u64::from_le_bytes(o),
            time: i64::from_le_bytes(t),
        }
    }

    /// The line's time, with `start_ms` for lines before the first agent line.
    pub fn time_or(&self, start_ms: i64) -> i64 {
        if self.time == BEFORE_AGENT {
            start_ms
        } else {
            self.time
        }
    }
}

/// A build log opened with its index, as it stood when opened (the reader's side).
pub struct LogIndex {
    log: File,
    index: File,
    log_len: u64,
    lines: u64,
}

impl LogIndex {
    /// Open `log` and its index. A missing index is built by a streaming pass over the log;
    /// it is kept beside the log when `keep` (the log is complete), else used once and
    /// dropped (a log still growing would outrun it).
    pub fn open(log: &Path, keep: bool) -> std::io::Result<LogIndex> {
        let log_file = File::open(log)?;
        // The log's length first: every line it holds has its entry by now.
        let log_len = log_file.metadata()?.len();
        let index = match File::open(path_for(log)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => rebuild(&log_file, log, keep)?,
            Err(e) => return Err(e),
        };
        let mut idx = LogIndex {
            log: log_file,
            lines: index.metadata()?.len() / ENTRY,
            index,
            log_len,
        };
        // Entries at or past the log's length describe text not written yet.
        let (mut lo, mut hi) = (0, idx.lines);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if idx.entry(mid)?.offset < log_len {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        idx.lines = lo;
        Ok(idx)
    }

    /// How many lines the log holds (its last one may still lack its newline).
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// The log's length in bytes.
    pub fn log_len(&self) -> u64 {
        self.log_len
    }

    /// Line `i`'s entry (`i < lines()`).
    pub fn entry(&self, i: u64) -> std::io::Result<Entry> {
        let mut b = [0u8; ENTRY as usize];
        self.index.read_exact_at(&mut b, i * ENTRY)?;
        Ok(Entry::parse(&b))
    }

    /// Where line `i` ends (the next line's start, or the log's end).
    pub fn end_of(&self, i: u64) -> std::io::Result<u64> {
        if i + 1 < self.lines {
            Ok(self.entry(i + 1)?.offset)
        } else {
            Ok(self.log_len)
        }
    }

    /// The entries of lines `from..to` (clamped to the log).
    pub fn entries(&self, from: u64, to: u64) -> std::io::Result<Vec<Entry>> {
        let to = to.min(self.lines);
        if from >= to {
            return Ok(vec![]);
        }
        let mut b = vec![0u8; ((to - from) * ENTRY) as usize];
        self.index.read_exact_at(&mut b, from * ENTRY)?;
        Ok(b.chunks_exact(ENTRY as usize).map(Entry::parse).collect())
    }

    /// Line `i`'s text (with its newline, if it has one), at most `max` bytes of it.
    pub fn line(&self, i: u64, max: usize) -> std::io::Result<Vec<u8>> {
        let start = self.entry(i)?.offset;
        let len = (self.end_of(i)? - start).min(max as u64);
        let mut b = vec![0u8; len as usize];
        self.log.read_exact_at(&mut b, start)?;
        Ok(b)
    }

    /// The log's bytes `from..to` (clamped to the log).
    pub fn bytes(&self, from: u64, to: u64) -> std::io::Result<Vec<u8>> {
        let to = to.min(self.log_len);
        let mut b = vec![0u8; to.saturating_sub(from) as usize];
        self.log.read_exact_at(&mut b, from)?;
        Ok(b)
    }

    /// The first line that starts at or after byte `at` (`lines()` if none does).
    pub fn line_at(&self, at: u64) -> std::io::Result<u64> {
        let (mut lo, mut hi) = (0, self.lines);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.entry(mid)?.offset < at {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Walk the lines from line `from` on, in order, reading the log sequentially: `visit`
    /// gets each line's number, entry and text (at most `max` bytes of it) and returns whether
    /// to go on. Memory: one block of entries and one line.
    pub fn scan(
        &self,
        from: u64,
        max: usize,
        mut visit: impl FnMut(u64, Entry, &[u8]) -> bool,
    ) -> std::io::Result<()> {
        if from >= self.lines {
            return Ok(());
        }
        let mut reader = BufReader::with_capacity(256 << 10, self.log.try_clone()?);
        let mut pos = self.entry(from)?.offset;
        reader.seek(SeekFrom::Start(pos))?;
        let mut text = Vec::new();
        let mut block = from;
        while block < self.lines {
            let block_end = (block + BLOCK).min(self.lines);
            let entries = self.entries(block, block_end)?;
            let next_start = if block_end < self.lines {
                self.entry(block_end)?.offset
            } else {
                self.log_len
            };
            for (k, e) in entries.iter().enumerate() {
                let end = entries.get(k + 1).map_or(next_start, |n| n.offset);
                if e.offset != pos {
                    reader.seek_relative(e.offset as i64 - pos as i64)?;
                }
                let len = end.saturating_sub(e.offset);
                let take = len.min(max as u64);
                text.clear();
                (&mut reader).take(take).read_to_end(&mut text)?;
                reader.seek_relative((len - take) as i64)?;
                pos = end;
                if !visit(block + k as u64, *e, &text) {
                    return Ok(());
                }
            }
            block = block_end;
        }
        Ok(())
    }
}

/// Build the index of `log` by one pass over it: beside it when `keep`, else in an anonymous
/// temporary file. Bounded memory whatever the log's size.
fn rebuild(log_file: &File, log: &Path, keep: bool) -> std::io::Result<File> {
    if !keep {
        let mut file = tempfile::tempfile()?;
        let mut out = BufWriter::new(&mut file);
        write_index(log_file.try_clone()?, &mut out)?;
        out.flush()?;
        drop(out);
        return Ok(file);
    }
    let mut tmp = tempfile::NamedTempFile::new_in(log.parent().unwrap_or(Path::new(".")))?;
    let mut out = BufWriter::new(tmp.as_file_mut());
    write_index(log_file.try_clone()?, &mut out)?;
    out.flush()?;
    drop(out);
    // Two readers may rebuild at once: both write the same index; the last one wins.
    tmp.persist(path_for(log)).map_err(|e| e.error)
}

/// The index entries of everything `log` holds, written to `out`.
pub fn write_index(log: impl Read, out: &mut impl Write) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(256 << 10, log);
    let mut lines = Lines::default();
    let mut offset = 0u64;
    let mut entries = Vec::new();
    // The bytes after the last newline of a block are held back while they are fewer than an
    // agent line's prefix, so every line's time is read from its first bytes in one piece.
    let mut held: Vec<u8> = Vec::new();
    loop {
        let block = reader.fill_buf()?;
        if block.is_empty() {
            break;
        }
        held.extend_from_slice(block);
        let n = block.len();
        reader.consume(n);
        let tail = memchr::memrchr(b'\n', &held).map_or(held.len(), |i| held.len() - i - 1);
        let upto = if tail < AGENT_PREFIX {
            held.len() - tail
        } else {
            held.len()
        };
        lines.entries(offset, &held[..upto], &mut entries);
        out.write_all(&entries)?;
        entries.clear();
        offset += upto as u64;
        held.drain(..upto);
    }
    lines.entries(offset, &held, &mut entries);
    out.write_all(&entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGENT: &str = "[Container] 2026/11/30 18:32:00.123456 Entering phase BUILD\n";
    const AGENT_MS: i64 = 1_796_063_520_123;

    /// A log written in pieces, as the hub does: index entries first, then the text.
    fn write(dir: &Path, pieces: &[&[u8]]) -> PathBuf {
        let log = dir.join("build.log");
        let mut lines = Lines::default();
        let (mut text, mut idx) = (vec![], vec![]);
        for p in pieces {
            lines.entries(text.len() as u64, p, &mut idx);
            text.extend_from_slice(p);
        }
        std::fs::write(&log, &text).unwrap();
        std::fs::write(path_for(&log), &idx).unwrap();
        log
    }

    fn all_lines(idx: &LogIndex) -> Vec<(i64, String)> {
        let mut out = vec![];
        idx.scan(0, usize::MAX, |_, e, t| {
            out.push((e.time_or(5), String::from_utf8_lossy(t).into_owned()));
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn entries_follow_lines_across_pieces_and_carry_the_agent_time() {
        let dir = tempfile::tempdir().unwrap();
        let log = write(
            dir.path(),
            &[
                b"before\n",
                AGENT.as_bytes(),
                b"out",
                b"put\nlast\n",
                b"partial",
            ],
        );
        let idx = LogIndex::open(&log, true).unwrap();
        assert_eq!(idx.lines(), 5);
        assert_eq!(
            all_lines(&idx),
            [
                (5, "before\n".to_owned()),
                (AGENT_MS, AGENT.to_owned()),
                (AGENT_MS, "output\n".to_owned()),
                (AGENT_MS, "last\n".to_owned()),
                (AGENT_MS, "partial".to_owned()),
            ]
        );
        assert_eq!(idx.line(2, 3).unwrap(), b"out");
        assert_eq!(idx.line(4, 100).unwrap(), b"partial");
        assert_eq!(idx.line_at(0).unwrap(), 0);
        assert_eq!(idx.line_at(1).unwrap(), 1);
        assert_eq!(idx.line_at(idx.log_len()).unwrap(), 5);
        assert_eq!(idx.entries(3, 99).unwrap().len(), 2);
        assert_eq!(idx.bytes(7, 11).unwrap(), b"[Con");
    }

    #[test]
    fn a_page_from_the_middle_of_a_long_log_reads_only_its_lines() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        let log = write(dir.path(), &[text.as_bytes()]);
        let idx = LogIndex::open(&log, true).unwrap();
        assert_eq!(idx.lines(), 20_000);
        assert_eq!(idx.line(12_345, 100).unwrap(), b"line 12345\n");
        let mut seen = vec![];
        idx.scan(19_998, 100, |i, _, t| {
            seen.push((i, t.to_vec()));
            true
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                (19_998, b"line 19998\n".to_vec()),
                (19_999, b"line 19999\n".to_vec())
            ]
        );
        // A long line is cut at `max` and the walk goes on after it.
        let log = write(dir.path(), &[&[b'x'; 5000], b"\nnext\n"]);
        let idx = LogIndex::open(&log, true).unwrap();
        let mut lens = vec![];
        idx.scan(0, 10, |_, _, t| {
            lens.push(t.to_vec());
            true
        })
        .unwrap();
        assert_eq!(lens, [b"xxxxxxxxxx".to_vec(), b"next\n".to_vec()]);
    }

    #[test]
    fn entries_written_ahead_of_the_log_are_not_lines_yet() {
        let dir = tempfile::tempdir().unwrap();
        let log = write(dir.path(), &[b"one\n", b"two\n"]);
        // The hub wrote the next piece's entries and not yet its text.
        let mut lines = Lines::default();
        let mut idx = vec![];
        lines.entries(0, b"one\ntwo\n", &mut idx);
        lines.entries(8, b"three\nfour\n", &mut idx);
        std::fs::write(path_for(&log), &idx).unwrap();
        let idx = LogIndex::open(&log, true).unwrap();
        assert_eq!(idx.lines(), 2);
        assert_eq!(idx.line(1, 100).unwrap(), b"two\n");
    }

    #[test]
    fn a_log_without_an_index_gets_the_same_one_from_a_streaming_pass() {
        let dir = tempfile::tempdir().unwrap();
        // Long enough for several read blocks, with agent lines cut at block edges.
        let mut pieces: Vec<Vec<u8>> = vec![b"first\n".to_vec()];
        for i in 0..30_000 {
            pieces.push(if i % 7 == 0 {
                AGENT.as_bytes().to_vec()
            } else {
                format!("output line {i}\n").into_bytes()
            });
        }
        pieces.push(vec![b'y'; 300_000]);
        let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        let log = write(dir.path(), &refs);
        let written = std::fs::read(path_for(&log)).unwrap();

        // Used once, not kept, for a log that may still grow.
        std::fs::remove_file(path_for(&log)).unwrap();
        let idx = LogIndex::open(&log, false).unwrap();
        assert_eq!(idx.lines(), 30_002);
        assert!(!path_for(&log).exists());
        // Kept beside a complete log, and equal to the one written along.
        let idx = LogIndex::open(&log, true).unwrap();
        assert_eq!(idx.lines(), 30_002);
        assert_eq!(std::fs::read(path_for(&log)).unwrap(), written);
        assert_eq!(idx.entry(8).unwrap().time, AGENT_MS);
        assert_eq!(idx.entry(0).unwrap().time, BEFORE_AGENT);
    }

    #[test]
    fn an_empty_log_has_no_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = write(dir.path(), &[]);
        let idx = LogIndex::open(&log, true).unwrap();
        assert_eq!(idx.lines(), 0);
        assert_eq!(all_lines(&idx), []);
    }
}
