//! [`JointConfig`]: two majority configurations that must both agree (joint consensus, thesis §4.3).

use super::{AckedIndexer, MajorityConfig, VoteResult};

/// The incoming and outgoing voter sets. Outside a joint configuration the outgoing set is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JointConfig {
    /// The configuration being moved to (or the only one).
    pub incoming: MajorityConfig,
    /// The configuration being left; empty when not joint.
    pub outgoing: MajorityConfig,
}

impl JointConfig {
    /// A non-joint configuration of the given voters.
    pub fn new(voters: impl IntoIterator<Item = u64>) -> JointConfig {
        JointConfig {
            incoming: MajorityConfig::new(voters),
            outgoing: MajorityConfig::default(),
        }
    }

    /// Whether this is a joint configuration.
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Whether `id` is a voter in either half.
    #[inline]
    pub fn contains(&self, id: u64) -> bool {
        self.incoming.contains(id) || self.outgoing.contains(id)
    }

    /// Every voter of either half, sorted, without duplicates.
    pub fn ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .incoming
            .ids()
            .iter()
            .chain(self.outgoing.ids())
            .copied()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The largest index acknowledged by a majority of both halves.
    pub fn committed_index(&self, acked: &impl AckedIndexer) -> u64 {
        self.incoming
            .committed_index(acked)
            .min(self.outgoing.committed_index(acked))
    }

    /// The election outcome: won only if both halves are won, lost if either is lost.
    pub fn vote_result(&self, vote: impl Fn(u64) -> Option<bool>) -> VoteResult {
        let incoming = self.incoming.vote_result(&vote);
        let outgoing = self.outgoing.vote_result(&vote);
        match (incoming, outgoing) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }
}
