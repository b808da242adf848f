//! Unit tests of [`Inflights`]: the ring buffer of in-flight appends to one follower.

use super::*;
use std::collections::VecDeque;

/// Adds `indexes` one by one, asserting each is accepted.
fn add_all(ins: &mut Inflights, indexes: impl IntoIterator<Item = u64>) {
    for i in indexes {
        assert!(
            ins.add(i, 0),
            "add({i}) refused with {} of {} in flight",
            ins.count(),
            ins.capacity()
        );
    }
}

#[test]
fn add_until_full_then_refuse() {
    let mut ins = Inflights::new(10);
    assert_eq!(ins.capacity(), 10);
    for i in 0..10u64 {
        assert!(!ins.full(), "full after only {i} messages");
        assert!(ins.add(i + 1, 0));
        assert_eq!(ins.count(), i as usize + 1);
    }
    assert!(ins.full());
    assert!(!ins.add(11, 0), "a full window must refuse");
    assert_eq!(ins.count(), 10, "a refused add records nothing");
}

#[test]
fn free_to_frees_everything_up_to_the_index() {
    let mut ins = Inflights::new(10);
    add_all(&mut ins, 1..=10);
    ins.free_to(4);
    assert_eq!(ins.count(), 6, "1..=4 acknowledged");
    assert!(!ins.full());
    ins.free_to(4);
    ins.free_to(2);
    assert_eq!(
        ins.count(),
        6,
        "an older acknowledgement frees nothing more"
    );
    ins.free_to(9);
    assert_eq!(ins.count(), 1);
    ins.free_to(100);
    assert_eq!(ins.count(), 0, "beyond the last index: everything is freed");
    ins.free_to(200);
    assert_eq!(ins.count(), 0, "freeing an empty window is a no-op");
    add_all(&mut ins, 101..=110);
    assert!(ins.full(), "the whole window is usable again");
}

#[test]
fn free_to_counts_messages_not_entries() {
    // Each message carries several entries; only its last index is recorded.
    let mut ins = Inflights::new(4);
    add_all(&mut ins, [10, 20, 30]);
    ins.free_to(15);
    assert_eq!(
        ins.count(),
        2,
        "only the message ending at 10 is acknowledged"
    );
    ins.free_to(29);
    assert_eq!(ins.count(), 1);
}

#[test]
fn free_first_one_frees_only_the_oldest() {
    let mut ins = Inflights::new(10);
    ins.free_first_one();
    assert_eq!(ins.count(), 0, "no-op on an empty window");
    add_all(&mut ins, [5, 7, 9]);
    ins.free_first_one();
    assert_eq!(ins.count(), 2);
    ins.free_to(6);
    assert_eq!(ins.count(), 2, "5 was already freed; 7 is still in flight");
    ins.free_first_one();
    ins.free_to(8);
    assert_eq!(ins.count(), 1, "7 was freed, 9 is left");
    ins.free_first_one();
    assert_eq!(ins.count(), 0);
}

#[test]
fn ring_wraps_around_many_times_past_its_capacity() {
    // Compare against a queue through thousands of adds and frees, so the ring's start wraps
    // around the buffer many times, at every fill level, while it is still growing and after.
    for capacity in [4, 5, 7, 10, 16] {
        let mut ins = Inflights::new(capacity);
        let mut model: VecDeque<u64> = VecDeque::new();
        let mut next = 1u64;
        for round in 0..3000u64 {
            // Add a varying number of messages, up to the window.
            for _ in 0..(round % 4 + 1) {
                let accepted = ins.add(next, 0);
                assert_eq!(
                    accepted,
                    model.len() < capacity,
                    "cap {capacity} round {round}: add({next})"
                );
                if accepted {
                    model.push_back(next);
                    next += 1 + round % 3;
                }
            }
            // Acknowledge a varying prefix.
            if round % 5 == 4 {
                ins.free_first_one();
                model.pop_front();
            } else if let Some(&front) = model.front() {
                let to = front + round % 7;
                ins.free_to(to);
                while model.front().is_some_and(|&i| i <= to) {
                    model.pop_front();
                }
            }
            assert_eq!(
                ins.count(),
                model.len(),
                "cap {capacity} round {round}: count"
            );
            assert_eq!(
                ins.full(),
                model.len() == capacity,
                "cap {capacity} round {round}: full"
            );
        }
        // Drain: every recorded index must come out in order.
        while let Some(i) = model.pop_front() {
            let before = ins.count();
            ins.free_to(i);
            assert_eq!(
                ins.count(),
                before - 1,
                "cap {capacity}: free_to({i}) must free exactly one"
            );
        }
    }
}

