//! The log record format: a self-checking header and a payload, checksummed with CRC-32C.
//!
//! ```text
//! offset  size  field
//!      0     4  payload length, u32 little-endian
//!      4     4  header CRC-32C, u32 LE: segment id, byte offset, length, kind, group id
//!      8     4  record CRC-32C, u32 LE: the header CRC continued over the payload
//!     12     4  kind, u32 LE (1 entry, 2 sync mark, 3 hard state, 4 membership, 5 group
//!                shape, 6 group created, 7 group removed, 8 entry copy, 9 checkpoint
//!                witness; 5-8 in multi-group logs only, 9 in single-group logs only)
//!     16     8  raft group id, u64 LE
//!     24     -  payload
//! ```
//!
//! Payloads: an entry is the prost encoding of `eraftpb::Entry`; a sync mark is empty; a hard
//! state is term, vote and commit (u64 LE each); a membership is the prost encoding of
//! `eraftpb::ConfState`; a group shape (see `multi`) is flags, log start index and term (u64 LE
//! each) and the prost encoding of the group's `eraftpb::SnapshotMetadata`; group created and
//! group removed are empty; an entry copy is an entry's encoding, like an entry's; a checkpoint
//! witness is the payload of the state file slot it witnesses (sequence and checkpoint, see
//! `state_file`).
//!
//! Both checksums cover the segment id and the record's byte offset in its segment (neither is
//! stored), so a record that a misdirected write put in the wrong place, or a stale copy of a
//! record, fails its checksum exactly like a flipped bit does. The header has a checksum of its
//! own so that a damaged length is never believed: a record whose valid header says it runs past
//! the end of the file really was cut short, it is not a flipped bit in its length (recovery
//! depends on telling these apart, see `engine::tail`).
//!
//! The group id is in every header: a log shared by many groups ([`MultiLog`](crate::MultiLog))
//! is written in this same format, each record telling which group it belongs to. A
//! single-group log skips records of other groups on replay.
//!
//! A *sync mark* (kind 2, empty payload) is written right after every successful fsync of the
//! log: it proves that every byte before it in its segment was durable. Recovery treats damage
//! before the last sync mark (or the state file's checkpoint position) as corruption, never as a
//! torn write.
//!
//! A *checkpoint witness* (kind 9) is appended and fsynced right after every state file slot
//! write of a single-group log has been fsynced: it holds the same checkpoint, so that a slot
//! write that never landed (misdirected, or lost by the device) is found on recovery, and the
//! checkpoint is rolled forward from the log (see `engine::witness`).

use raft_core::eraftpb::HardState;

/// The size of a record header in bytes.
pub const HEADER_LEN: usize = 24;

/// The largest payload a record may carry (a sanity bound: a longer length is corruption).
pub const MAX_PAYLOAD_LEN: usize = 1 << 30;

/// The size of a hard state record's payload.
pub const HARD_STATE_LEN: usize = 24;

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A log entry (prost-encoded `Entry`).
    Entry,
    /// Everything before this record in its segment was fsynced.
    SyncMark,
    /// The hard state from this point of the log on (term, vote, commit).
    HardState,
    /// The membership from this point of the log on (prost-encoded `ConfState`).
    ConfState,
    /// A group's log start and snapshot from this point of the log on (multi-group logs).
    GroupShape,
    /// A group starts here, empty (multi-group logs).
    GroupCreated,
    /// A group ends here: its earlier records are garbage (multi-group logs).
    GroupRemoved,
    /// A copy of an entry the group's log holds, carried forward so that older segments can go
    /// (multi-group logs): it moves the entry, never truncates the log after it.
    EntryCopy,
    /// The checkpoint just written to the state file, with its sequence number (single-group
    /// logs): proof that the state file holds it, or held it.
    CheckpointWitness,
}

impl RecordKind {
    fn code(self) -> u32 {
        match self {
            RecordKind::Entry => 1,
            RecordKind::SyncMark => 2,
            RecordKind::HardState => 3,
            RecordKind::ConfState => 4,
            RecordKind::GroupShape => 5,
            RecordKind::GroupCreated => 6,
            RecordKind::GroupRemoved => 7,
            RecordKind::EntryCopy => 8,
            RecordKind::CheckpointWitness => 9,
        }
    }

    fn from_code(code: u32) -> Option<RecordKind> {
        match code {
            1 => Some(RecordKind::Entry),
            2 => Some(RecordKind::SyncMark),
            3 => Some(RecordKind::HardState),
            4 => Some(RecordKind::ConfState),
            5 => Some(RecordKind::GroupShape),
            6 => Some(RecordKind::GroupCreated),
            7 => Some(RecordKind::GroupRemoved),
            8 => Some(RecordKind::EntryCopy),
            9 => Some(RecordKind::CheckpointWitness),
            _ => None,
        }
    }
}

