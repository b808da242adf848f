//! Test harness for the Raft core: an in-process network of nodes that delivers messages in one
//! thread, with faults (dropped links, isolated nodes, ignored message types), used by the
//! integration tests, and the deterministic simulator ([`sim`]) that `raft-sim` runs.

pub mod interaction;
pub mod multisim;
pub mod network;
pub mod sim;
pub mod threaded;

pub use network::{Network, Node};
