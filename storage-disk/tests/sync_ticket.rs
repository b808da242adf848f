//! Syncs run off the storage's lock (`begin_sync`, `SyncTicket::run`, `finish_sync`): a
//! crash-point sweep of a pipelined workload (writes between a ticket's begin, its fsync and its
//! finish, rotations, snapshots, compactions, an install, two tickets outstanding at once), the
//! sync mark's place when records follow the ticket's position, a failed fsync that no later
//! fsync may cover up, and the lock left free while the fsync runs.

mod common;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::model::{check, model_of, reshape, Model, Reshape};
use common::*;
use raft_core::eraftpb::{ConfState, Entry, HardState, SnapshotMetadata};
use raft_core::{Error, Storage, NO_LIMIT};
use storage_disk::io::{Fs, FsFile, SimFs};
use storage_disk::{DiskStorage, FinishedSync, Options, SyncTicket, WriteBatch};
use storage_mem::MemStorage;

/// The record kind code of a sync mark.
const SYNC_MARK: u32 = 2;

/// One step of the pipelined workload.
#[derive(Debug, Clone)]
enum Step {
    /// A Ready's entries and hard state, written without a sync.
    Write(Box<WriteBatch>),
    /// Begins ticket `n`.
    Begin(u32),
    /// Runs ticket `n`'s fsync.
    Run(u32),
    /// Finishes ticket `n`: once it returns Ok, what was written before its begin is durable.
    Finish(u32),
    Snapshot(u64),
    Compact(u64),
    Install(u64, u64),
}

/// Rounds of one Ready each; every third round begins a ticket, which the next round's write
/// precedes the fsync of and the one after that precedes the finish of. Snapshots and
/// compactions (each a checkpoint, an fsync under the lock) and a leader's snapshot fall between
/// a ticket's fsync and its finish; two rounds keep a second ticket outstanding, one of them
/// finishing the newer ticket first. Small segments make writes rotate between begin and finish.
fn script() -> Vec<Step> {
    let mut steps = Vec::new();
    let (mut last, mut term, mut commit) = (0u64, 1u64, 0u64);
    for round in 0..27u32 {
        let mut start = last + 1;
        if round % 7 == 3 && last > commit + 1 {
            // A new leader replaces the last uncommitted entry.
            start = last;
            term += 1;
        }
        let entries: Vec<Entry> = (start..start + 3).map(|i| ent(i, term)).collect();
        last = start + 2;
        let hard_state = HardState {
            term,
            vote: 1,
            commit,
        };
        let conf_state = (round % 5 == 2).then(|| conf(&[1, 2, 3, 4 + u64::from(round)]));
        steps.push(Step::Write(Box::new(WriteBatch {
            entries,
            hard_state: Some(hard_state),
            conf_state,
            ..Default::default()
        })));
        commit = last - 1;
        match round % 3 {
            0 => steps.push(Step::Begin(round)),
            1 => steps.push(Step::Run(round - 1)),
            _ => steps.push(Step::Finish(round - 2)),
        }
        if round % 6 == 4 {
            steps.push(Step::Write(Box::new(WriteBatch {
                hard_state: Some(HardState {
                    term,
                    vote: 1,
                    commit,
                }),
                ..Default::default()
            })));
            steps.push(Step::Snapshot(commit));
            steps.push(Step::Compact(commit - 2));
        }
        if round == 10 {
            // A second ticket while the first is run and not finished; the older finishes first.
            steps.push(Step::Begin(100));
        }
        if round == 11 {
            steps.push(Step::Run(100));
            steps.push(Step::Finish(100));
        }
        if round == 19 {
            // The newer ticket finishes before the older one (ticket 18, finished next round).
            steps.extend([Step::Begin(200), Step::Run(200), Step::Finish(200)]);
        }
        if round == 16 {
            term += 1;
            last += 4;
            commit = last;
            steps.push(Step::Install(last, term));
        }
    }
    steps
}

/// A ticket of the workload, before or after its fsync, and the model it makes durable.
enum Ticket {
    Begun(SyncTicket, usize),
    Ran(FinishedSync, usize),
}

