//! Quorum arithmetic: committed index and election outcome for majority and joint configurations.
//! Pure functions over the acknowledgements they are given; no knowledge of progress or messages.

mod describe;
mod joint;
mod majority;

pub use joint::JointConfig;
pub use majority::MajorityConfig;

/// The outcome of an election as far as the votes received so far tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteResult {
    /// Not decided yet: missing votes could still go either way.
    Pending,
    /// A quorum rejected.
    Lost,
    /// A quorum granted.
    Won,
}

/// Something that knows the highest index each voter has acknowledged.
pub trait AckedIndexer {
    /// The acknowledged index of voter `id`, or `None` when it is unknown.
    fn acked_index(&self, id: u64) -> Option<u64>;
}

#[cfg(test)]
mod tests;
