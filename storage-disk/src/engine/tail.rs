//! Telling the damage a crash leaves (a torn tail, which recovery cuts) from damage it cannot
//! leave (corruption, which recovery refuses).
//!
//! The disk model (see [`crate::io`]): a crash keeps any subset of the *sectors* of the writes not
//! yet fsynced; a lost sector inside the file reads as zeros, and a lost sector at the end leaves
//! the file shorter. The engine writes every byte of a segment at most twice: zeros ahead of the
//! records (preallocation), then a record over them (it appends; a cut torn tail is truncated and
//! fsynced before anything is written after it). So a sector of a record that a crash lost holds
//! zeros (the preallocation's, kept or synced, or the gap before a kept later sector) or is
//! missing, and a sector it kept holds exactly what was written. Zeros from a record's first
//! byte to the end of the file are the end of the log and never reach this module (see
//! `replay`).
//!
//! So the first damaged record of a torn tail always has one of two shapes: the file ends inside
//! it ([`TornShape::ShortFile`]; its header, when complete, is valid), or one of its pieces between
//! 512-byte boundaries reads as all zeros ([`TornShape::ZeroedSector`]). Any other damage, such as
//! a complete record with a flipped bit, a record with a foreign header or a valid header of an
//! impossible kind, is not something a crash does, and recovery reports it as corruption even
//! where no sync mark proves the record was synced.
//!
//! 512 bytes is the smallest sector of real disks: a disk that loses 4 KiB at a time also leaves
//! zeroed 512-byte pieces. The model needs sector writes to be atomic (a half-written sector
//! reads back as an I/O error on real disks, never as a mix) and a file system that never shows
//! stale blocks after a crash (ext4 `data=ordered`, XFS, btrfs).

use super::TornShape;
use crate::record::{self, DecodeError, RecordKind, HEADER_LEN};

/// The unit in which a crash loses unsynced data (the smallest disk sector).
pub const TORN_WRITE_UNIT: u64 = 512;

/// The shape of the damage that `error` found at byte `offset` of a segment holding `bytes`, if a
/// crash can leave it; `None` if it is corruption.
pub fn crash_shape(bytes: &[u8], offset: u64, error: &DecodeError) -> Option<TornShape> {
    let end = match error {
        DecodeError::Truncated => return Some(TornShape::ShortFile),
        DecodeError::BadHeader => offset + HEADER_LEN as u64,
        DecodeError::BadPayload { total_len } => offset + *total_len as u64,
        DecodeError::Invalid(_) => return None,
    };
    zeroed_piece(bytes, offset, end).map(|at| TornShape::ZeroedSector { offset: at })
}

/// The shape of a damaged segment header (the first `header_len` bytes), if a crash can leave it
/// (the segment was created and the crash came before its header was fsynced).
pub fn header_crash_shape(bytes: &[u8], header_len: u64) -> Option<TornShape> {
    if (bytes.len() as u64) < header_len {
        return Some(TornShape::ShortFile);
    }
    zeroed_piece(bytes, 0, header_len).map(|at| TornShape::ZeroedSector { offset: at })
}

/// Whether everything from `offset` to the end of a segment holding `bytes` is what a crash
/// leaves of a sync mark written at `offset` and nothing after it: the file ends within the
/// mark's bytes or only zeros (a preallocated region) follow them, and each of the mark's pieces
/// between 512-byte boundaries is either the mark's or zeros. The engine writes a sync mark on
/// its own only right after an fsync succeeded, so then everything before `offset` was synced
/// and no record was lost.
pub fn is_torn_sync_mark(bytes: &[u8], segment: u64, offset: u64) -> bool {
    let Some(tail) = bytes.get(offset as usize..) else {
        return false;
    };
    if tail.is_empty() || !tail.iter().skip(HEADER_LEN).all(|b| *b == 0) {
        return false;
    }
    let mut mark = Vec::with_capacity(HEADER_LEN);
    record::encode(&mut mark, segment, offset, RecordKind::SyncMark, 0, &[]);
    let mut piece = offset;
    let end = (bytes.len() as u64).min(offset + HEADER_LEN as u64);
    while piece < end {
        let piece_end = ((piece / TORN_WRITE_UNIT + 1) * TORN_WRITE_UNIT).min(end);
        let found = &bytes[piece as usize..piece_end as usize];
        let written = &mark[(piece - offset) as usize..(piece_end - offset) as usize];
        if found != written && found.iter().any(|b| *b != 0) {
            return false;
        }
        piece = piece_end;
    }
    true
}

