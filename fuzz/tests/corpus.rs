//! Replays the seed corpus (and any crash artifacts kept next to it) through both fuzz targets on
//! a stable toolchain, so a finding that was fixed stays fixed: `cargo test` in `fuzz/`.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} missing ({e}): run gen_corpus", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .collect();
    files.sort();
    for f in &files {
        let data = std::fs::read(f).expect("read corpus file");
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target} failed on {}", f.display());
    }
    files.len()
}

#[test]
fn step_bytes_corpus_runs_clean() {
    let n = replay("step_bytes", raft_fuzz::step_bytes);
    assert!(
        n >= 19,
        "the step_bytes corpus should hold every message type, found {n} files"
    );
}

#[test]
fn step_sequence_corpus_runs_clean() {
    let n = replay("step_sequence", raft_fuzz::step_sequence);
    assert!(n >= 10, "the step_sequence corpus holds {n} files");
}
