//! The state file: a checkpoint of the hard state, the membership and the log's shape, in two
//! checksummed slots. It is written when the log's shape changes (snapshot, compaction); in
//! between, the hard state and membership live in the log as records (see `engine::write`).
//!
//! The file holds two slots of [`SLOT_LEN`] bytes. A write goes to the slot that does not hold the
//! last durable state, and is fsynced; the slot with the higher sequence number that passes its
//! checksum wins on recovery. A torn or failed write therefore damages only the slot being
//! written, and the previous state survives in the other.
//!
//! A write the device acknowledged but put somewhere else (a misdirected write: one sector
//! away, over the end of the other slot or the start of the next) or never made (a lost write)
//! would leave an older valid slot winning, silently. So every slot written is followed by a
//! *checkpoint witness* in the log holding the same payload ([`encode_payload`]); recovery
//! compares the two (see `engine::witness`).
//!
//! ```text
//! slot:    magic "RDST" | CRC-32C u32 | payload length u32 | payload
//! payload: sequence, term, vote, commit, first segment, log start index, log start term,
//!          snapshot index, synced segment, synced offset (u64 LE each) | ConfState (prost)
//! ```

use prost::Message as _;
use raft_core::eraftpb::{ConfState, HardState};

/// The size of one slot in bytes (two slots per file).
pub const SLOT_LEN: usize = 4096;

const MAGIC: &[u8; 4] = b"RDST";
const FIXED_FIELDS: usize = 10;
const SLOT_HEADER: usize = 12;

/// What the state file records: a checkpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersistedState {
    /// Term, vote and commit at the checkpoint (later hard state records in the log supersede
    /// it). The commit is never beyond the log end that was durable when it was written.
    pub hard_state: HardState,
    /// The membership at the checkpoint (later membership records supersede it).
    pub conf_state: ConfState,
    /// Segments with a lower id are no longer part of the log (deleted, or to delete).
    pub first_segment: u64,
    /// The index and term of the entry just before the first one in the log.
    pub log_start: (u64, u64),
    /// The index of the current snapshot file (0: none).
    pub snapshot_index: u64,
    /// The log position the checkpoint was written at, (segment, byte offset): the log was
    /// synced up to it, and the hard state and membership records before it are older than the
    /// checkpoint.
    pub synced: (u64, u64),
}

/// Why a slot does not hold a valid state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotError {
    /// The slot does not start with the magic bytes (never written, or torn at the start).
    NoMagic,
    /// The length is impossible or the checksum does not match.
    Damaged,
}

/// Encodes `state` with sequence number `sequence` into a full slot, or `None` if it does not fit.
pub fn encode_slot(state: &PersistedState, sequence: u64) -> Option<Vec<u8>> {
    slot_of_payload(&encode_payload(state, sequence))
}

/// The payload of a slot holding `state` with sequence number `sequence` (what a checkpoint
/// witness in the log carries too).
pub fn encode_payload(state: &PersistedState, sequence: u64) -> Vec<u8> {
    let hs = &state.hard_state;
    let fields = [
        sequence,
        hs.term,
        hs.vote,
        hs.commit,
        state.first_segment,
        state.log_start.0,
        state.log_start.1,
        state.snapshot_index,
        state.synced.0,
        state.synced.1,
    ];
    let mut payload = Vec::with_capacity(FIXED_FIELDS * 8 + state.conf_state.encoded_len());
    for field in fields {
        payload.extend_from_slice(&field.to_le_bytes());
    }
    state
        .conf_state
        .encode(&mut payload)
        .expect("encoding into a Vec");
    payload
}

/// The full slot holding `payload` (see [`encode_payload`]), or `None` if it does not fit.
pub fn slot_of_payload(payload: &[u8]) -> Option<Vec<u8>> {
    if SLOT_HEADER + payload.len() > SLOT_LEN {
        return None;
    }
    let mut slot = Vec::with_capacity(SLOT_LEN);
    slot.extend_from_slice(MAGIC);
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), payload);
    slot.extend_from_slice(&crc.to_le_bytes());
    slot.extend_from_slice(&len);
    slot.extend_from_slice(payload);
    slot.resize(SLOT_LEN, 0);
    Some(slot)
}

/// Decodes a slot into its sequence number and state.
pub fn decode_slot(slot: &[u8]) -> Result<(u64, PersistedState), SlotError> {
    if slot.len() < SLOT_HEADER || &slot[0..4] != MAGIC {
        return Err(SlotError::NoMagic);
    }
    let mut word = [0u8; 4];
    word.copy_from_slice(&slot[4..8]);
    let crc = u32::from_le_bytes(word);
    word.copy_from_slice(&slot[8..12]);
    let len = u32::from_le_bytes(word) as usize;
    if len < FIXED_FIELDS * 8 || SLOT_HEADER + len > slot.len().min(SLOT_LEN) {
        return Err(SlotError::Damaged);
    }
    let payload = &slot[SLOT_HEADER..SLOT_HEADER + len];
    if crc != crc32c::crc32c_append(crc32c::crc32c(&slot[8..12]), payload) {
        return Err(SlotError::Damaged);
    }
    decode_payload(payload)
}