/// Runs the workload on `fs` until the disk fails. Returns the models after each step (0: the
/// new storage, 1: its membership set and synced, then one per step), whether each is known
/// durable, and the index of the model whose step failed (`models.len()` if none did).
fn run(fs: &SimFs, steps: &[Step]) -> (Vec<Model>, Vec<bool>, usize) {
    let mem = MemStorage::new_with_conf_state(conf(&[1, 2, 3]));
    let created = Model {
        conf_state: ConfState::default(),
        ..model_of(&mem, SnapshotMetadata::default())
    };
    let mut models = vec![created, model_of(&mem, SnapshotMetadata::default())];
    let mut durable = vec![true, false];
    let Ok(disk) = open(fs, &small_options()) else {
        return (models, durable, 0);
    };
    disk.wl().set_conf_state(conf(&[1, 2, 3]));
    if disk.wl().sync().is_err() {
        return (models, durable, 1);
    }
    durable[1] = true;
    let mut tickets: BTreeMap<u32, Ticket> = BTreeMap::new();
    for (n, step) in steps.iter().enumerate() {
        let before = models.len() - 1;
        let result = match step {
            Step::Write(batch) => {
                mem.wl().append(&batch.entries).unwrap();
                if let Some(hs) = batch.hard_state {
                    mem.wl().set_hardstate(hs);
                }
                if let Some(cs) = &batch.conf_state {
                    mem.wl().set_conf_state(cs.clone());
                }
                disk.wl().write((**batch).clone(), false)
            }
            Step::Begin(t) => disk.wl().begin_sync().map(|ticket| {
                tickets.insert(*t, Ticket::Begun(ticket, before));
            }),
            Step::Run(t) => {
                let Some(Ticket::Begun(ticket, model)) = tickets.remove(t) else {
                    panic!("ticket {t} is run once, after its begin");
                };
                tickets.insert(*t, Ticket::Ran(ticket.run(), model));
                Ok(())
            }
            Step::Finish(t) => {
                let Some(Ticket::Ran(finished, model)) = tickets.remove(t) else {
                    panic!("ticket {t} is finished once, after its run");
                };
                let result = disk.wl().finish_sync(finished);
                if result.is_ok() {
                    durable[model] = true;
                }
                result
            }
            Step::Snapshot(index) => reshape(&mem, &disk, Reshape::Snapshot(*index)),
            Step::Compact(index) => reshape(&mem, &disk, Reshape::Compact(*index)),
            Step::Install(index, term) => reshape(&mem, &disk, Reshape::Install(*index, *term)),
        };
        models.push(model_of(&mem, mem.rl().snapshot_metadata().clone()));
        let syncs_all = matches!(
            step,
            Step::Snapshot(_) | Step::Compact(_) | Step::Install(..)
        );
        durable.push(result.is_ok() && syncs_all);
        if result.is_err() {
            return (models, durable, n + 2);
        }
    }
    assert!(tickets.is_empty(), "every ticket of the script is finished");
    let end = models.len();
    (models, durable, end)
}

fn sweep(seed: u64) -> u64 {
    let steps = script();
    let full = sim(seed);
    let (models, _, failed) = run(&full, &steps);
    assert_eq!(
        failed,
        steps.len() + 2,
        "the workload runs on a healthy disk"
    );
    assert!(models.len() > 70);
    let points = full.points();
    for point in 0..points {
        let fs = sim(seed);
        fs.halt_at_point(point);
        let (models, durable, failed) = run(&fs, &steps);
        let last_durable = durable.iter().rposition(|d| *d).expect("model 0 is");
        let after = fs.crash();
        let context = format!("seed {seed}, crash at point {point} of {points} (step {failed})");
        let recovered = open(&after, &small_options())
            .unwrap_or_else(|e| panic!("{context}: recovery failed after a mere crash: {e}"));
        let got = model_of(&recovered, recovered.rl().snapshot_metadata().clone());
        check(&got, &models, last_durable, failed, &context);
    }
    points
}

#[test]
fn every_crash_point_of_a_pipelined_workload_recovers_what_finished_tickets_synced() {
    let mut total = 0;
    for seed in 0..8 {
        total += sweep(seed);
    }
    assert!(total > 1000, "the sweep covered only {total} crash points");
}

/// Entries 1..=5 written and synced, on `fs`, with 64 MiB segments (no rotation).
fn synced_five(fs: &SimFs) -> DiskStorage {
    let disk = open(fs, &Options::default()).unwrap();
    disk.wl().set_conf_state(conf(&[1, 2, 3]));
    disk.wl().write(ready(1, 5, 4), true).unwrap();
    disk
}

/// The sync marks of segment 1 (their offsets).
fn sync_marks(fs: &SimFs) -> Vec<u64> {
    walk_records(&records(fs, 1))
        .into_iter()
        .filter(|r| r.kind == SYNC_MARK)
        .map(|r| r.offset)
        .collect()
}

