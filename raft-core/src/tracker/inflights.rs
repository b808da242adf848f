//! [`Inflights`]: the window of append messages sent to one follower and not yet acknowledged.

/// A ring buffer of the last index and payload bytes carried by each in-flight append, oldest
/// first. The window is full when it holds `capacity` messages or, with a byte limit, when the
/// bytes in flight reach it (etcd-io/raft `MaxInflightBytes`).
///
/// The buffer is allocated on first use and grows up to `capacity`, so an idle follower costs nothing;
/// [`Inflights::reset`] releases it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inflights {
    start: usize,
    count: usize,
    capacity: usize,
    bytes: u64,
    max_bytes: u64,
    buffer: Vec<(u64, u64)>,
}

/// An emptied window keeps a buffer of up to this many slots (steady replication reuses it) and
/// releases a larger one.
const KEEP_EMPTY_BUFFER: usize = 32;

impl Default for Inflights {
    fn default() -> Self {
        Inflights::new(0)
    }
}

impl Inflights {
    /// An empty window that holds at most `capacity` messages.
    pub fn new(capacity: usize) -> Inflights {
        Inflights {
            start: 0,
            count: 0,
            capacity,
            bytes: 0,
            max_bytes: crate::storage::NO_LIMIT,
            buffer: Vec::new(),
        }
    }

    /// Also limits the payload bytes in flight to `max_bytes` (`NO_LIMIT` for none). One message
    /// is always allowed, however large, so replication cannot stall on a big entry.
    pub fn set_max_bytes(&mut self, max_bytes: u64) {
        self.max_bytes = max_bytes;
    }

    /// Whether no more messages may be sent.
    pub fn full(&self) -> bool {
        self.count >= self.capacity || (self.count > 0 && self.bytes >= self.max_bytes)
    }

    /// The payload bytes in flight.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The number of messages in flight.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The most messages the window holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records a message whose last entry is `last_index`, carrying `bytes` of payload. Indexes
    /// must be added in increasing order. Returns false (and records nothing) when the window is
    /// full.
    pub fn add(&mut self, last_index: u64, bytes: u64) -> bool {
        if self.full() {
            return false;
        }
        if self.count == self.buffer.len() {
            self.grow();
        }
        let slot = (self.start + self.count) % self.buffer.len();
        self.buffer[slot] = (last_index, bytes);
        self.count += 1;
        self.bytes = self.bytes.saturating_add(bytes);
        true
    }

    fn grow(&mut self) {
        // Double, starting at 4 slots, but never past the capacity (which may be below 4).
        let new_len = (self.buffer.len() * 2).max(4).min(self.capacity.max(1));
        let mut buffer = Vec::with_capacity(new_len);
        for i in 0..self.count {
            buffer.push(self.buffer[(self.start + i) % self.buffer.len()]);
        }
        buffer.resize(new_len, (0, 0));
        self.buffer = buffer;
        self.start = 0;
    }

    /// Frees every message whose last index is `<= to` (they were acknowledged).
    pub fn free_to(&mut self, to: u64) {
        while self.count > 0 && self.buffer[self.start].0 <= to {
            self.bytes = self.bytes.saturating_sub(self.buffer[self.start].1);
            self.start = (self.start + 1) % self.buffer.len();
            self.count -= 1;
        }
        if self.count == 0 {
            self.start = 0;
            self.bytes = 0;
            if self.buffer.len() > KEEP_EMPTY_BUFFER {
                // A burst grew the buffer; give it back now that nothing is in flight.
                self.buffer = Vec::new();
            }
        }
    }

    /// Frees the oldest message.
    pub fn free_first_one(&mut self) {
        if self.count > 0 {
            let first = self.buffer[self.start].0;
            self.free_to(first);
        }
    }

    /// Empties the window and releases its buffer.
    pub fn reset(&mut self) {
        self.start = 0;
        self.count = 0;
        self.bytes = 0;
        self.buffer = Vec::new();
    }
}

#[cfg(test)]
#[path = "inflights_tests.rs"]
mod tests;
