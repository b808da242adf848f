//! Sharing one storage: clones see the same data, the handle is `Send + Sync` and usable from two
//! threads at once, and a lock poisoned by a panicking thread is recovered.

use super::*;

#[test]
fn clones_share_state() {
    let a = MemStorage::new();
    let b = a.clone();
    b.wl().append(&ents(1, 2, 1)).unwrap();
    a.wl().set_hardstate(HardState {
        term: 1,
        vote: 1,
        commit: 2,
    });
    assert_eq!(a.last_index().unwrap(), 2);
    assert_eq!(b.initial_state().unwrap().hard_state.commit, 2);
    assert_eq!(all_entries(&a), all_entries(&b));
}

#[test]
fn memstorage_is_send_and_sync() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<MemStorage>();
}

#[test]
fn usage_from_two_threads() {
    const N: u64 = 500;
    let s = MemStorage::new_with_conf_state(conf_state(vec![1, 2, 3], vec![]));
    let writer = s.clone();
    let reader = s.clone();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for i in 1..=N {
                let mut core = writer.wl();
                core.append(&[ent(i, 1 + i / 100)]).unwrap();
                core.commit_to(i).unwrap();
            }
        });
        scope.spawn(move || {
            let mut seen = 0;
            while seen < N {
                // Each call takes the lock once, so `last` may move between calls, but what one
                // call returns is always consistent.
                let last = reader.last_index().unwrap();
                assert!(last >= seen);
                seen = last;
                let es = reader.entries(1, last + 1, NO_LIMIT).unwrap();
                assert_eq!(es.len() as u64, last);
                assert!(es.iter().zip(1..).all(|(e, i)| e.index == i));
                assert!(reader.initial_state().unwrap().hard_state.commit >= last);
                std::thread::yield_now();
            }
        });
    });
    assert_eq!(s.last_index().unwrap(), N);
    assert_eq!(s.term(N).unwrap(), 1 + N / 100);
    assert_eq!(s.rl().hard_state().commit, N);
}

#[test]
fn a_poisoned_lock_is_recovered() {
    let s = storage_with(&ents(1, 3, 1));
    let t = s.clone();
    let joined = std::thread::spawn(move || {
        let _guard = t.wl();
        panic!("panic while holding the write lock (expected by this test)");
    })
    .join();
    assert!(joined.is_err());
    assert!(s.core.is_poisoned());
    assert_eq!(all_entries(&s), ents(1, 3, 1));
    s.wl().append(&[ent(4, 1)]).unwrap();
    assert_eq!(s.last_index().unwrap(), 4);
}
