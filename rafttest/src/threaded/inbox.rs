//! A node's inbox thread: it steps what the network delivers into the node, through a
//! [`NodeHandle`], while the node's driver thread handles its Readys; a paused node's deliveries
//! wait here.

use super::gate::Gate;
use raft_core::eraftpb::Message;
use raft_core::SnapshotStatus;
use raft_node::NodeHandle;
use std::collections::VecDeque;
use std::sync::mpsc::Receiver;

/// How many deliveries a paused node holds for later; the ones beyond are lost, as a full socket
/// buffer would lose them.
const HELD_CAP: usize = 4096;

/// What the network delivers to a node.
pub(crate) enum Delivery {
    /// A message from a peer.
    Msg(Message),
    /// The transport's verdict on a snapshot this node sent to the given peer.
    SnapshotStatus(u64, SnapshotStatus),
}

/// What a node's inbox thread receives.
pub(crate) enum Input {
    /// From the network.
    Delivery(Delivery),
    /// The node was resumed: hand over what waited.
    Resume,
    /// Leave the thread.
    Stop,
}

/// Runs a node's inbox thread until `Stop` (or until every sender is gone).
pub(crate) fn run(inbox: Receiver<Input>, node: NodeHandle, gate: &Gate) {
    let mut held: VecDeque<Delivery> = VecDeque::new();
    for input in inbox {
        match input {
            Input::Delivery(d) if held.len() < HELD_CAP => held.push_back(d),
            Input::Delivery(_) | Input::Resume => {}
            Input::Stop => break,
        }
        // In arrival order, unless paused.
        if let Some(_open) = gate.enter() {
            for d in held.drain(..) {
                deliver(&node, d);
            }
        }
    }
}

fn deliver(node: &NodeHandle, d: Delivery) {
    match d {
        // Refusals of impossible messages are part of the protocol: the node stays unchanged.
        // A stopped node refuses everything; its driver reports why.
        Delivery::Msg(m) => {
            let _ = node.step(m);
        }
        Delivery::SnapshotStatus(to, status) => {
            let _ = node.report_snapshot(to, status);
        }
    }
}