#[test]
fn records_written_while_the_fsync_ran_get_no_sync_mark_and_a_crash_may_tear_them() {
    let mut torn = 0;
    for seed in 0..64 {
        let fs = sim(seed);
        let disk = synced_five(&fs);
        disk.wl().write(ready(6, 8, 5), false).unwrap();
        let ticket = disk.wl().begin_sync().unwrap();
        let finished = ticket.run();
        // Written after the fsync started: the fsync may not have carried them.
        disk.wl().write(ready(9, 14, 8), false).unwrap();
        let marks_before = sync_marks(&fs);
        disk.wl().finish_sync(finished).unwrap();
        assert_eq!(
            sync_marks(&fs),
            marks_before,
            "seed {seed}: a sync mark after records the fsync did not cover"
        );
        drop(disk);
        let after = fs.crash();
        let recovered = open(&after, &Options::default()).unwrap_or_else(|e| {
            panic!("seed {seed}: a crash that tore the unsynced records is not corruption: {e}")
        });
        let last = recovered.last_index().unwrap();
        assert!(
            (8..=14).contains(&last),
            "seed {seed}: the ticket made 1..=8 durable; recovered up to {last}"
        );
        let entries = recovered.entries(1, last + 1, NO_LIMIT).unwrap();
        assert!(entries.iter().zip(1..).all(|(e, i)| *e == ent(i, 1)));
        torn += usize::from(recovered.rl().recovery().torn_tail.is_some());
    }
    assert!(
        torn > 0,
        "no crash tore the records written during the fsync"
    );
}

#[test]
fn a_ticket_with_nothing_written_after_it_leaves_a_sync_mark_at_its_position() {
    let fs = sim(3);
    let disk = synced_five(&fs);
    disk.wl().write(ready(6, 8, 5), false).unwrap();
    let ticket = disk.wl().begin_sync().unwrap();
    assert!(!ticket.is_empty());
    let end = log_end(&fs.contents(&segment(1)).unwrap()) as u64;
    let syncs = fs.sync_count();
    disk.wl().finish_sync(ticket.run()).unwrap();
    assert_eq!(fs.sync_count(), syncs + 1, "one fsync");
    assert_eq!(
        sync_marks(&fs).last(),
        Some(&end),
        "the mark right after the synced records"
    );
    // Everything is synced: the next ticket has nothing to do and costs no fsync.
    let ticket = disk.wl().begin_sync().unwrap();
    assert!(ticket.is_empty());
    disk.wl().finish_sync(ticket.run()).unwrap();
    assert_eq!(fs.sync_count(), syncs + 1);
}

#[test]
fn records_left_unproven_by_a_ticket_are_synced_and_marked_by_the_next_one() {
    let fs = sim(4);
    let disk = synced_five(&fs);
    disk.wl().write(ready(6, 8, 5), false).unwrap();
    let finished = disk.wl().begin_sync().unwrap().run();
    disk.wl().write(ready(9, 10, 8), false).unwrap();
    disk.wl().finish_sync(finished).unwrap();
    let next = disk.wl().begin_sync().unwrap();
    assert!(!next.is_empty(), "9 and 10 still need an fsync");
    disk.wl().finish_sync(next.run()).unwrap();
    let end = log_end(&fs.contents(&segment(1)).unwrap()) as u64;
    assert_eq!(sync_marks(&fs).last().map(|m| m + 24), Some(end));
    drop(disk);
    let recovered = open(&fs.crash(), &Options::default()).unwrap();
    assert_eq!(recovered.last_index().unwrap(), 10);
}

#[test]
fn a_failed_fsync_off_the_lock_is_never_covered_by_a_later_fsync() {
    let fs = sim(5);
    let disk = synced_five(&fs);
    disk.wl().write(ready(6, 8, 5), false).unwrap();
    let ticket = disk.wl().begin_sync().unwrap();
    fs.fail_next_sync();
    let finished = ticket.run();
    assert!(!finished.succeeded());
    // Before the failure is reported to the storage, a sync under the lock would succeed on the
    // simulated disk as on Linux (the pages were marked clean): it must not even be tried.
    let syncs = fs.sync_count();
    assert!(disk.wl().write(ready(9, 9, 8), true).is_err());
    assert!(disk.wl().sync().is_err());
    assert_eq!(fs.sync_count(), syncs, "an fsync ran after the failed one");
    let err = disk.wl().finish_sync(finished).unwrap_err();
    assert!(format!("{err}").contains("fsync"), "{err}");
    assert!(disk.rl().failure().is_some_and(|why| why.contains("fsync")));
    assert!(
        disk.wl().append(&[ent(10, 1)]).is_err(),
        "writes are refused"
    );
    assert!(disk.wl().begin_sync().is_err(), "and syncs");
}