/// Decodes a slot's payload (see [`encode_payload`]) into its sequence number and state.
pub fn decode_payload(payload: &[u8]) -> Result<(u64, PersistedState), SlotError> {
    if payload.len() < FIXED_FIELDS * 8 {
        return Err(SlotError::Damaged);
    }
    let mut fields = [0u64; FIXED_FIELDS];
    for (i, field) in fields.iter_mut().enumerate() {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&payload[i * 8..i * 8 + 8]);
        *field = u64::from_le_bytes(bytes);
    }
    let conf_state =
        ConfState::decode(&payload[FIXED_FIELDS * 8..]).map_err(|_| SlotError::Damaged)?;
    let state = PersistedState {
        hard_state: HardState {
            term: fields[1],
            vote: fields[2],
            commit: fields[3],
        },
        conf_state,
        first_segment: fields[4],
        log_start: (fields[5], fields[6]),
        snapshot_index: fields[7],
        synced: (fields[8], fields[9]),
    };
    Ok((fields[0], state))
}

/// The newest valid slot of a state file's contents: (slot number, sequence, state), or the
/// errors of both slots.
pub fn newest_slot(
    contents: &[u8],
) -> Result<(usize, u64, PersistedState), (SlotError, SlotError)> {
    let slot = |n: usize| {
        let start = (n * SLOT_LEN).min(contents.len());
        let end = ((n + 1) * SLOT_LEN).min(contents.len());
        decode_slot(&contents[start..end])
    };
    match (slot(0), slot(1)) {
        (Ok((a, sa)), Ok((b, sb))) => Ok(if b > a { (1, b, sb) } else { (0, a, sa) }),
        (Ok((a, sa)), Err(_)) => Ok((0, a, sa)),
        (Err(_), Ok((b, sb))) => Ok((1, b, sb)),
        (Err(ea), Err(eb)) => Err((ea, eb)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(commit: u64) -> PersistedState {
        PersistedState {
            hard_state: HardState {
                term: 5,
                vote: 2,
                commit,
            },
            conf_state: ConfState {
                voters: vec![1, 2, 3],
                learners: vec![4],
                ..Default::default()
            },
            first_segment: 3,
            log_start: (10, 4),
            snapshot_index: 10,
            synced: (4, 8192),
        }
    }

    fn file(
        slot0: Option<(&PersistedState, u64)>,
        slot1: Option<(&PersistedState, u64)>,
    ) -> Vec<u8> {
        let mut contents = vec![0; 2 * SLOT_LEN];
        for (n, slot) in [slot0, slot1].into_iter().enumerate() {
            if let Some((state, seq)) = slot {
                let bytes = encode_slot(state, seq).unwrap();
                contents[n * SLOT_LEN..(n + 1) * SLOT_LEN].copy_from_slice(&bytes);
            }
        }
        contents
    }

    #[test]
    fn a_slot_round_trips() {
        let state = sample(12);
        let slot = encode_slot(&state, 9).unwrap();
        assert_eq!(slot.len(), SLOT_LEN);
        assert_eq!(decode_slot(&slot), Ok((9, state)));
    }

    #[test]
    fn the_newer_valid_slot_wins() {
        let (old, new) = (sample(12), sample(13));
        let contents = file(Some((&old, 4)), Some((&new, 5)));
        assert_eq!(newest_slot(&contents).unwrap(), (1, 5, new.clone()));
        let contents = file(Some((&new, 7)), Some((&old, 6)));
        assert_eq!(newest_slot(&contents).unwrap(), (0, 7, new));
    }

    #[test]
    fn a_torn_newer_slot_leaves_the_older_one() {
        let (old, new) = (sample(12), sample(13));
        let mut contents = file(Some((&old, 4)), Some((&new, 5)));
        // The second half of the newer slot's payload never reached the disk.
        for byte in &mut contents[SLOT_LEN + 40..2 * SLOT_LEN] {
            *byte = 0;
        }
        assert_eq!(newest_slot(&contents).unwrap(), (0, 4, old));
    }

    #[test]
    fn a_flipped_bit_in_either_slot_is_caught() {
        let state = sample(12);
        let clean = encode_slot(&state, 1).unwrap();
        let used = SLOT_HEADER + 10 * 8 + state.conf_state.encoded_len();
        for bit in 0..used * 8 {
            let mut slot = clean.clone();
            slot[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_slot(&slot).is_err(),
                "flipping bit {bit} went unnoticed"
            );
        }
    }

    #[test]
    fn both_slots_damaged_is_an_error() {
        let contents = file(None, None);
        assert_eq!(
            newest_slot(&contents),
            Err((SlotError::NoMagic, SlotError::NoMagic))
        );
        assert!(newest_slot(&[]).is_err());
    }

    #[test]
    fn a_membership_too_large_for_a_slot_is_refused() {
        let mut state = sample(1);
        state.conf_state.voters = (1..2000).map(|v| v << 40).collect();
        assert_eq!(encode_slot(&state, 1), None);
    }
}
