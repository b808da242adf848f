//! The settings a node keeps in its data directory (`<data-dir>/options`), so that a restart
//! keeps them (issue 19: a restart without `--write-mode`/`--read-mode` silently turned a node
//! into one that disagreed with the rest of its cluster). The first start writes them; a restart
//! takes each one not given on its command line from the file, and refuses to start when one
//! given differs from the file, naming it.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use slog::{info, Logger};

use super::{NodeConfig, NodeError, ReadMode, WriteMode};

/// The name of the file in the data directory.
pub const FILE_NAME: &str = "options";

/// The stored settings, by command-line name.
pub const STORED: [&str; 8] = [
    "write-mode",
    "read-mode",
    "tick-ms",
    "election-ticks",
    "heartbeat-ticks",
    "snapshot-entries",
    "keep-entries",
    "request-timeout-ms",
];

/// The stored settings of `config`, as text.
fn render(config: &NodeConfig) -> BTreeMap<&'static str, String> {
    let values = [
        match config.write_mode {
            WriteMode::Forward => "forward".to_string(),
            WriteMode::Redirect => "redirect".to_string(),
        },
        match config.read_mode {
            ReadMode::Safe => "safe".to_string(),
            ReadMode::Lease => "lease".to_string(),
        },
        config.tick.as_millis().to_string(),
        config.election_ticks.to_string(),
        config.heartbeat_ticks.to_string(),
        config.snapshot_entries.to_string(),
        config.keep_entries.to_string(),
        config.request_timeout.as_millis().to_string(),
    ];
    STORED.into_iter().zip(values).collect()
}

/// Sets the stored setting `key` of `config` to `value`; the error says what is wrong.
fn set(config: &mut NodeConfig, key: &str, value: &str) -> Result<(), String> {
    let number = || {
        value
            .parse::<u64>()
            .map_err(|_| format!("{key}: `{value}` is not a number"))
    };
    match key {
        "write-mode" => {
            config.write_mode = match value {
                "forward" => WriteMode::Forward,
                "redirect" => WriteMode::Redirect,
                _ => return Err(format!("write-mode: `{value}` is not forward or redirect")),
            }
        }
        "read-mode" => {
            config.read_mode = match value {
                "safe" => ReadMode::Safe,
                "lease" => ReadMode::Lease,
                _ => return Err(format!("read-mode: `{value}` is not safe or lease")),
            }
        }
        "tick-ms" => config.tick = Duration::from_millis(number()?),
        "election-ticks" => config.election_ticks = number()? as usize,
        "heartbeat-ticks" => config.heartbeat_ticks = number()? as usize,
        "snapshot-entries" => config.snapshot_entries = number()?,
        "keep-entries" => config.keep_entries = number()?,
        "request-timeout-ms" => config.request_timeout = Duration::from_millis(number()?),
        _ => return Err(format!("`{key}` is not a stored setting")),
    }
    Ok(())
}

/// Reconciles `config` with the settings stored in its data directory (which must exist):
/// writes them on the first start; on a restart takes each setting not in
/// `config.explicit_options` from the file, and refuses one given that differs from it.
pub fn reconcile(config: &mut NodeConfig, logger: &Logger) -> Result<(), NodeError> {
    let path = config.data_dir.join(FILE_NAME);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return write(config, path),
        Err(e) => return Err(NodeError::Io(e)),
    };
    let invalid = |why: String| NodeError::Invalid(format!("{}: {why}", path.display()));
    let current = render(config);
    let mut conflicts = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (key, stored) = line
            .split_once('=')
            .ok_or_else(|| invalid(format!("`{line}` is not name=value")))?;
        let Some(given) = current.get(key) else {
            return Err(invalid(format!("`{key}` is not a stored setting")));
        };
        if given == stored {
            continue;
        }
        if config.explicit_options.iter().any(|o| o == key) {
            conflicts.push(format!("--{key} {given} (stored: {stored})"));
        } else {
            set(config, key, stored).map_err(invalid)?;
            info!(logger, "setting taken from the data directory"; "option" => key, "value" => stored);
        }
    }
    if !conflicts.is_empty() {
        return Err(NodeError::Invalid(format!(
            "{} disagree with the settings this node was started with, kept in {}; restart \
             without them (or with the stored values), or edit the file on every node to change \
             the cluster's settings",
            conflicts.join(", "),
            path.display()
        )));
    }
    Ok(())
}

/// Writes `config`'s stored settings to `path` (a temporary file, fsynced, renamed).
fn write(config: &NodeConfig, path: PathBuf) -> Result<(), NodeError> {
    let text: String = render(config)
        .into_iter()
        .map(|(key, value)| format!("{key}={value}\n"))
        .collect();
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, &path)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logger() -> Logger {
        Logger::root(slog::Discard, slog::o!())
    }

    #[test]
    fn a_restart_keeps_the_stored_settings_and_refuses_contrary_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = NodeConfig::new(1, "a:1", dir.path());
        first.write_mode = WriteMode::Redirect;
        first.read_mode = ReadMode::Lease;
        first.tick = Duration::from_millis(20);
        reconcile(&mut first, &logger()).unwrap();

        // Restarted with none of them given: the stored ones are taken.
        let mut plain = NodeConfig::new(1, "a:1", dir.path());
        reconcile(&mut plain, &logger()).unwrap();
        assert_eq!(plain.write_mode, WriteMode::Redirect);
        assert_eq!(plain.read_mode, ReadMode::Lease);
        assert_eq!(plain.tick, Duration::from_millis(20));

        // Given and equal: fine. Given and different: refused, naming each.
        let mut same = NodeConfig::new(1, "a:1", dir.path());
        same.write_mode = WriteMode::Redirect;
        same.explicit_options = vec!["write-mode".to_string()];
        reconcile(&mut same, &logger()).unwrap();
        let mut contrary = NodeConfig::new(1, "a:1", dir.path());
        contrary.explicit_options = vec!["write-mode".to_string(), "tick-ms".to_string()];
        let err = reconcile(&mut contrary, &logger()).unwrap_err().to_string();
        assert!(
            err.contains("--write-mode forward (stored: redirect)")
                && err.contains("--tick-ms 100 (stored: 20)"),
            "{err}"
        );
    }

    #[test]
    fn a_damaged_options_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), "write-mode=sideways\n").unwrap();
        let mut config = NodeConfig::new(1, "a:1", dir.path());
        let err = reconcile(&mut config, &logger()).unwrap_err().to_string();
        assert!(err.contains("options") && err.contains("sideways"), "{err}");
    }
}
