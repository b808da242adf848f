//! [`MajorityConfig`]: a set of voters decided by simple majority.

use super::{AckedIndexer, VoteResult};

/// The voters of one configuration, sorted by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MajorityConfig {
    voters: Vec<u64>,
}

/// Configurations up to this size compute the committed index without a heap allocation.
const STACK_VOTERS: usize = 16;

impl MajorityConfig {
    /// A configuration of the given voters (duplicates are removed).
    pub fn new(voters: impl IntoIterator<Item = u64>) -> MajorityConfig {
        let mut voters: Vec<u64> = voters.into_iter().collect();
        voters.sort_unstable();
        voters.dedup();
        MajorityConfig { voters }
    }

    /// The voter ids, sorted.
    pub fn ids(&self) -> &[u64] {
        &self.voters
    }

    /// Whether `id` is a voter.
    #[inline]
    pub fn contains(&self, id: u64) -> bool {
        // Small configurations (the usual 3 or 5) are scanned: cheaper than a binary search.
        if self.voters.len() <= 8 {
            self.voters.contains(&id)
        } else {
            self.voters.binary_search(&id).is_ok()
        }
    }

    /// The number of voters.
    pub fn len(&self) -> usize {
        self.voters.len()
    }

    /// Whether there are no voters.
    pub fn is_empty(&self) -> bool {
        self.voters.is_empty()
    }

    /// Adds a voter.
    pub fn insert(&mut self, id: u64) {
        if let Err(pos) = self.voters.binary_search(&id) {
            self.voters.insert(pos, id);
        }
    }

    /// Removes a voter.
    pub fn remove(&mut self, id: u64) {
        if let Ok(pos) = self.voters.binary_search(&id) {
            self.voters.remove(pos);
        }
    }

    /// The largest index acknowledged by a majority. An unknown voter counts as having acknowledged 0.
    /// By convention an empty configuration returns `u64::MAX`, so that in a joint configuration the
    /// other half alone decides.
    pub fn committed_index(&self, acked: &impl AckedIndexer) -> u64 {
        let n = self.voters.len();
        if n == 0 {
            return u64::MAX;
        }
        let mut stack = [0u64; STACK_VOTERS];
        let mut heap = Vec::new();
        let indexes: &mut [u64] = if n <= STACK_VOTERS {
            &mut stack[..n]
        } else {
            heap.resize(n, 0);
            &mut heap
        };
        for (slot, id) in indexes.iter_mut().zip(&self.voters) {
            *slot = acked.acked_index(*id).unwrap_or(0);
        }
        indexes.sort_unstable();
        // Sorted ascending, the entry at n - (n/2 + 1) is acknowledged by n/2 + 1 voters.
        indexes[n - (n / 2 + 1)]
    }

    /// The election outcome given each voter's vote (`None`: not voted yet). An empty configuration
    /// wins by convention.
    pub fn vote_result(&self, vote: impl Fn(u64) -> Option<bool>) -> VoteResult {
        if self.voters.is_empty() {
            return VoteResult::Won;
        }
        let (mut granted, mut missing) = (0, 0);
        for id in &self.voters {
            match vote(*id) {
                Some(true) => granted += 1,
                Some(false) => {}
                None => missing += 1,
            }
        }
        let quorum = self.voters.len() / 2 + 1;
        if granted >= quorum {
            VoteResult::Won
        } else if granted + missing >= quorum {
            VoteResult::Pending
        } else {
            VoteResult::Lost
        }
    }
}