/// The start of the first piece of `bytes[start..end]` between [`TORN_WRITE_UNIT`] boundaries
/// that is all zeros, if there is one.
fn zeroed_piece(bytes: &[u8], start: u64, end: u64) -> Option<u64> {
    let end = end.min(bytes.len() as u64);
    let mut piece = start;
    while piece < end {
        let piece_end = ((piece / TORN_WRITE_UNIT + 1) * TORN_WRITE_UNIT).min(end);
        if bytes[piece as usize..piece_end as usize]
            .iter()
            .all(|b| *b == 0)
        {
            return Some(piece);
        }
        piece = piece_end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{self, RecordKind};

    /// A segment body holding one 1,500-byte entry record at byte 24.
    fn file() -> Vec<u8> {
        let mut bytes = vec![7u8; 24];
        record::encode(
            &mut bytes,
            1,
            24,
            RecordKind::Entry,
            1,
            &[0xAB; 1500 - HEADER_LEN],
        );
        bytes
    }

    fn shape(bytes: &[u8]) -> Option<TornShape> {
        let error = record::decode(&bytes[24..], 1, 24).unwrap_err();
        crash_shape(bytes, 24, &error)
    }

    #[test]
    fn a_record_cut_by_the_end_of_the_file_is_torn() {
        let bytes = file();
        for len in [30, 500, 512, 1400] {
            assert_eq!(shape(&bytes[..len]), Some(TornShape::ShortFile), "{len}");
        }
    }

    #[test]
    fn a_lost_sector_inside_the_record_is_torn() {
        let mut bytes = file();
        bytes[512..1024].fill(0);
        assert_eq!(shape(&bytes), Some(TornShape::ZeroedSector { offset: 512 }));
        // The record's first piece (bytes 24..512) lost, the header with it.
        let mut bytes = file();
        bytes[24..512].fill(0);
        assert_eq!(shape(&bytes), Some(TornShape::ZeroedSector { offset: 24 }));
    }

    #[test]
    fn a_flipped_bit_in_a_complete_record_is_corruption() {
        for at in [25, 40, 600, 1499] {
            let mut bytes = file();
            bytes[at] ^= 0x20;
            assert_eq!(shape(&bytes), None, "a flipped bit at byte {at}");
        }
    }

    #[test]
    fn zeros_that_do_not_fill_a_sector_piece_are_corruption() {
        let mut bytes = file();
        bytes[600..1000].fill(0);
        assert_eq!(shape(&bytes), None);
    }

    #[test]
    fn a_sync_mark_torn_by_a_crash_is_recognised_and_nothing_else_is() {
        let mut mark = Vec::new();
        record::encode(&mut mark, 1, 500, RecordKind::SyncMark, 0, &[]);
        let mut bytes = vec![9u8; 500];
        bytes.extend_from_slice(&mark);
        assert!(is_torn_sync_mark(&bytes[..510], 1, 500), "cut by the end");
        let mut zeroed = bytes.clone();
        zeroed[500..512].fill(0);
        assert!(is_torn_sync_mark(&zeroed, 1, 500), "first piece lost");
        let mut flipped = bytes.clone();
        flipped[515] ^= 1;
        assert!(!is_torn_sync_mark(&flipped, 1, 500), "a flipped bit");
        let mut longer = zeroed.clone();
        longer.extend_from_slice(&[0; 4]);
        assert!(
            is_torn_sync_mark(&longer, 1, 500),
            "zeros written ahead follow it"
        );
        longer.extend_from_slice(&[0, 3, 0]);
        assert!(!is_torn_sync_mark(&longer, 1, 500), "something follows it");
        let mut entry = vec![9u8; 500];
        record::encode(&mut entry, 1, 500, RecordKind::Entry, 1, b"x");
        assert!(!is_torn_sync_mark(&entry[..520], 1, 500), "an entry record");
    }

    #[test]
    fn a_segment_header_is_judged_the_same_way() {
        assert_eq!(
            header_crash_shape(&[1, 2, 3], 24),
            Some(TornShape::ShortFile)
        );
        assert_eq!(
            header_crash_shape(&[0; 24], 24),
            Some(TornShape::ZeroedSector { offset: 0 })
        );
        assert_eq!(header_crash_shape(&[9; 24], 24), None);
    }
}
