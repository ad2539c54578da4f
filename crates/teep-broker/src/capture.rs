//! A capture of the TEEP/HTTP bodies (`teep device run --capture DIR`), for `teep trace
//! --capture`: each body POSTed to or received from a TAM, as it was on the wire, in a
//! numbered file (`000001-to-tam.cbor`, ...), and one line per POST and per answer in
//! `index.jsonl` (direction, TAM URI, time, HTTP status, media type, size, file).
//!
//! The bodies are signed TEEP messages: the Broker never holds a TEE secret, and what the
//! TEE encrypts (Evidence, SUIT reports) stays encrypted. They do name the device (its key
//! id, claims in unencrypted Evidence, the TCs it holds), so the directory and its files
//! are owner-only. An answer the Broker refused (wrong media type, too large) is indexed
//! with its error, not written.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::warn;

/// The index file in a capture directory.
pub const INDEX_FILE: &str = "index.jsonl";

/// One line of `index.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CaptureEntry {
    /// Its number in the capture (1, 2, ...): the order things happened in.
    pub n: u64,
    /// `to-tam` (a POST) or `from-tam` (its answer).
    pub direction: String,
    /// The TAM URI.
    pub tam: String,
    /// When, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The answer's HTTP status (`from-tam` only; none when no answer came).
    pub status: Option<u16>,
    /// The body's media type (`Content-Type`), if it had one.
    pub media_type: Option<String>,
    /// The body's size in bytes (0: an empty POST, or an answer with no content).
    pub len: usize,
    /// The file holding the body, in the capture directory (none for an empty body).
    pub file: Option<String>,
    /// Why the answer was not accepted (the Broker's transport error), if it was not.
    pub error: Option<String>,
}

/// Where bodies are captured; cheap to clone (all clones write to one directory, in one
/// numbering).
#[derive(Clone, Debug)]
pub struct Capture(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    /// The index, and the number the next entry gets.
    state: Mutex<(File, u64)>,
}

impl Capture {
    /// Opens (creating it owner-only if needed) a capture directory; a directory that holds
    /// a capture already is continued, numbering after its last entry.
    ///
    /// # Errors
    /// When the directory or its index cannot be created or read.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let index = dir.join(INDEX_FILE);
        let existing = match std::fs::read(&index) {
            Ok(bytes) => bytes.iter().filter(|b| **b == b'\n').count() as u64,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&index)?;
        Ok(Self(Arc::new(Inner {
            dir: dir.to_path_buf(),
            state: Mutex::new((file, existing + 1)),
        })))
    }

    /// Records one body (`direction` `to-tam` or `from-tam`). A failure to write is logged,
    /// never fatal: the capture is a diagnostic and must not stop the device's sessions.
    pub(crate) fn record(&self, mut entry: CaptureEntry, body: &[u8]) {
        if let Err(e) = self.write(&mut entry, body) {
            warn!(dir = %self.0.dir.display(), error = %e, "capture not written");
        }
    }

    fn write(&self, entry: &mut CaptureEntry, body: &[u8]) -> std::io::Result<()> {
        // A poisoned lock only means another write panicked: the file is still usable.
        let mut state = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        let (index, next) = &mut *state;
        entry.n = *next;
        entry.len = body.len();
        if !body.is_empty() {
            let name = format!("{:06}-{}.cbor", entry.n, entry.direction);
            OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .open(self.0.dir.join(&name))?
                .write_all(body)?;
            entry.file = Some(name);
        }
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        index.write_all(&line)?;
        *next += 1;
        Ok(())
    }
}

/// An entry for `direction` and `tam`, stamped now; the rest is filled in by the caller
/// and [`Capture::record`].
pub(crate) fn entry(direction: &str, tam: &str) -> CaptureEntry {
    let time_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    CaptureEntry {
        n: 0,
        direction: direction.to_owned(),
        tam: tam.to_owned(),
        time_ms,
        status: None,
        media_type: None,
        len: 0,
        file: None,
        error: None,
    }
}
