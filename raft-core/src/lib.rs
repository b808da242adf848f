//! A pure state-machine Raft consensus core.
#![cfg_attr(not(test), warn(missing_docs))]

pub mod config;
pub mod error;
pub mod storage;

pub use config::{Config, ReadOnlyOption};
pub use error::{Error, Result, StorageError};
pub use raft_proto::eraftpb;
pub use storage::{RaftState, Storage, NO_LIMIT};
