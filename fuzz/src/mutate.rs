//! Forged messages: one field of a real message (or its entries or snapshot) changed as the
//! fuzzer's bytes say.

use crate::reader::Reader;
use raft_core::eraftpb::Message;

/// Ids a mutation may put in `from` / `to`.
const IDS: [u64; 7] = [0, 1, 2, 3, 4, 99, u64::MAX];

fn tweak(v: u64, r: &mut Reader) -> u64 {
    match r.u8() % 6 {
        0 => v.saturating_add_signed(r.delta()),
        1 => 0,
        2 => u64::MAX,
        3 => u64::MAX - 1,
        4 => v.saturating_add(1 << (r.u8() % 64)),
        _ => v.saturating_sub(1),
    }
}

/// Mutates one field of `m` (or its entries or snapshot) as the bytes say.
pub fn mutate(m: &mut Message, r: &mut Reader) {
    match r.u8() % 16 {
        0 => m.term = tweak(m.term, r),
        1 => m.index = tweak(m.index, r),
        2 => m.log_term = tweak(m.log_term, r),
        3 => m.commit = tweak(m.commit, r),
        4 => m.reject_hint = tweak(m.reject_hint, r),
        5 => m.reject = !m.reject,
        6 => m.msg_type = i32::from(r.u8() % 21) - 1,
        7 => core::mem::swap(&mut m.from, &mut m.to),
        8 => m.from = IDS[usize::from(r.u8()) % IDS.len()],
        9 => m.to = IDS[usize::from(r.u8()) % IDS.len()],
        10 => {
            // Entries dropped, duplicated or reordered.
            let n = m.entries.len();
            if n > 0 {
                let i = usize::from(r.u8()) % n;
                match r.u8() % 4 {
                    0 => {
                        m.entries.remove(i);
                    }
                    1 => {
                        let e = m.entries[i].clone();
                        m.entries.insert(i, e);
                    }
                    2 => m.entries.swap(i, usize::from(r.u8()) % n),
                    _ => m.entries.truncate(i),
                }
            }
        }
        11 => {
            let n = m.entries.len();
            if n > 0 {
                let i = usize::from(r.u8()) % n;
                let e = &mut m.entries[i];
                if r.u8().is_multiple_of(2) {
                    e.term = tweak(e.term, r);
                } else {
                    e.index = tweak(e.index, r);
                }
            }
        }
        12 => {
            // Snapshot metadata mangled.
            let s = m.snapshot.get_or_insert_with(Default::default);
            match r.u8() % 6 {
                0 => s.metadata = None,
                1 => {
                    let meta = s.metadata.get_or_insert_with(Default::default);
                    meta.index = tweak(meta.index, r);
                }
                2 => {
                    let meta = s.metadata.get_or_insert_with(Default::default);
                    meta.term = tweak(meta.term, r);
                }
                3 => {
                    let meta = s.metadata.get_or_insert_with(Default::default);
                    meta.conf_state = None;
                }
                4 => {
                    let meta = s.metadata.get_or_insert_with(Default::default);
                    let cs = meta.conf_state.get_or_insert_with(Default::default);
                    cs.voters.push(IDS[usize::from(r.u8()) % IDS.len()]);
                    cs.learners.push(IDS[usize::from(r.u8()) % IDS.len()]);
                }
                _ => {
                    let meta = s.metadata.get_or_insert_with(Default::default);
                    let cs = meta.conf_state.get_or_insert_with(Default::default);
                    cs.voters_outgoing = cs.voters.clone();
                    cs.auto_leave = !cs.auto_leave;
                }
            }
        }
        13 => m.commit_term = tweak(m.commit_term, r),
        14 => m.request_snapshot = tweak(m.request_snapshot, r),
        _ => {
            let n = usize::from(r.u8() % 20);
            m.context = bytes::Bytes::copy_from_slice(r.bytes(n));
        }
    }
}
