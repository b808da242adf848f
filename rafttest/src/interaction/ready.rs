//! `process-ready`: a node hands out a Ready and the application handles it the way a real one
//! would: persist, apply, queue the messages, advance.

use super::{take_ids, CmdResult, Command, InteractionEnv, Node, Output};
use raft_core::eraftpb::{Entry, EntryType, Message, Snapshot};
use raft_core::raft::decode_conf_change;
use raft_core::{describe_ready, LightReady};
use raft_proto::prost::Message as _;
use raft_proto::{describe_conf_state, describe_entry, describe_message};
use std::collections::BTreeMap;

impl InteractionEnv {
    /// `process-ready [ID...]`: every listed node (all when none is listed) handles one Ready.
    pub(super) fn process_ready_cmd(&mut self, cmd: &mut Command) -> CmdResult {
        let mut ids = take_ids(cmd);
        if ids.is_empty() {
            ids = self.nodes.keys().copied().collect();
        }
        for id in ids {
            if self.node_mut(id)?.raw.has_ready() {
                self.process_ready(id)?;
            } else {
                self.out.line(&format!("> {id} has no Ready"));
            }
        }
        Ok(())
    }

    /// Node `id` handles one Ready, printed under a `> ID handling Ready` header: persist its
    /// snapshot, entries and hard state; apply its committed entries (and conf changes); queue its
    /// messages (those that may leave at once, then those that wait for the persist); advance,
    /// and handle what the advance made available.
    pub(super) fn process_ready(&mut self, id: u64) -> CmdResult {
        self.out.line(&format!("> {id} handling Ready"));
        self.out.indent += 1;
        let result = self.handle_ready(id);
        self.out.indent -= 1;
        result
    }

    fn handle_ready(&mut self, id: u64) -> CmdResult {
        let node = self
            .nodes
            .get_mut(&id)
            .ok_or_else(|| format!("no node {id}"))?;
        let out = &mut self.out;
        let mut rd = node
            .raw
            .ready()
            .map_err(|e| format!("node {id}: ready: {e}"))?;
        out.line(&describe_ready(&rd));
        self.in_flight.extend(rd.take_messages());
        if !rd.snapshot().is_empty() {
            node.restore(rd.snapshot(), out)?;
        }
        {
            let mut store = node.storage.wl();
            store
                .append(rd.entries())
                .map_err(|e| format!("node {id}: persisting entries: {e}"))?;
            if let Some(hs) = rd.hard_state() {
                store.set_hardstate(*hs);
            }
        }
        self.in_flight.extend(rd.take_persisted_messages());
        let committed = rd.take_committed_entries();
        node.apply(&committed, out, &mut self.applied_log)?;
        let mut light = node
            .raw
            .advance(rd)
            .map_err(|e| format!("node {id}: advance: {e}"))?;
        if let Some(commit) = light.commit_index() {
            node.storage.wl().mut_hard_state().commit = commit;
        }
        if let Some(text) = describe_light_ready(&light) {
            out.line("LightReady:");
            out.indent += 1;
            out.line(&text);
            out.indent -= 1;
        }
        self.in_flight.extend(light.take_messages());
        let committed = light.take_committed_entries();
        node.apply(&committed, out, &mut self.applied_log)?;
        node.raw.advance_apply();
        Ok(())
    }
}

/// What an advance made available, in the style of `describe_ready`; `None` when nothing.
fn describe_light_ready(light: &LightReady) -> Option<String> {
    let mut lines = Vec::new();
    if let Some(commit) = light.commit_index() {
        lines.push(format!("Commit:{commit}"));
    }
    if !light.committed_entries().is_empty() {
        lines.push("CommittedEntries:".to_string());
        lines.extend(
            light
                .committed_entries()
                .iter()
                .map(|e| format!("  {}", describe_entry(e))),
        );
    }
    if !light.messages().is_empty() {
        lines.push("Messages:".to_string());
        lines.extend(
            light
                .messages()
                .iter()
                .map(|m| format!("  {}", describe_message(m))),
        );
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

impl Node {
    /// Applies committed entries in order: payloads go to the state machine, conf changes to the
    /// node (and the storage, which keeps the membership as of the applied index). Checks that no
    /// index is skipped or applied twice, and that every node applies the same entry at an index
    /// (state machine safety, §5.4.3).
    fn apply(
        &mut self,
        entries: &[Entry],
        out: &mut Output,
        applied_log: &mut BTreeMap<u64, Entry>,
    ) -> CmdResult {
        let id = self.raw.raft.id;
        for e in entries {
            if e.index != self.applied_index + 1 {
                return Err(format!(
                    "node {id} was handed {} to apply after applying up to {}",
                    describe_entry(e),
                    self.applied_index
                ));
            }
            match applied_log.get(&e.index) {
                Some(first) if first != e => {
                    return Err(format!(
                        "state machine safety broken: node {id} applied {} where another node \
                         applied {}",
                        describe_entry(e),
                        describe_entry(first)
                    ))
                }
                Some(_) => {}
                None => {
                    applied_log.insert(e.index, e.clone());
                }
            }
            self.applied_index = e.index;
            if e.entry_type == EntryType::EntryNormal as i32 && !e.data.is_empty() {
                self.applied.push(e.clone());
            }
            let Some(cc) = decode_conf_change(e) else {
                continue;
            };
            let cc =
                cc.map_err(|err| format!("node {id}: conf change entry {}: {err}", e.index))?;
            match self.raw.apply_conf_change(&cc) {
                Ok(cs) => {
                    out.line(&format!(
                        "applied conf change {}/{} -> {}",
                        e.term,
                        e.index,
                        describe_conf_state(&cs)
                    ));
                    self.storage.wl().set_conf_state(cs.clone());
                    self.conf_history.push((e.index, cs));
                }
                Err(err) => out.error(&format!(
                    "conf change {}/{} not applied: {err}",
                    e.term, e.index
                )),
            }
        }
        Ok(())
    }

    /// Installs a snapshot from the leader: storage takes it and the state machine is replaced by
    /// its data.
    fn restore(&mut self, snapshot: &Snapshot, out: &mut Output) -> CmdResult {
        let id = self.raw.raft.id;
        self.storage
            .wl()
            .apply_snapshot(snapshot.clone())
            .map_err(|e| format!("node {id}: installing the snapshot: {e}"))?;
        let state = Message::decode(snapshot.data.clone())
            .map_err(|e| format!("node {id}: the snapshot's data does not decode: {e}"))?;
        let meta = snapshot.metadata.clone().unwrap_or_default();
        self.applied = state.entries;
        self.applied_index = meta.index;
        self.conf_history = vec![(meta.index, meta.conf_state.unwrap_or_default())];
        let entries: Vec<String> = self.applied.iter().map(describe_entry).collect();
        out.line(&format!(
            "restored the state machine from the snapshot at index {}: [{}]",
            meta.index,
            entries.join(", ")
        ));
        Ok(())
    }
}
