//! Interaction transcripts: small clusters driven one step at a time by
//! `rafttest::interaction::InteractionEnv`, one file per scenario under
//! `testdata/interaction/` (every message, Ready and membership change is in the expected output).
//! Regenerate with `REWRITE=1 cargo test -p rafttest --test interaction` and review the diff line by
//! line against the Raft rules. Also checks that every file in the directory is run.

use rafttest::interaction::InteractionEnv;
use std::path::{Path, PathBuf};

const DIR: &str = "testdata/interaction";

/// The scenarios the suite must keep (issues #4, #5, #7); more files may be added.
const REQUIRED: &[&str] = &[
    "basic_election_and_replication.txt",
    "confchange_add_remove.txt",
    "confchange_joint_autoleave.txt",
    "forget_leader.txt",
    "forget_leader_prevote_checkquorum.txt",
    "forget_leader_read_only_lease.txt",
    "read_index_safe.txt",
    "snapshot_catch_up.txt",
    "transfer_leader.txt",
];

#[test]
fn interaction_transcripts() {
    datadriven::walk(DIR, |f| {
        let mut env = InteractionEnv::new();
        f.run(|tc| env.handle(tc));
    });
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {dir:?}: {e}"));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn every_file_in_the_transcript_directory_is_run() {
    // What `datadriven::walk` visits (it skips names starting with '.' or '#' or ending in '~').
    let mut visited = Vec::new();
    datadriven::walk(DIR, |f| visited.push(PathBuf::from(&f.filename)));
    visited.sort();
    let present = files_under(Path::new(DIR));
    let skipped: Vec<&PathBuf> = present.iter().filter(|p| !visited.contains(p)).collect();
    assert!(
        skipped.is_empty(),
        "files in {DIR} that the transcript runner skips (rename them, or set RUN only when \
         focusing on one file): {skipped:?}"
    );
    for path in &present {
        assert_eq!(
            path.extension().and_then(|e| e.to_str()),
            Some("txt"),
            "{path:?}: transcripts are named <scenario>.txt"
        );
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        assert!(
            text.lines().any(|l| l == "----"),
            "{path:?} holds no command with an expected output, so it tests nothing"
        );
    }
    for name in REQUIRED {
        assert!(
            Path::new(DIR).join(name).is_file(),
            "the scenario {name} is missing from {DIR}"
        );
    }
}

/// Runs each line on `env`, failing the test on a transcript error; returns the last output.
fn run_all(env: &mut InteractionEnv, lines: &[&str]) -> String {
    let mut last = String::new();
    for line in lines {
        last = env
            .run(line)
            .unwrap_or_else(|e| panic!("running {line:?}: {e}"));
    }
    last
}

// raft-rs `request_snapshot`: once the follower has acknowledged a snapshot covering the index it
// asked for, the request is satisfied and the leader must not send the snapshot again (it may
// wait for the application's report, as raft-rs does, but not resend).
#[test]
fn requested_snapshot_is_not_sent_again_once_acknowledged() {
    let mut env = InteractionEnv::new();
    run_all(
        &mut env,
        &[
            "add-nodes 3 voters=(1,2,3)",
            "campaign 1",
            "stabilize",
            "propose 1 data=a",
            "stabilize",
            "snapshot 1",
            "request-snapshot 2",
            "process-ready 2",
            "deliver-msgs 1",
        ],
    );
    let sent = run_all(&mut env, &["process-ready 1"]);
    assert!(
        sent.contains("1->2 MsgSnapshot"),
        "the leader answers the request with a snapshot:\n{sent}"
    );
    // The follower installs it and acknowledges index 2 before the transport reports anything.
    run_all(
        &mut env,
        &["deliver-msgs 2", "process-ready 2", "deliver-msgs 1"],
    );
    let after_ack = run_all(&mut env, &["process-ready 1"]);
    assert!(
        !after_ack.contains("MsgSnapshot"),
        "the follower acknowledged the requested snapshot (index 2), yet the leader sends it \
         again:\n{after_ack}"
    );
    // Nor does a report that arrives after the acknowledgement bring another one.
    let after_report = run_all(&mut env, &["report-snapshot 1 peer=2", "stabilize"]);
    assert!(
        !after_report.contains("MsgSnapshot"),
        "a late report brought another snapshot:\n{after_report}"
    );
}

#[test]
fn run_parses_directive_lines_like_a_transcript() {
    let mut env = InteractionEnv::new();
    let out = env
        .run("add-nodes 2 voters=(1, 2) learners=() pre-vote=true")
        .expect("a valid add-nodes line");
    assert_eq!(out.lines().count(), 2, "one line per new node:\n{out}");
    assert!(
        out.contains("[pre-vote=true]"),
        "the options show on each node's line:\n{out}"
    );
    let err = env
        .run("campaign 1 bogus=1")
        .expect_err("an unknown argument");
    assert!(err.contains("bogus"), "the error names the argument: {err}");
    let err = env.run("no-such-command").expect_err("an unknown command");
    assert!(err.contains("unknown command"), "{err}");
    let err = env.run("campaign 7").expect_err("no node 7");
    assert!(err.contains("no node 7"), "{err}");
    // An error from the core is output, not a failure: here there is no leader to forward to.
    let out = env
        .run_with_input("propose-conf-change 1", "l3")
        .expect("a well-formed conf change");
    assert_eq!(out, "error: proposal dropped\n");
}
