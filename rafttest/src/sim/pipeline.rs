//! The application's pipeline for each node's Readys: taking them (synchronously, or pipelined
//! with `on_persist_ready` or `advance_append`), writing them to the (simulated) disk, sending
//! what waited for the write, applying committed entries and serving reads, with the checks of
//! what each step hands out. A read the node's storage fails is retried later; corruption it
//! reports stops the node (see `damage`).

use super::durability;
use super::node::{check_must_sync, Unpersisted};
use super::options::PlantedBug;
use super::store::{classify, ReadFault};
use super::Sim;
use raft_core::proposal::ProposalOutcome;
use rand::RngExt;

impl Sim {
    /// Takes a Ready from a node: messages that may leave at once go out, the rest waits for the
    /// (simulated) disk.
    pub(super) fn ready_someone(&mut self) -> Result<(), String> {
        let ids = self.up_ids();
        let Some(id) = self.pick(&ids) else {
            return Ok(());
        };
        self.take_ready(id)
    }

    pub(super) fn take_ready(&mut self, id: u64) -> Result<(), String> {
        if self.nodes[&id].sync {
            return self.handle_ready_sync(id);
        }
        // A pipeline this deep must drain one write before it takes more.
        if self.nodes[&id].unpersisted.len() >= self.f.async_depth {
            return self.persist(id);
        }
        let Some(mut rd) = self.next_ready(id)? else {
            return Ok(());
        };
        let node = self.nodes.get_mut(&id).expect("known id");
        let raw = node.raw.as_mut().expect("checked above");
        check_must_sync(id, &mut node.last_hard_state, &rd)?;
        self.canonical.on_ready(id, rd.entries())?;
        let msgs = rd.take_messages();
        let snapshot = (!rd.snapshot().is_empty()).then(|| rd.snapshot().clone());
        let mut unpersisted = Unpersisted {
            number: rd.number(),
            snapshot,
            entries: rd.take_shared_entries(),
            hard_state: rd.hard_state().copied(),
            persisted_msgs: rd.take_persisted_messages(),
            ready: None,
            must_sync: rd.must_sync(),
        };
        let committed = rd.take_committed_entries();
        let read_states = rd.take_read_states();
        if node.advance_append {
            unpersisted.ready = Some(rd);
        } else {
            raw.advance_append_async(rd);
        }
        durability::check_handed_out(id, node, &committed)?;
        self.canonical
            .check(id, "hands out for applying", &committed)?;
        let early = if self.opts.planted_bug == Some(PlantedBug::AckBeforePersist) {
            std::mem::take(&mut unpersisted.persisted_msgs)
        } else {
            Vec::new()
        };
        node.unpersisted.push_back(unpersisted);
        node.to_apply.extend(committed);
        node.reads.extend(read_states);
        self.count("ready");
        self.log(format!("node {id} took a Ready ({} messages)", msgs.len()));
        self.send(msgs)?;
        self.send(early)
    }

