//! Comparing a storage's reads with `MemStorage`'s, shared by the differential tests.

use raft_core::eraftpb::SnapshotMetadata;
use raft_core::{Storage, NO_LIMIT};
use rand::rngs::Xoshiro256PlusPlus;
use rand::RngExt;
use storage_mem::MemStorage;

use super::kind;

/// Compares every read of the two storages, and their latest snapshots' metadata (the disk
/// storage's is `disk_snapshot`); `context` says which step it was.
pub fn assert_same_reads(
    mem: &MemStorage,
    disk: &impl Storage,
    disk_snapshot: &SnapshotMetadata,
    rng: &mut Xoshiro256PlusPlus,
    context: &str,
) {
    assert_eq!(
        mem.initial_state().unwrap(),
        disk.initial_state().unwrap(),
        "initial_state after {context}"
    );
    let first = mem.first_index().unwrap();
    let last = mem.last_index().unwrap();
    assert_eq!(
        first,
        disk.first_index().unwrap(),
        "first_index after {context}"
    );
    assert_eq!(
        last,
        disk.last_index().unwrap(),
        "last_index after {context}"
    );
    for index in first.saturating_sub(2)..=last + 2 {
        let (m, d) = (mem.term(index), disk.term(index));
        assert_eq!(kind(&m), kind(&d), "term({index}) after {context}");
        if let (Ok(m), Ok(d)) = (m, d) {
            assert_eq!(m, d, "term({index}) after {context}");
        }
    }
    for _ in 0..6 {
        let low = rng.random_range(first.saturating_sub(1)..=last + 1);
        let high = rng.random_range(low..=last + 2);
        let max_size = match rng.random_range(0..3) {
            0 => NO_LIMIT,
            1 => 0,
            _ => rng.random_range(0..2000),
        };
        let (m, d) = (
            mem.entries(low, high, max_size),
            disk.entries(low, high, max_size),
        );
        assert_eq!(
            kind(&m),
            kind(&d),
            "entries({low}, {high}, {max_size}) after {context}"
        );
        if let (Ok(m), Ok(d)) = (m, d) {
            assert_eq!(m, d, "entries({low}, {high}, {max_size}) after {context}");
        }
    }
    let snap_index = mem.rl().snapshot_metadata().index;
    for request in [0, snap_index, snap_index + 1] {
        let (m, d) = (mem.snapshot(request, 2), disk.snapshot(request, 2));
        assert_eq!(kind(&m), kind(&d), "snapshot({request}) after {context}");
        if let (Ok(m), Ok(d)) = (m, d) {
            assert_eq!(m, d, "snapshot({request}) after {context}");
        }
    }
    assert_eq!(
        mem.rl().snapshot_metadata(),
        disk_snapshot,
        "snapshot_metadata after {context}"
    );
}
