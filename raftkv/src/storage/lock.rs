//! The data directory's lock: one process at a time uses a data directory.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

/// The data directory's lock file: holds the pid of the process using the directory.
pub const LOCK_FILE: &str = "LOCK";

/// Takes the lock of the data directory `dir` (an exclusive `flock` on `dir/LOCK`, released when
/// the returned file is closed, however the process ends) and writes this process's pid in it.
/// Two processes writing one WAL would corrupt it: a second one is refused with the pid of the
/// first.
pub fn lock_dir(dir: &Path) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!(
                    "the data directory {} is in use by another process (pid {})",
                    dir.display(),
                    pid.trim()
                ),
            ));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    file.set_len(0)?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes())?;
    Ok(file)
}

/// The pid of the live process holding the lock of the data directory `dir`, if one does.
/// A pid left in the file by a process that died is not reported: its lock died with it.
pub fn lock_holder(dir: &Path) -> Option<u32> {
    let mut file = File::open(dir.join(LOCK_FILE)).ok()?;
    match file.try_lock_shared() {
        Ok(()) => None,
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            file.read_to_string(&mut pid).ok()?;
            pid.trim().parse().ok()
        }
        Err(std::fs::TryLockError::Error(_)) => None,
    }
}
