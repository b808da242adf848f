//! A pure state-machine Raft consensus core.
#![cfg_attr(not(test), warn(missing_docs))]

pub mod config;
pub mod error;
pub mod log;
pub mod quorum;
pub mod raft;
pub mod raw_node;
pub mod storage;
pub mod tracker;

pub use config::{Config, ReadOnlyOption};
pub use error::{Error, Result, StorageError};
pub use raft::{Raft, SoftState, StateRole, INVALID_ID};
pub use raft_proto::eraftpb;
pub use raw_node::{LightReady, RawNode, Ready};
pub use storage::{RaftState, Storage, NO_LIMIT};
