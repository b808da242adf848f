//! Size measures of entries used by the core's flow-control limits.

use prost::Message as _;

use crate::eraftpb::Entry;

/// The protobuf encoded length of `e`: the measure of "size" for `max_size_per_msg` and friends, so
/// that a limit bounds what actually goes on the wire (framing inside a `Message` adds a few bytes).
pub fn entry_size(e: &Entry) -> u64 {
    e.encoded_len() as u64
}

/// The application payload of `e` (`data` plus `context`): the measure for the uncommitted-size limit,
/// which is about what proposers put in, independent of term/index overhead.
pub fn payload_size(e: &Entry) -> u64 {
    (e.data.len() + e.context.len()) as u64
}

impl crate::eraftpb::Snapshot {
    /// Whether this is the empty snapshot (no metadata, or index 0): what a `Ready` without a
    /// snapshot holds.
    pub fn is_empty(&self) -> bool {
        self.metadata.as_ref().is_none_or(|m| m.index == 0)
    }
}

/// `ConfState::from((voters, learners))`, as in raft-rs: a membership from two lists of node ids.
impl<V, L> From<(V, L)> for crate::eraftpb::ConfState
where
    V: IntoIterator<Item = u64>,
    L: IntoIterator<Item = u64>,
{
    fn from((voters, learners): (V, L)) -> Self {
        crate::eraftpb::ConfState {
            voters: voters.into_iter().collect(),
            learners: learners.into_iter().collect(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn sizes() {
        let e = Entry {
            term: 3,
            index: 8,
            data: Bytes::from_static(b"abc"),
            context: Bytes::from_static(b"xy"),
            ..Default::default()
        };
        // term (2) + index (2) + data (2 + 3) + context (2 + 2)
        assert_eq!(entry_size(&e), 13);
        assert_eq!(payload_size(&e), 5);
        assert_eq!(entry_size(&Entry::default()), 0);
        assert_eq!(payload_size(&Entry::default()), 0);
    }

    #[test]
    fn conf_state_from_voters_and_learners() {
        let cs = crate::eraftpb::ConfState::from((vec![1, 2, 3], [4]));
        assert_eq!(cs.voters, vec![1, 2, 3]);
        assert_eq!(cs.learners, vec![4]);
        assert!(cs.voters_outgoing.is_empty() && cs.learners_next.is_empty());
        assert!(!cs.auto_leave);
    }
}
