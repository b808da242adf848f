//! Wire and protocol compatibility with raft-rs 0.7: mixed clusters of our nodes and raft-rs nodes
//! that exchange only protobuf bytes elect leaders of either library, replicate and apply identical
//! logs, survive leadership changes between libraries, partitions, lagging and divergent followers,
//! and forward proposals; and every wire type decodes field for field in the other library.
//!
//! One module per scenario area; [`support`] holds the helpers they share.

mod byte_level;
mod forwarding;
mod heartbeat_commit;
mod leaders;
mod leadership_changes;
mod membership;
mod pre_vote;
mod quiescence;
mod reads_and_transfer;
mod rejection_hints;
mod support;