#[test]
fn a_ticket_outlived_by_its_segment_finishes_without_writing() {
    let fs = sim(6);
    let disk = open(&fs, &small_options()).unwrap();
    disk.wl().set_conf_state(conf(&[1, 2, 3]));
    disk.wl().write(ready(1, 8, 6), false).unwrap();
    let ticket = disk.wl().begin_sync().unwrap();
    assert!(
        fs.contents(&segment(2)).is_none(),
        "the ticket is for segment 1"
    );
    // Segment 1 fills up, and the write after starts segment 2, fsyncing segment 1 first.
    disk.wl().write(ready(9, 30, 28), false).unwrap();
    assert!(fs.contents(&segment(2)).is_none());
    disk.wl().write(ready(31, 32, 30), false).unwrap();
    assert!(fs.contents(&segment(2)).is_some(), "the log rotated");
    let writes = fs.write_count();
    disk.wl().finish_sync(ticket.run()).unwrap();
    assert_eq!(fs.write_count(), writes, "no sync mark in a closed segment");
    drop(disk);
    let recovered = open(&fs.crash(), &small_options()).unwrap();
    assert!(recovered.last_index().unwrap() >= 30);
}

#[test]
fn a_ticket_finished_on_another_storage_is_refused() {
    let (fs_a, fs_b) = (sim(7), sim(8));
    let (a, b) = (synced_five(&fs_a), synced_five(&fs_b));
    a.wl().write(ready(6, 6, 5), false).unwrap();
    let finished = a.wl().begin_sync().unwrap().run();
    assert!(matches!(
        b.wl().finish_sync(finished),
        Err(Error::Invariant(_))
    ));
}

/// Armed: the next fsync says it started, then waits for the release.
type Hold = Arc<Mutex<Option<(Sender<()>, Receiver<()>)>>>;

/// A simulated disk whose next file fsync, once armed, waits until released.
#[derive(Clone)]
struct HeldSyncs {
    inner: SimFs,
    hold: Hold,
}

struct HeldFile {
    inner: Box<dyn FsFile>,
    hold: Hold,
}

impl FsFile for HeldFile {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.inner.write_at(offset, data)
    }
    fn truncate(&self, len: u64) -> io::Result<()> {
        self.inner.truncate(len)
    }
    fn sync(&self) -> io::Result<()> {
        if let Some((started, release)) = self.hold.lock().unwrap().take() {
            started.send(()).unwrap();
            release.recv().unwrap();
        }
        self.inner.sync()
    }
    fn preallocate(&self, len: u64) -> io::Result<()> {
        self.inner.preallocate(len)
    }
}

impl Fs for HeldSyncs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let inner = self.inner.create(path)?;
        Ok(Box::new(HeldFile {
            inner,
            hold: self.hold.clone(),
        }))
    }
    fn open(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let inner = self.inner.open(path)?;
        Ok(Box::new(HeldFile {
            inner,
            hold: self.hold.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
}

#[test]
fn the_lock_is_free_while_a_ticket_fsyncs() {
    let fs = HeldSyncs {
        inner: sim(9),
        hold: Arc::new(Mutex::new(None)),
    };
    let disk = DiskStorage::open(Arc::new(fs.clone()), dir(), Options::default()).unwrap();
    disk.wl().set_conf_state(conf(&[1, 2, 3]));
    disk.wl().write(ready(1, 5, 4), true).unwrap();
    disk.wl().write(ready(6, 8, 5), false).unwrap();
    let ticket = disk.wl().begin_sync().unwrap();
    let (started_tx, started) = channel();
    let (release, release_rx) = channel();
    *fs.hold.lock().unwrap() = Some((started_tx, release_rx));
    let syncing = thread::spawn(move || ticket.run());
    started.recv().unwrap();
    // The fsync is held. Reads and writes go on; were the lock held, they would wait for ever.
    let (done_tx, done) = channel();
    let other = disk.clone();
    thread::spawn(move || {
        let read = other.entries(1, 9, NO_LIMIT).map(|e| e.len());
        let written = other.wl().write(ready(9, 10, 8), false);
        let _ = done_tx.send((read, written));
    });
    let (read, written) = done
        .recv_timeout(Duration::from_secs(60))
        .expect("the storage's lock was held through the fsync");
    assert_eq!(read.unwrap(), 8);
    written.unwrap();
    release.send(()).unwrap();
    let finished = syncing.join().unwrap();
    disk.wl().finish_sync(finished).unwrap();
    assert_eq!(disk.last_index().unwrap(), 10);
}
