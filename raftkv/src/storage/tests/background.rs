//! Snapshots written on a background thread ([`SnapshotJob`]) and adopted by the loop.

use super::*;

fn metadata(index: u64, term: u64) -> SnapshotMetadata {
    SnapshotMetadata {
        conf_state: Some(voters(&[1, 2, 3])),
        index,
        term,
    }
}

fn temporary_files(dir: &TempDir) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    names.sort();
    names
}

/// A storage with entries 2..=20 of term 2, committed up to 20.
fn with_log(dir: &TempDir) -> DiskStorage {
    let storage = open_initialized(dir);
    storage.wl().append(&entries(2..=20, 2)).unwrap();
    storage.wl().set_commit(20).unwrap();
    storage.wl().sync().unwrap();
    storage
}

#[test]
fn an_adopted_snapshot_compacts_the_log_and_keeps_what_was_appended_meanwhile() {
    let dir = TempDir::new("made");
    let storage = with_log(&dir);
    let job = storage.rl().snapshot_job(metadata(15, 2), 5);
    // The loop goes on while the thread writes: more entries, one replacing suffix included.
    storage.wl().append(&entries(21..=25, 2)).unwrap();
    storage.wl().append(&entries(24..=26, 3)).unwrap();
    let made = job.write(Bytes::from_static(b"state at 15")).unwrap();
    assert_eq!(made.metadata().index, 15);
    assert_eq!(
        temporary_files(&dir),
        ["snapshot.made.tmp", "wal.made.tmp"],
        "written beside the storage's files, not over them"
    );
    assert_eq!(storage.snapshot(0, 2).unwrap().data, "initial state");

    assert!(storage.wl().adopt_snapshot(made).unwrap());
    let expected: Vec<Entry> = entries(11..=23, 2)
        .into_iter()
        .chain(entries(24..=26, 3))
        .collect();
    assert_eq!(
        storage.first_index().unwrap(),
        11,
        "keeps 5 entries up to 15"
    );
    assert_eq!(all_entries(&storage), expected);
    assert_eq!(storage.snapshot(0, 2).unwrap().data, "state at 15");
    assert!(temporary_files(&dir).is_empty());
    // The new WAL goes on taking appends.
    storage.wl().append(&entries(27..=27, 3)).unwrap();
    storage.wl().sync().unwrap();
    drop(storage);

    let reopened = DiskStorage::open(&dir.0).unwrap();
    let expected: Vec<Entry> = expected.into_iter().chain(entries(27..=27, 3)).collect();
    assert_eq!(all_entries(&reopened), expected);
    assert_eq!(reopened.first_index().unwrap(), 11);
    let snapshot = reopened.snapshot(0, 2).unwrap();
    assert_eq!(snapshot.data, "state at 15");
    assert_eq!(snapshot.metadata.unwrap().index, 15);
    assert_eq!(reopened.rl().recovery(), &Recovery::default());
}

#[test]
fn a_snapshot_keeping_the_whole_log_leaves_the_wal_alone() {
    let dir = TempDir::new("made-keep-all");
    let storage = with_log(&dir);
    let job = storage.rl().snapshot_job(metadata(10, 2), 1000);
    let made = job.write(Bytes::from_static(b"state at 10")).unwrap();
    assert_eq!(temporary_files(&dir), ["snapshot.made.tmp"]);
    assert!(storage.wl().adopt_snapshot(made).unwrap());
    assert_eq!(storage.first_index().unwrap(), 2);
    assert_eq!(all_entries(&storage), entries(2..=20, 2));
    drop(storage);
    let reopened = DiskStorage::open(&dir.0).unwrap();
    assert_eq!(all_entries(&reopened), entries(2..=20, 2));
    assert_eq!(reopened.snapshot(0, 2).unwrap().data, "state at 10");
}

#[test]
fn a_snapshot_overtaken_by_an_installed_one_is_dropped_with_its_files() {
    let dir = TempDir::new("made-overtaken");
    let storage = with_log(&dir);
    let job = storage.rl().snapshot_job(metadata(15, 2), 5);
    let incoming = Snapshot {
        data: Bytes::from_static(b"leader state at 30"),
        metadata: Some(metadata(30, 4)),
    };
    storage.wl().apply_snapshot(incoming.clone()).unwrap();
    let made = job.write(Bytes::from_static(b"state at 15")).unwrap();
    assert!(!storage.wl().adopt_snapshot(made).unwrap());
    assert!(temporary_files(&dir).is_empty(), "its files are removed");
    assert_eq!(storage.snapshot(0, 2).unwrap(), incoming);
    assert_eq!(storage.first_index().unwrap(), 31);
    drop(storage);
    let reopened = DiskStorage::open(&dir.0).unwrap();
    assert_eq!(reopened.snapshot(0, 2).unwrap(), incoming);
    assert_eq!(reopened.last_index().unwrap(), 30);
}

#[test]
fn a_snapshot_beyond_the_commit_index_is_not_adopted() {
    let dir = TempDir::new("made-uncommitted");
    let storage = open_initialized(&dir);
    storage.wl().append(&entries(2..=20, 2)).unwrap();
    storage.wl().set_commit(12).unwrap();
    let job = storage.rl().snapshot_job(metadata(15, 2), 5);
    let made = job.write(Bytes::from_static(b"state at 15")).unwrap();
    assert!(!storage.wl().adopt_snapshot(made).unwrap());
    assert_eq!(all_entries(&storage), entries(2..=20, 2));
    assert_eq!(storage.snapshot(0, 2).unwrap().data, "initial state");
}

#[test]
fn a_crash_before_adoption_leaves_the_storage_as_it_was() {
    let dir = TempDir::new("made-crash");
    let storage = with_log(&dir);
    let job = storage.rl().snapshot_job(metadata(15, 2), 5);
    let made = job.write(Bytes::from_static(b"state at 15")).unwrap();
    // The process dies here: the temporary files stay behind.
    drop(made);
    drop(storage);
    let reopened = DiskStorage::open(&dir.0).unwrap();
    assert!(temporary_files(&dir).is_empty(), "removed on open");
    assert_eq!(all_entries(&reopened), entries(2..=20, 2));
    assert_eq!(reopened.snapshot(0, 2).unwrap().data, "initial state");
}