#[test]
fn growth_reaches_a_capacity_that_is_not_a_power_of_two() {
    for capacity in [5, 6, 9, 10, 100] {
        let mut ins = Inflights::new(capacity);
        add_all(&mut ins, 1..=capacity as u64);
        assert!(ins.full(), "capacity {capacity}");
        assert!(!ins.add(capacity as u64 + 1, 0));
        ins.free_to(capacity as u64);
        assert_eq!(ins.count(), 0);
    }
}

#[test]
fn a_window_smaller_than_four_accepts_up_to_its_capacity() {
    for capacity in 1..=3usize {
        let mut ins = Inflights::new(capacity);
        add_all(&mut ins, 1..=capacity as u64);
        assert!(ins.full(), "capacity {capacity}");
        assert!(
            !ins.add(capacity as u64 + 1, 0),
            "capacity {capacity}: add past the window"
        );
    }
}

#[test]
fn a_zero_capacity_window_is_always_full() {
    let mut ins = Inflights::new(0);
    assert!(ins.full());
    assert!(!ins.add(1, 0));
    assert_eq!(ins.count(), 0);
}

#[test]
fn the_buffer_is_allocated_lazily() {
    // An eager allocation of this capacity would abort; lazily it costs nothing until used, and
    // grows only as far as the messages actually in flight.
    let mut ins = Inflights::new(usize::MAX);
    assert_eq!(ins.count(), 0);
    assert!(!ins.full());
    add_all(&mut ins, 1..=1000);
    assert_eq!(ins.count(), 1000);
    ins.free_to(1000);
    assert_eq!(ins.count(), 0);
}

#[test]
fn reset_empties_the_window_and_releases_the_buffer() {
    let mut ins = Inflights::new(8);
    add_all(&mut ins, 1..=8);
    ins.free_to(3);
    ins.reset();
    assert_eq!(ins.count(), 0);
    assert!(!ins.full());
    assert_eq!(ins.capacity(), 8, "reset keeps the capacity");
    assert_eq!(
        ins,
        Inflights::new(8),
        "reset must return to the pristine, unallocated state"
    );
    add_all(&mut ins, 20..=27);
    assert!(ins.full(), "the window is fully usable after a reset");
    ins.free_to(23);
    assert_eq!(ins.count(), 4);
}

#[test]
fn a_byte_limit_fills_the_window_before_the_count_does() {
    let mut ins = Inflights::new(10);
    ins.set_max_bytes(100);
    assert!(ins.add(1, 60));
    assert!(!ins.full(), "60 of 100 bytes in flight");
    assert!(
        ins.add(2, 60),
        "a message may take the window past the limit"
    );
    assert_eq!(ins.bytes(), 120);
    assert!(ins.full(), "120 bytes reach the 100-byte limit");
    assert!(!ins.add(3, 1), "a full window refuses");
    ins.free_to(1);
    assert_eq!(ins.bytes(), 60);
    assert!(!ins.full());
    ins.free_first_one();
    assert_eq!((ins.count(), ins.bytes()), (0, 0));
}

#[test]
fn one_oversized_message_is_always_allowed() {
    let mut ins = Inflights::new(10);
    ins.set_max_bytes(10);
    assert!(ins.add(1, 1_000), "an empty window takes any message");
    assert!(ins.full());
}

#[test]
fn an_emptied_window_releases_a_large_buffer_and_keeps_a_small_one() {
    let mut ins = Inflights::new(1024);
    for i in 1..=8 {
        ins.add(i, 0);
    }
    ins.free_to(8);
    assert!(
        ins.buffer.capacity() > 0,
        "a small buffer is kept for reuse"
    );
    for i in 9..=500 {
        ins.add(i, 0);
    }
    assert!(ins.buffer.len() >= 492);
    ins.free_to(500);
    assert_eq!(
        ins.buffer.capacity(),
        0,
        "a burst's buffer is given back once empty"
    );
}