/// A record decoded from a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The record's kind.
    pub kind: RecordKind,
    /// The Raft group it belongs to.
    pub group: u64,
    /// Its payload.
    pub payload: &'a [u8],
    /// Header plus payload, in bytes: where the next record starts.
    pub total_len: usize,
}

/// Why a buffer does not start with a valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer ends inside the record: it is shorter than a header, or the header is valid
    /// and its payload runs past the end.
    Truncated,
    /// The header fails its checksum (its length cannot be trusted).
    BadHeader,
    /// The header is valid but the payload fails the record checksum; the record spans
    /// `total_len` bytes.
    BadPayload {
        /// Header plus payload, as the valid header says.
        total_len: usize,
    },
    /// A header that passes its checksum holds an impossible value (an unknown kind, a length
    /// beyond the maximum): not something this engine writes.
    Invalid(&'static str),
}

impl DecodeError {
    /// The error in words.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Truncated => "partial record at the end of the segment",
            DecodeError::BadHeader => "record header checksum mismatch",
            DecodeError::BadPayload { .. } => "record checksum mismatch",
            DecodeError::Invalid(why) => why,
        }
    }
}

fn header_checksum(segment: u64, offset: u64, header: &[u8]) -> u32 {
    // One call over the covered fields laid end to end (the same CRC as feeding them one by
    // one, at a fraction of the per-call cost for 32 bytes).
    let mut covered = [0u8; 32];
    covered[0..8].copy_from_slice(&segment.to_le_bytes());
    covered[8..16].copy_from_slice(&offset.to_le_bytes());
    covered[16..20].copy_from_slice(&header[0..4]);
    covered[20..32].copy_from_slice(&header[12..HEADER_LEN]);
    crc32c::crc32c(&covered)
}

/// Appends a record to `out`, to be written at byte `offset` of segment `segment`.
pub fn encode(
    out: &mut Vec<u8>,
    segment: u64,
    offset: u64,
    kind: RecordKind,
    group: u64,
    payload: &[u8],
) {
    encode_with(out, segment, offset, kind, group, |out| {
        out.extend_from_slice(payload)
    });
}

/// Appends a record to `out`, to be written at byte `offset` of segment `segment`, its payload
/// written by `write_payload` straight into `out` (no intermediate copy). Returns the payload's
/// length.
pub fn encode_with(
    out: &mut Vec<u8>,
    segment: u64,
    offset: u64,
    kind: RecordKind,
    group: u64,
    write_payload: impl FnOnce(&mut Vec<u8>),
) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&kind.code().to_le_bytes());
    out.extend_from_slice(&group.to_le_bytes());
    write_payload(out);
    let len = out.len() - start - HEADER_LEN;
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    let header_crc = header_checksum(segment, offset, &out[start..start + HEADER_LEN]);
    let crc = crc32c::crc32c_append(header_crc, &out[start + HEADER_LEN..]);
    out[start + 4..start + 8].copy_from_slice(&header_crc.to_le_bytes());
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
    len
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut bytes = [0; 4];
    bytes.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(bytes)
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(bytes)
}

/// A record header whose checksum was verified (see [`decode_header`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The record's kind.
    pub kind: RecordKind,
    /// The Raft group it belongs to.
    pub group: u64,
    /// Header plus payload, in bytes: where the next record starts.
    pub total_len: usize,
    /// The header's checksum, which the record checksum continues.
    crc: u32,
}

/// Checks the header at the start of `buf`, which sits at byte `offset` of segment `segment`:
/// its checksum, so that its length can be trusted, and its kind. The payload is not checked
/// (see [`decode_payload`]).
pub fn decode_header(buf: &[u8], segment: u64, offset: u64) -> Result<Header, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::Truncated);
    }
    let crc = header_checksum(segment, offset, buf);
    if u32_at(buf, 4) != crc {
        return Err(DecodeError::BadHeader);
    }
    let len = u32_at(buf, 0) as usize;
    if len > MAX_PAYLOAD_LEN {
        return Err(DecodeError::Invalid("record length beyond the maximum"));
    }
    let Some(kind) = RecordKind::from_code(u32_at(buf, 12)) else {
        return Err(DecodeError::Invalid("unknown record kind"));
    };
    Ok(Header {
        kind,
        group: u64_at(buf, 16),
        total_len: HEADER_LEN + len,
        crc,
    })
}

