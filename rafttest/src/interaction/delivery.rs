//! Moving messages: `deliver-msgs`, `stabilize`, and the `partition` / `heal` faults.

use super::{opt_arg, opt_args, take_ids, CmdResult, Command, InteractionEnv};
use raft_core::eraftpb::{Message, MessageType};
use raft_proto::describe_message;
use std::collections::BTreeMap;

/// More rounds than any transcript needs: a `stabilize` that has not settled by then is looping.
const MAX_STABILIZE_ROUNDS: usize = 1000;

/// Which queued messages a delivery takes.
struct Filter {
    /// Only these types (all when `None`).
    types: Option<Vec<MessageType>>,
    /// Drop them instead of delivering them.
    drop: bool,
}

impl Filter {
    fn matches(&self, m: &Message, to: u64) -> bool {
        m.to == to
            && self
                .types
                .as_ref()
                .is_none_or(|types| types.iter().any(|t| *t as i32 == m.msg_type))
    }
}

impl InteractionEnv {
    /// `deliver-msgs [ID...] [type=(..)] [drop=true]`.
    pub(super) fn deliver_msgs(&mut self, cmd: &mut Command) -> CmdResult {
        let mut ids = take_ids(cmd);
        let types = match opt_args::<String>(cmd, "type")? {
            None => None,
            Some(names) => Some(
                names
                    .iter()
                    .map(|name| {
                        MessageType::from_str_name(name)
                            .ok_or_else(|| format!("type={name}: no such message type"))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let drop = opt_arg::<bool>(cmd, "drop")?.unwrap_or(false);
        if ids.is_empty() {
            ids = self.in_flight.iter().map(|m| m.to).collect();
            ids.sort_unstable();
            ids.dedup();
        }
        let filter = Filter { types, drop };
        for id in ids {
            self.deliver_to(id, &filter);
        }
        Ok(())
    }

    /// Takes the queued messages to `to` that `filter` selects, in the order they were sent, and
    /// delivers or drops each, printing it. Returns how many there were.
    fn deliver_to(&mut self, to: u64, filter: &Filter) -> usize {
        let (taken, kept): (Vec<Message>, Vec<Message>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|m| filter.matches(m, to));
        self.in_flight = kept;
        let count = taken.len();
        for m in taken {
            let text = describe_message(&m);
            if filter.drop {
                self.out.line(&format!("dropped: {text}"));
                continue;
            }
            if self.side(m.from) != self.side(m.to) {
                self.out.line(&format!("dropped (partition): {text}"));
                continue;
            }
            let Some(node) = self.nodes.get_mut(&m.to) else {
                self.out.line(&format!("dropped (no node {to}): {text}"));
                continue;
            };
            self.out.line(&text);
            if let Err(e) = node.raw.step(m) {
                self.out.indent += 1;
                self.out.error(&format!("refused: {e}"));
                self.out.indent -= 1;
            }
        }
        count
    }

    /// `stabilize [ID...]`: until nothing changes, every listed node (all when none is listed)
    /// handles its Ready, then receives the messages queued for it. Messages to nodes outside the
    /// list stay queued.
    pub(super) fn stabilize(&mut self, cmd: &mut Command) -> CmdResult {
        let mut ids = take_ids(cmd);
        if ids.is_empty() {
            ids = self.nodes.keys().copied().collect();
        }
        for id in &ids {
            self.node_mut(*id)?;
        }
        let all = Filter {
            types: None,
            drop: false,
        };
        for _ in 0..MAX_STABILIZE_ROUNDS {
            let mut done = true;
            for &id in &ids {
                if self.node_mut(id)?.raw.has_ready() {
                    self.process_ready(id)?;
                    done = false;
                }
            }
            for &id in &ids {
                if self.in_flight.iter().any(|m| m.to == id) {
                    self.out.line(&format!("> {id} receiving messages"));
                    self.out.indent += 1;
                    self.deliver_to(id, &all);
                    self.out.indent -= 1;
                    done = false;
                }
            }
            if done {
                return Ok(());
            }
        }
        Err(format!(
            "the nodes did not settle within {MAX_STABILIZE_ROUNDS} rounds"
        ))
    }

    /// The side of the partition node `id` is on.
    fn side(&self, id: u64) -> u64 {
        self.sides.get(&id).copied().unwrap_or(0)
    }

    /// `partition ID...`: the listed nodes go to a side of their own; prints every side.
    pub(super) fn partition(&mut self, cmd: &mut Command) -> CmdResult {
        let ids = take_ids(cmd);
        if ids.is_empty() {
            return Err("name the nodes to cut off".to_string());
        }
        let side = self.next_side;
        self.next_side += 1;
        for id in ids {
            self.node_mut(id)?;
            self.sides.insert(id, side);
        }
        let mut by_side: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for &id in self.nodes.keys() {
            by_side.entry(self.side(id)).or_default().push(id);
        }
        let mut groups: Vec<Vec<u64>> = by_side.into_values().collect();
        groups.sort();
        let text: Vec<String> = groups
            .iter()
            .map(|g| {
                let ids: Vec<String> = g.iter().map(u64::to_string).collect();
                format!("[{}]", ids.join(" "))
            })
            .collect();
        self.out.line(&format!("sides: {}", text.join(" | ")));
        Ok(())
    }

    /// `heal`: every node is on one side again.
    pub(super) fn heal(&mut self) -> CmdResult {
        self.sides.clear();
        Ok(())
    }
}
