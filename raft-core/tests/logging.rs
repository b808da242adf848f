//! A node's log records carry its id as `raft_id` (the node keeps no child logger, to save memory
//! per group, so the key is added per record: these tests pin that it still is), and a drain that
//! takes only some levels still gets them.

use raft_core::{Config, RawNode};
use slog::{Drain, Key, Level, Logger, OwnedKVList, Record, Serializer, KV};
use std::sync::{Arc, Mutex};
use storage_mem::{conf_state, MemStorage};

/// One record as a drain saw it: its level, message and every key-value pair as text.
#[derive(Debug, Clone)]
struct Seen {
    level: Level,
    msg: String,
    kvs: Vec<(String, String)>,
}

/// A drain that keeps every record at or above `min` (more severe), and says so in `is_enabled`.
#[derive(Clone)]
struct Capture {
    seen: Arc<Mutex<Vec<Seen>>>,
    min: Level,
}

struct Collect<'a>(&'a mut Vec<(String, String)>);

impl Serializer for Collect<'_> {
    fn emit_arguments(&mut self, key: Key, val: &std::fmt::Arguments) -> slog::Result {
        self.0.push((key.to_string(), val.to_string()));
        Ok(())
    }
}

impl Drain for Capture {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        if !record.level().is_at_least(self.min) {
            return Ok(());
        }
        let mut kvs = Vec::new();
        record
            .kv()
            .serialize(record, &mut Collect(&mut kvs))
            .expect("serialize");
        values
            .serialize(record, &mut Collect(&mut kvs))
            .expect("serialize");
        self.seen.lock().expect("lock").push(Seen {
            level: record.level(),
            msg: record.msg().to_string(),
            kvs,
        });
        Ok(())
    }

    fn is_enabled(&self, level: Level) -> bool {
        level.is_at_least(self.min)
    }
}

fn node(id: u64, min: Level) -> (RawNode<MemStorage>, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let drain = Capture {
        seen: seen.clone(),
        min,
    };
    let logger = Logger::root(drain.fuse(), slog::o!("app" => "test"));
    let store = MemStorage::new_with_conf_state(conf_state(vec![7, 8, 9], vec![]));
    let node = RawNode::new(&Config::new(id), store, &logger).expect("node");
    (node, seen)
}

fn raft_id(s: &Seen) -> Option<&str> {
    s.kvs
        .iter()
        .find(|(k, _)| k == "raft_id")
        .map(|(_, v)| v.as_str())
}

#[test]
fn every_record_of_a_node_carries_its_raft_id_and_the_application_keys() {
    let (mut node, seen) = node(7, Level::Trace);
    node.campaign().expect("campaign");
    let seen = seen.lock().expect("lock").clone();
    assert!(
        seen.iter().any(|s| s.msg.contains("requesting vote")),
        "the campaign was logged: {seen:?}"
    );
    for s in &seen {
        assert_eq!(raft_id(s), Some("7"), "record without raft_id=7: {s:?}");
        assert!(
            s.kvs.iter().any(|(k, v)| k == "app" && v == "test"),
            "the application's own keys are kept: {s:?}"
        );
    }
}

#[test]
fn a_drain_that_takes_only_warnings_gets_them_with_raft_id_and_nothing_less_severe() {
    let (mut node, seen) = node(8, Level::Warning);
    node.campaign().expect("campaign");
    assert!(
        seen.lock().expect("lock").is_empty(),
        "an election logs nothing at warning level or above"
    );
    // A local-only message arriving from the network is refused with a warning.
    let hup = raft_core::eraftpb::Message {
        msg_type: raft_core::eraftpb::MessageType::MsgHup as i32,
        from: 9,
        to: 8,
        term: 1,
        ..Default::default()
    };
    assert!(node.step(hup).is_err());
    let seen = seen.lock().expect("lock").clone();
    assert!(!seen.is_empty(), "the refusal was logged");
    for s in &seen {
        assert!(s.level.is_at_least(Level::Warning), "{s:?}");
        assert_eq!(raft_id(s), Some("8"), "{s:?}");
    }
}

#[test]
fn the_public_logger_adds_raft_id() {
    let (node, seen) = node(9, Level::Info);
    slog::info!(node.raft.logger(), "from the application");
    let seen = seen.lock().expect("lock").clone();
    let s = seen
        .iter()
        .find(|s| s.msg == "from the application")
        .expect("logged");
    assert_eq!(raft_id(s), Some("9"));
}