    /// A synchronous application: one Ready handled whole (send, persist, send what waited,
    /// apply, `advance`, then the LightReady).
    fn handle_ready_sync(&mut self, id: u64) -> Result<(), String> {
        let Some(mut rd) = self.next_ready(id)? else {
            return Ok(());
        };
        let node = self.nodes.get_mut(&id).expect("known id");
        check_must_sync(id, &mut node.last_hard_state, &rd)?;
        self.canonical.on_ready(id, rd.entries())?;
        let msgs = rd.take_messages();
        let snapshot = (!rd.snapshot().is_empty()).then(|| rd.snapshot().clone());
        let entries = rd.take_shared_entries();
        let hard_state = rd.hard_state().copied();
        let persisted_msgs = rd.take_persisted_messages();
        let committed = rd.take_committed_entries();
        let read_states = rd.take_read_states();
        node.reads.extend(read_states);
        durability::check_handed_out(id, node, &committed)?;
        self.canonical
            .check(id, "hands out for applying", &committed)?;
        let written: &[raft_core::eraftpb::Entry] = entries.as_deref().map_or(&[], |e| &e[..]);
        let result = node.write(snapshot.as_ref(), written, hard_state, rd.must_sync());
        if let Some(why) = node.disk_failed() {
            // Nothing of this Ready leaves: the node stops, as one must when an fsync fails.
            let why = why.to_string();
            self.count("disk failure");
            return self.crash(id, &format!("when its disk failed ({why})"));
        }
        result.map_err(|e| format!("node {id}: persisting failed: {e}"))?;
        drop(entries);
        node.to_apply.extend(committed);
        let mut applied = node
            .apply_entries(usize::MAX)
            .map_err(|e| format!("node {id}: applying failed: {e}"))?;
        let raw = node.raw.as_mut().expect("checked above");
        let result = raw.advance(rd);
        if self.stop_if_corrupt(id)? {
            return Ok(());
        }
        let mut light = match result {
            Ok(light) => light,
            // The Ready counts as handled; what could not be read comes in a later Ready.
            Err(e) if classify(&e).is_some() => {
                self.count("read retried");
                raft_core::LightReady::default()
            }
            Err(e) => return Err(format!("node {id}: advance failed: {e}")),
        };
        let node = self.nodes.get_mut(&id).expect("known id");
        if let Some(commit) = light.commit_index() {
            durability::check_commit_written(id, &node.storage, commit)?;
            node.store_commit(commit);
        }
        let more = light.take_committed_entries();
        durability::check_handed_out(id, node, &more)?;
        self.canonical.check(id, "hands out for applying", &more)?;
        node.to_apply.extend(more);
        // A commit `advance` made as leader is checked while the node still leads: applying its
        // own removal next may end that.
        self.checker.check(&self.nodes, &self.lives)?;
        let node = self.nodes.get_mut(&id).expect("known id");
        applied.extend(
            node.apply_entries(usize::MAX)
                .map_err(|e| format!("node {id}: applying failed: {e}"))?,
        );
        if let Some(raw) = node.raw.as_mut() {
            raw.advance_apply();
        }
        let later = light.take_messages();
        self.canonical.check(id, "applies", &applied)?;
        for e in &applied {
            self.checker.on_apply(id, e.index, e.term, &e.data)?;
        }
        self.check_outcomes(id)?;
        self.count("ready");
        self.log(format!(
            "node {id} handled a Ready synchronously ({} + {} + {} messages)",
            msgs.len(),
            persisted_msgs.len(),
            later.len()
        ));
        self.send(msgs)?;
        self.send(persisted_msgs)?;
        self.send(later)?;
        self.serve_reads(id)
    }

