//! Linearizable reads (issue #5, thesis §6.4): `RawNode::read_index` with `ReadOnlyOption::Safe`
//! (a heartbeat round acknowledged by a quorum, numbered by the leader) and `LeaseBased` (answered
//! at once while the leader lease holds, by a round otherwise), on the leader and forwarded by
//! followers; the lease's expiry and renewal, its refusal during a transfer and across terms; the
//! wait for the leader's first commit in its term; stale and partitioned leaders; duplicated,
//! retried, lost and forged acknowledgements (including the etcd-io/etcd#20418 scenario); reads
//! across a leader change and in a joint configuration; and the refusals (no leader, candidates,
//! malformed requests, a removed leader).
//!
//! Each test runs a `rafttest::Network` and, where it needs to hold messages back, a pump that
//! returns the held messages so the test decides when (or whether) they are delivered.

mod basic;
mod commit_fast_forward;
mod first_commit;
mod joint;
mod leader_change;
mod lease;
mod refusals;
mod rounds;
mod stale_leader;
mod support;
