//! Following a log file as it grows, each line stamped with when it appeared: Knot writes one
//! line per update with the remote address, to the second only; read as it is written, a line's
//! stamp is within tens of milliseconds of the update.

use std::io::{BufRead as _, BufReader, Seek as _, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A follower of one file from its current end; stops when dropped.
pub struct Tail {
    lines: Arc<Mutex<Vec<(SystemTime, String)>>>,
    stop: Arc<AtomicBool>,
}

impl Tail {
    pub fn start(path: &Path) -> Self {
        let mut file = std::fs::File::open(path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        file.seek(SeekFrom::End(0)).expect("seek to the end");
        let lines: Arc<Mutex<Vec<(SystemTime, String)>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (out, done) = (lines.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reader = BufReader::new(file);
            let mut partial = String::new();
            while !done.load(Ordering::Relaxed) {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) => std::thread::sleep(Duration::from_millis(20)),
                    Ok(_) if line.ends_with('\n') => {
                        partial.push_str(&line);
                        let whole = std::mem::take(&mut partial);
                        out.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((SystemTime::now(), whole.trim_end().to_owned()));
                    }
                    Ok(_) => partial.push_str(&line),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Self { lines, stop }
    }

    /// The lines seen so far that contain `needle`, with when each appeared.
    pub fn matching(&self, needle: &str) -> Vec<(SystemTime, String)> {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, l)| l.contains(needle))
            .cloned()
            .collect()
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
