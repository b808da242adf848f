//! The log record format: a fixed header and a payload, checksummed with CRC-32C.
//!
//! ```text
//! offset  size  field
//!      0     4  payload length, u32 little-endian
//!      4     4  CRC-32C, u32 little-endian (see below)
//!      8     4  kind, u32 little-endian (1 = entry, 2 = sync mark)
//!     12     8  raft group id, u64 little-endian
//!     20     -  payload (for an entry: the prost encoding of `eraftpb::Entry`)
//! ```
//!
//! The CRC covers the segment id and the record's byte offset in its segment (neither is stored),
//! then the length, kind, group id and payload. Covering the position means a record that a
//! misdirected write put in the wrong place, or a stale copy of a record, fails its checksum
//! exactly like a flipped bit does.
//!
//! The group id is in every header although one engine serves one Raft group today: a log shared
//! by many groups (multi-raft, issue 17) can then be written in this same format, each record
//! telling which group it belongs to. Records of other groups are skipped on replay.
//!
//! A *sync mark* (kind 2, empty payload) is appended after every successful fsync of the log: it
//! proves that every byte before it in its segment was durable. Recovery treats damage before the
//! last sync mark (or the state file's synced position) as corruption, never as a torn write.

/// The size of a record header in bytes.
pub const HEADER_LEN: usize = 20;

/// The largest payload a record may carry (a sanity bound: a longer length is corruption).
pub const MAX_PAYLOAD_LEN: usize = 1 << 30;

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A log entry (prost-encoded `Entry`).
    Entry,
    /// Everything before this record in its segment was fsynced.
    SyncMark,
}

impl RecordKind {
    fn code(self) -> u32 {
        match self {
            RecordKind::Entry => 1,
            RecordKind::SyncMark => 2,
        }
    }

    fn from_code(code: u32) -> Option<RecordKind> {
        match code {
            1 => Some(RecordKind::Entry),
            2 => Some(RecordKind::SyncMark),
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
    /// The buffer ends inside the record (a partial write, or the end of the file).
    Truncated,
    /// The bytes are not a record this engine wrote there.
    Invalid(&'static str),
}

fn checksum(segment: u64, offset: u64, record: &[u8]) -> u32 {
    let mut crc = crc32c::crc32c(&segment.to_le_bytes());
    crc = crc32c::crc32c_append(crc, &offset.to_le_bytes());
    crc = crc32c::crc32c_append(crc, &record[0..4]);
    crc32c::crc32c_append(crc, &record[8..])
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
    let start = out.len();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&kind.code().to_le_bytes());
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = checksum(segment, offset, &out[start..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
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

/// Decodes the record at the start of `buf`, which sits at byte `offset` of segment `segment`.
pub fn decode(buf: &[u8], segment: u64, offset: u64) -> Result<Decoded<'_>, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::Truncated);
    }
    let len = u32_at(buf, 0) as usize;
    if len > MAX_PAYLOAD_LEN {
        return Err(DecodeError::Invalid("record length beyond the maximum"));
    }
    let total_len = HEADER_LEN + len;
    if buf.len() < total_len {
        return Err(DecodeError::Truncated);
    }
    let record = &buf[..total_len];
    if u32_at(record, 4) != checksum(segment, offset, record) {
        return Err(DecodeError::Invalid("record checksum mismatch"));
    }
    let Some(kind) = RecordKind::from_code(u32_at(record, 8)) else {
        return Err(DecodeError::Invalid("unknown record kind"));
    };
    Ok(Decoded {
        kind,
        group: u64_at(record, 12),
        payload: &record[HEADER_LEN..],
        total_len,
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
        let mark = one(RecordKind::SyncMark, 0, b"");
        assert_eq!(decode(&mark, 7, 100).unwrap().kind, RecordKind::SyncMark);
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
    fn a_record_read_at_another_position_fails_its_checksum() {
        let buf = one(RecordKind::Entry, 3, b"misdirected");
        assert_eq!(
            decode(&buf, 7, 612),
            Err(DecodeError::Invalid("record checksum mismatch")),
            "another offset"
        );
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
        assert!(matches!(
            decode(&[0; 64], 7, 100),
            Err(DecodeError::Invalid(_))
        ));
    }
}
