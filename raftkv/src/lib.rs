//! raftkv: a replicated key-value server on the Raft core, speaking the Redis protocol (RESP2).
//!
//! One node per process. Each node listens on one TCP address for Redis clients (`redis-cli`,
//! `redis-benchmark`) and for its peers, and keeps its Raft state in a data directory (the
//! `storage-disk` crate: a segment log, a checkpoint and snapshot files, fsync'd). The pieces:
//!
//! - [`event`]: what the node's loop reacts to, sent by the transport and the client connections
//!   (its own module, so that neither depends on the node).
//! - [`node`]: the Ready loop: one thread owns the `RawNode`, the storage and the state machine;
//!   writes become proposals (forwarded to the leader by Raft, or redirected), reads go through
//!   ReadIndex, a write is acknowledged once applied on the node that took it.
//! - [`storage`]: [`storage::NodeStorage`], the durable `raft_core::Storage` (the `storage-disk`
//!   crate, plus the directory lock and the latest snapshot in memory).
//! - [`transport`]: peer messages as length-prefixed protobuf frames over TCP; [`peer_auth`]: the
//!   cluster secret that peers prove they know.
//! - [`server`]: the I/O thread (an event loop that runs every client and peer connection) and
//!   the listener; RESP clients and peers share the port. [`client`]: a client connection
//!   (pipelined commands to the node in batches, replies in order, bounded buffers);
//!   [`client_feed`]: the batches of one turn of the event loop reach the node as one event.
//! - [`resp`] and [`command`]: the protocol and the command table; [`connection`]: a client
//!   connection's own state and the commands answered from it (`HELLO`, `CLIENT`, `CONFIG`...).
//! - [`kv`]: the replicated state machine (keys expire by a clock that only the log moves, never
//!   by a replica's own) and its snapshot encoding; [`cow_map`]: the map, shared copy-on-write
//!   with the snapshot thread; [`session`]: exactly-once writes when a node proposes a write
//!   again.
//! - [`cli`] and [`cluster`]: the `raftkv` binary's command line and `raftkv cluster`.

pub mod cli;
pub mod client;
pub mod client_feed;
pub mod cluster;
pub mod command;
pub mod connection;
pub mod cow_map;
pub mod event;
pub mod kv;
pub mod node;
pub mod peer_auth;
pub mod resp;
pub mod server;
pub mod session;
pub mod storage;
pub mod transport;

use std::net::TcpListener;
use std::sync::mpsc;

use node::{Node, NodeConfig, NodeError};

/// Runs a node until the process ends: opens or bootstraps its storage, listens on its address
/// (the connections run on the I/O thread), and runs the Ready loop on the calling thread.
pub fn run_node(config: NodeConfig, logger: slog::Logger) -> Result<(), NodeError> {
    let listener = TcpListener::bind(&config.addr)?;
    let (events_tx, events_rx) = mpsc::channel();
    let secret = config.cluster_secret.clone();
    let limits = server::ClientLimits {
        max_clients: config.max_clients,
        idle_timeout: config.client_idle_timeout,
    };
    let io = server::IoThread::start()?;
    let node = Node::new(config, events_tx.clone(), io.handle(), logger.clone())?;
    server::spawn_listener(&io.handle(), listener, events_tx, secret, limits, logger)?;
    node.run(events_rx)
}
