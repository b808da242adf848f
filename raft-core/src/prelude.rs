//! Everything an application needs from one `use raft_core::prelude::*;`, as raft-rs's
//! `raft::prelude`: the wire types, the node, its configuration and storage, and the traits whose
//! methods the wire types need (prost's `Message` for `encode`/`decode`, [`ConfChangeI`] for
//! either kind of membership change). The traits come in unnamed (`as _`), so they do not clash
//! with the wire type `Message`. `raft_core::Result` is left out, so as not to hide the
//! standard `Result`.
//!
//! ```
//! use raft_core::prelude::*;
//!
//! let cs = ConfState::from((vec![1, 2, 3], vec![]));
//! let bytes = cs.encode_to_vec(); // prost's `Message` trait, from the prelude
//! assert_eq!(ConfState::decode(&bytes[..]).unwrap(), cs);
//! let storage = storage_mem::MemStorage::new_with_conf_state(cs);
//! let logger = slog::Logger::root(slog::Discard, slog::o!());
//! let node = RawNode::new(&Config::new(1), storage, &logger).unwrap();
//! assert_eq!(node.raft.state, StateRole::Follower);
//! ```

pub use raft_proto::eraftpb::{
    ConfChange, ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, ConfState,
    Entry, EntryType, HardState, Message, MessageType, Snapshot, SnapshotMetadata,
};
pub use raft_proto::prost::Message as _;
pub use raft_proto::ConfChangeI;

pub use crate::config::{Config, ReadOnlyOption};
pub use crate::error::{Error, StorageError};
pub use crate::raft::{Raft, SoftState, StateRole, INVALID_ID};
pub use crate::raw_node::{LightReady, RawNode, Ready, SnapshotStatus};
pub use crate::read_only::ReadState;
pub use crate::status::{BasicStatus, Status};
pub use crate::storage::{RaftState, Storage, NO_LIMIT};
pub use crate::tracker::{Progress, ProgressState};