/// The record of `header` at the start of `buf`, its payload checked against the record
/// checksum.
pub fn decode_payload<'a>(buf: &'a [u8], header: &Header) -> Result<Decoded<'a>, DecodeError> {
    let Some(payload) = buf.get(HEADER_LEN..header.total_len) else {
        return Err(DecodeError::Truncated);
    };
    if u32_at(buf, 8) != crc32c::crc32c_append(header.crc, payload) {
        return Err(DecodeError::BadPayload {
            total_len: header.total_len,
        });
    }
    Ok(Decoded {
        kind: header.kind,
        group: header.group,
        payload,
        total_len: header.total_len,
    })
}

/// Decodes the record at the start of `buf`, which sits at byte `offset` of segment `segment`.
pub fn decode(buf: &[u8], segment: u64, offset: u64) -> Result<Decoded<'_>, DecodeError> {
    let header = decode_header(buf, segment, offset)?;
    decode_payload(buf, &header)
}

/// The payload of a hard state record.
pub fn encode_hard_state(hs: &HardState) -> [u8; HARD_STATE_LEN] {
    let mut out = [0u8; HARD_STATE_LEN];
    out[0..8].copy_from_slice(&hs.term.to_le_bytes());
    out[8..16].copy_from_slice(&hs.vote.to_le_bytes());
    out[16..24].copy_from_slice(&hs.commit.to_le_bytes());
    out
}

/// The hard state in a hard state record's payload, or `None` if it has the wrong size.
pub fn decode_hard_state(payload: &[u8]) -> Option<HardState> {
    (payload.len() == HARD_STATE_LEN).then(|| HardState {
        term: u64_at(payload, 0),
        vote: u64_at(payload, 8),
        commit: u64_at(payload, 16),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(kind: RecordKind, group: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, 7, 100, kind, group, payload);
        out
    }

    #[test]
    fn a_record_round_trips_with_its_kind_group_and_payload() {
        let buf = one(RecordKind::Entry, 42, b"hello");
        assert_eq!(buf.len(), HEADER_LEN + 5);
        let rec = decode(&buf, 7, 100).expect("a fresh record decodes");
        assert_eq!(rec.kind, RecordKind::Entry);
        assert_eq!(rec.group, 42);
        assert_eq!(rec.payload, b"hello");
        assert_eq!(rec.total_len, buf.len());
        for kind in [
            RecordKind::SyncMark,
            RecordKind::HardState,
            RecordKind::ConfState,
            RecordKind::GroupShape,
            RecordKind::GroupCreated,
            RecordKind::GroupRemoved,
            RecordKind::EntryCopy,
            RecordKind::CheckpointWitness,
        ] {
            assert_eq!(decode(&one(kind, 0, b""), 7, 100).unwrap().kind, kind);
        }
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let buf = one(RecordKind::Entry, 3, b"some payload bytes");
        for bit in 0..buf.len() * 8 {
            let mut damaged = buf.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode(&damaged, 7, 100).is_err(),
                "flipping bit {bit} went unnoticed"
            );
        }
    }

    #[test]
    fn a_flipped_bit_in_the_header_is_never_taken_for_a_short_record() {
        // A damaged length must not make a complete record look cut off by the end of the file.
        let buf = one(RecordKind::Entry, 3, b"payload");
        for bit in 0..HEADER_LEN * 8 {
            let mut damaged = buf.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            let error = decode(&damaged, 7, 100).unwrap_err();
            assert_ne!(error, DecodeError::Truncated, "bit {bit}");
        }
    }

    #[test]
    fn a_flipped_bit_in_the_payload_keeps_the_record_extent() {
        let buf = one(RecordKind::Entry, 3, b"payload");
        let mut damaged = buf.clone();
        damaged[HEADER_LEN + 2] ^= 4;
        assert_eq!(
            decode(&damaged, 7, 100),
            Err(DecodeError::BadPayload {
                total_len: buf.len()
            })
        );
    }

    #[test]
    fn a_record_read_at_another_position_fails_its_checksum() {
        let buf = one(RecordKind::Entry, 3, b"misdirected");
        assert_eq!(decode(&buf, 7, 612), Err(DecodeError::BadHeader));
        assert!(decode(&buf, 8, 100).is_err(), "another segment");
    }

    #[test]
    fn every_strict_prefix_is_truncated() {
        let buf = one(RecordKind::Entry, 3, b"torn");
        for len in 0..buf.len() {
            assert_eq!(decode(&buf[..len], 7, 100), Err(DecodeError::Truncated));
        }
    }

    #[test]
    fn zeros_are_not_a_record() {
        assert_eq!(decode(&[0; 64], 7, 100), Err(DecodeError::BadHeader));
    }

    #[test]
    fn a_hard_state_payload_round_trips() {
        let hs = HardState {
            term: 3,
            vote: 2,
            commit: 99,
        };
        assert_eq!(decode_hard_state(&encode_hard_state(&hs)), Some(hs));
        assert_eq!(decode_hard_state(&[0; 23]), None);
    }
}