    pub(super) fn persist_someone(&mut self) -> Result<(), String> {
        let ids: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.is_up() && !n.unpersisted.is_empty())
            .map(|(id, _)| *id)
            .collect();
        let Some(id) = self.pick(&ids) else {
            return self.ready_someone();
        };
        let weight = self.nodes[&id].disk_weight;
        if self.faults && self.rng.random_range(0.0..1.5) > weight {
            return Ok(()); // a slow disk
        }
        self.persist(id)
    }

    pub(super) fn persist(&mut self, id: u64) -> Result<(), String> {
        let node = self.nodes.get_mut(&id).expect("known id");
        let result = node.persist_one();
        if let Some(why) = node.disk_failed() {
            // The write was not acknowledged; the node stops, as one must when an fsync fails.
            let why = why.to_string();
            self.count("disk failure");
            return self.crash(id, &format!("when its disk failed ({why})"));
        }
        if self.stop_if_corrupt(id)? {
            return Ok(());
        }
        let node = self.nodes.get_mut(&id).expect("known id");
        let (msgs, committed) = result.map_err(|e| format!("node {id}: persisting failed: {e}"))?;
        durability::check_handed_out(id, node, &committed)?;
        self.canonical
            .check(id, "hands out for applying", &committed)?;
        node.to_apply.extend(committed);
        self.count("persist");
        self.log(format!(
            "node {id} persisted a Ready ({} messages)",
            msgs.len()
        ));
        self.check_stored_commit(id)?;
        self.check_outcomes(id)?;
        // A crash right after the write, before the messages that waited for it leave.
        if self.faults && self.opts.crashes && self.rng.random_bool(0.01 * self.f.chaos) {
            self.check()?;
            return self.crash(id, "after writing, before sending");
        }
        self.send(msgs)
    }

    /// Checks the proposal outcomes node `id` decided since the last call.
    fn check_outcomes(&mut self, id: u64) -> Result<(), String> {
        let node = self.nodes.get_mut(&id).expect("known id");
        for (value, outcome) in std::mem::take(&mut node.outcomes) {
            self.checker.on_outcome(id, value, outcome)?;
            self.count(match outcome {
                ProposalOutcome::Committed { .. } => "outcome committed",
                ProposalOutcome::Dropped { .. } => "outcome dropped",
                ProposalOutcome::Unknown { .. } => "outcome unknown",
                ProposalOutcome::NotAppended { .. } => "outcome not appended",
                ProposalOutcome::Unanswered { .. } => "outcome unanswered",
            });
            self.log(format!("node {id}: write #{value} {outcome:?}"));
        }
        Ok(())
    }

    pub(super) fn apply_someone(&mut self) -> Result<(), String> {
        let ids: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.is_up() && (!n.to_apply.is_empty() || !n.reads.is_empty()))
            .map(|(id, _)| *id)
            .collect();
        let Some(id) = self.pick(&ids) else {
            return Ok(());
        };
        let max = self.rng.random_range(1..=16);
        self.apply(id, max)
    }

    pub(super) fn apply(&mut self, id: u64, max: usize) -> Result<(), String> {
        let node = self.nodes.get_mut(&id).expect("known id");
        let applied = node
            .apply_some(max)
            .map_err(|e| format!("node {id}: applying failed: {e}"))?;
        self.canonical.check(id, "applies", &applied)?;
        for e in &applied {
            self.checker.on_apply(id, e.index, e.term, &e.data)?;
        }
        self.check_outcomes(id)?;
        self.count("apply");
        self.serve_reads(id)
    }

    /// Serves the node's reads whose index it has applied, checking linearizability: the read
    /// point is at or above every index committed anywhere when the read started (thesis §6.4).
    fn serve_reads(&mut self, id: u64) -> Result<(), String> {
        let node = self.nodes.get_mut(&id).expect("known id");
        let applied = node.sm.applied_index;
        let (ready, waiting): (Vec<_>, Vec<_>) =
            node.reads.drain(..).partition(|rs| rs.index <= applied);
        node.reads = waiting;
        for rs in ready {
            let Some(read_id) = rs.request_ctx.get(..8).and_then(|b| b.try_into().ok()) else {
                continue;
            };
            let read_id = u64::from_be_bytes(read_id);
            let Some(read) = self.reads.remove(&read_id) else {
                continue; // a duplicate answer
            };
            if read.node != id {
                return Err(format!(
                    "read {read_id} of node {} was answered on node {id}",
                    read.node
                ));
            }
            if rs.index < read.floor {
                return Err(format!(
                    "linearizability: read {read_id} on node {id} was answered at index {} \
                     below index {} committed before it started",
                    rs.index, read.floor
                ));
            }
            self.report.reads_served += 1;
        }
        Ok(())
    }

    /// The next Ready of node `id`, or `None` when it is down, has none, stopped on corruption
    /// found while building it, or its storage could not be read (the core changed nothing, and
    /// the next call hands out the same work): a transient read error is retried later. Any
    /// other error is a violation.
    fn next_ready(&mut self, id: u64) -> Result<Option<raft_core::Ready>, String> {
        let node = self.nodes.get_mut(&id).expect("known id");
        let Some(raw) = node.raw.as_mut() else {
            return Ok(None);
        };
        if !raw.has_ready() {
            return Ok(None);
        }
        let result = raw.ready();
        if self.stop_if_corrupt(id)? {
            return Ok(None);
        }
        match result {
            Ok(rd) => Ok(Some(rd)),
            Err(e) => match classify(&e) {
                Some(ReadFault::Transient(why)) => {
                    self.count("read retried");
                    self.log(format!("node {id}: ready() failed ({why}); retried later"));
                    Ok(None)
                }
                _ => Err(format!("node {id}: ready() failed: {e}")),
            },
        }
    }

    /// The hard state just written names a commit index the node's storage holds.
    fn check_stored_commit(&self, id: u64) -> Result<(), String> {
        let node = &self.nodes[&id];
        let commit = node.storage.rl().hard_state().commit;
        durability::check_commit_written(id, &node.storage, commit)
    }
}
