//! The files of a storage directory: their names, the segment header and the snapshot format.
//!
//! ```text
//! state                   the two-slot state file (see `state_file`)
//! 00000000000000000001.log log segments, numbered from 1, each starting with a 24-byte header
//! snap-00000000000000000042.snap   the current snapshot (by its index)
//! checkpoint              a multi-group log's checkpoint (see `multi::checkpoint`)
//! snap-<group>-<index>.snap        a group's snapshot in a multi-group log (20 digits each)
//! *.tmp                   a file being written; removed on open
//! ```
//!
//! Segment header: magic "RDSG", format version u32 (2: the record format of `record`, with
//! hard state and membership records), segment id u64, CRC-32C of the first 16 bytes, 4 zero
//! bytes. A segment of another version is refused, never replayed or cut. Snapshot file: magic "RDSN", CRC-32C u32 of the rest, payload length u64, the
//! prost encoding of `eraftpb::Snapshot`.

use std::path::Path;

use prost::Message as _;
use raft_core::eraftpb::Snapshot;

use crate::error::DiskError;

/// The name of a multi-group log's checkpoint file (see `multi::checkpoint`).
pub const CHECKPOINT_FILE: &str = "checkpoint";
/// The name of the state file.
pub const STATE_FILE: &str = "state";
/// The name the state file is first written under, then renamed from (see `open`).
pub const STATE_TMP: &str = "state.tmp";
/// The suffix of files being written.
pub const TMP_SUFFIX: &str = ".tmp";
/// The size of a segment header in bytes.
pub const SEGMENT_HEADER_LEN: u64 = 24;

const SEGMENT_MAGIC: &[u8; 4] = b"RDSG";
const SEGMENT_VERSION: u32 = 2;
const SNAPSHOT_MAGIC: &[u8; 4] = b"RDSN";
const SNAPSHOT_HEADER_LEN: usize = 16;

/// The file name of segment `id`.
pub fn segment_name(id: u64) -> String {
    format!("{id:020}.log")
}

/// The segment id a file name stands for, if it is a segment's name.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The file name of the snapshot at `index`.
pub fn snapshot_name(index: u64) -> String {
    format!("snap-{index:020}.snap")
}

/// The file name of group `group`'s snapshot at `index`, in a multi-group log.
pub fn group_snapshot_name(group: u64, index: u64) -> String {
    format!("snap-{group:020}-{index:020}.snap")
}

/// Whether a file name is a snapshot's.
pub fn is_snapshot_name(name: &str) -> bool {
    name.starts_with("snap-") && name.ends_with(".snap")
}

/// The header of segment `id`.
pub fn segment_header(id: u64) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
    header[0..4].copy_from_slice(SEGMENT_MAGIC);
    header[4..8].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    header[8..16].copy_from_slice(&id.to_le_bytes());
    let crc = crc32c::crc32c(&header[0..16]);
    header[16..20].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Whether `bytes` start with the header of segment `id`.
pub fn is_segment_header(bytes: &[u8], id: u64) -> bool {
    bytes.len() >= SEGMENT_HEADER_LEN as usize
        && bytes[..SEGMENT_HEADER_LEN as usize] == segment_header(id)
}

/// The format version of a segment header that is intact (magic, checksum and id right) but of
/// another version than this build writes, if that is what `bytes` start with.
pub fn foreign_segment_version(bytes: &[u8], id: u64) -> Option<u32> {
    let header = bytes.get(..SEGMENT_HEADER_LEN as usize)?;
    let mut word = [0u8; 4];
    word.copy_from_slice(&header[4..8]);
    let version = u32::from_le_bytes(word);
    word.copy_from_slice(&header[16..20]);
    let intact = &header[0..4] == SEGMENT_MAGIC
        && header[8..16] == id.to_le_bytes()
        && u32::from_le_bytes(word) == crc32c::crc32c(&header[0..16]);
    (intact && version != SEGMENT_VERSION).then_some(version)
}

/// The contents of a snapshot file holding `snapshot`.
pub fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let payload = snapshot.encode_to_vec();
    let len = (payload.len() as u64).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), &payload);
    let mut out = Vec::with_capacity(SNAPSHOT_HEADER_LEN + payload.len());
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&len);
    out.extend_from_slice(&payload);
    out
}

/// Decodes the contents of the snapshot file at `path`, naming the file in the error.
pub fn decode_snapshot(path: &Path, bytes: &[u8]) -> Result<Snapshot, DiskError> {
    if bytes.len() < SNAPSHOT_HEADER_LEN || &bytes[0..4] != SNAPSHOT_MAGIC {
        return Err(DiskError::corrupt(
            path,
            0,
            "not a snapshot file (bad magic)",
        ));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[8..16]);
    let payload_len = u64::from_le_bytes(len);
    let payload = &bytes[SNAPSHOT_HEADER_LEN..];
    if payload.len() as u64 != payload_len {
        return Err(DiskError::corrupt(
            path,
            8,
            format!(
                "snapshot length {payload_len} but {} bytes follow the header",
                payload.len()
            ),
        ));
    }
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&bytes[4..8]);
    if u32::from_le_bytes(crc) != crc32c::crc32c_append(crc32c::crc32c(&len), payload) {
        return Err(DiskError::corrupt(path, 4, "snapshot checksum mismatch"));
    }
    Snapshot::decode(payload).map_err(|e| {
        DiskError::corrupt(
            path,
            SNAPSHOT_HEADER_LEN as u64,
            format!("snapshot does not decode: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::eraftpb::SnapshotMetadata;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
        assert_eq!(parse_segment_name("42.log"), None);
        assert_eq!(parse_segment_name("state"), None);
        assert!(is_snapshot_name(&snapshot_name(7)));
    }

    #[test]
    fn a_segment_header_names_its_segment() {
        let header = segment_header(5);
        assert!(is_segment_header(&header, 5));
        assert!(!is_segment_header(&header, 6));
        assert!(!is_segment_header(&header[..10], 5));
        assert_eq!(foreign_segment_version(&header, 5), None);
    }

    #[test]
    fn a_segment_of_another_format_version_is_recognised() {
        let mut header = segment_header(5);
        header[4..8].copy_from_slice(&1u32.to_le_bytes());
        let crc = crc32c::crc32c(&header[0..16]);
        header[16..20].copy_from_slice(&crc.to_le_bytes());
        assert!(!is_segment_header(&header, 5));
        assert_eq!(foreign_segment_version(&header, 5), Some(1));
        assert_eq!(foreign_segment_version(&header, 6), None);
    }

    #[test]
    fn a_snapshot_file_round_trips_and_catches_damage() {
        let snap = Snapshot {
            data: bytes::Bytes::from_static(b"state machine"),
            metadata: Some(SnapshotMetadata {
                index: 9,
                term: 2,
                ..Default::default()
            }),
        };
        let path = Path::new("snap");
        let bytes = encode_snapshot(&snap);
        assert_eq!(decode_snapshot(path, &bytes).unwrap(), snap);
        for at in [0, 5, 9, 20, bytes.len() - 1] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            assert!(decode_snapshot(path, &damaged).is_err(), "damage at {at}");
        }
        assert!(decode_snapshot(path, &bytes[..bytes.len() - 1]).is_err());
    }
}
