//! [`SimFs`]: a deterministic simulated disk that loses, tears, reorders and corrupts writes.
//!
//! Each file keeps two images: what reads see (the page cache) and what is durable (the medium
//! after the last successful fsync), plus the writes made since, in order. A crash
//! ([`SimFs::crash`]) builds the disk a power loss leaves: the durable image of each file plus
//! a random subset of the sectors of its unsynced writes, and the durable directory entries plus
//! a random prefix of the unsynced creations, renames and removals. Every random choice comes from
//! one seeded Xoshiro256++ generator, so the same seed and the same calls give the same disk.
//!
//! Simplifications: directories are durable as soon as they are created, and a file's length is
//! the length of its durable image after a crash (a lost write past the end leaves no zeros,
//! a kept sector past a lost one leaves zeros in between, as on a real file system).
//!
//! [`FsFile::preallocate`] is a write of zeros from the end of the file, as `RealFs` does it:
//! once synced, its zeros survive a crash; before, a crash keeps a random subset of its sectors,
//! and the faults of a write apply to it. Its zeros add unsynced sectors and so draws from the
//! generator at a crash: a run that preallocates differs from one that does not, seed for seed.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use super::{DamagedWrite, FaultConfig, Fs, FsFile, InjectedFaults};

/// A simulated disk; clones share it. See the module documentation for what it models.
#[derive(Debug, Clone)]
pub struct SimFs {
    state: Arc<Mutex<SimState>>,
}

/// One unsynced change to a file.
#[derive(Debug, Clone)]
enum Pending {
    Write { offset: u64, data: Vec<u8> },
    Truncate(u64),
}

#[derive(Debug, Clone, Default)]
struct Inode {
    /// What reads return.
    data: Vec<u8>,
    /// What survives a crash for sure.
    durable: Vec<u8>,
    /// The changes since the last successful fsync (or since one failed), in order.
    pending: Vec<Pending>,
}

/// An unsynced change to a directory.
#[derive(Debug, Clone)]
enum DirOp {
    Link(PathBuf, u64),
    Unlink(PathBuf),
    /// A rename is one atomic change on a journaled file system: both names change or neither.
    Rename {
        from: PathBuf,
        to: PathBuf,
        id: u64,
    },
}

fn apply_dir_op(names: &mut BTreeMap<PathBuf, u64>, op: &DirOp) {
    match op {
        DirOp::Link(path, id) => {
            names.insert(path.clone(), *id);
        }
        DirOp::Unlink(path) => {
            names.remove(path);
        }
        DirOp::Rename { from, to, id } => {
            names.remove(from);
            names.insert(to.clone(), *id);
        }
    }
}

/// A fault armed for the next write to one file (see [`SimFs::misdirect_next_write`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArmedFault {
    Misdirect,
    Lose,
}

#[derive(Debug)]
struct SimState {
    rng: Xoshiro256PlusPlus,
    config: FaultConfig,
    inodes: BTreeMap<u64, Inode>,
    next_inode: u64,
    /// The directory entries reads see.
    names: BTreeMap<PathBuf, u64>,
    /// The directory entries that survive a crash for sure.
    durable_names: BTreeMap<PathBuf, u64>,
    /// Unsynced directory changes, in order: (directory, change).
    pending_dir: Vec<(PathBuf, DirOp)>,
    dirs: BTreeSet<PathBuf>,
    /// Mutating operations so far (the "points" a crash sweep enumerates).
    points: u64,
    /// Successful file fsyncs so far.
    syncs: u64,
    /// Successful [`FsFile::write_at`] calls so far (preallocations not counted).
    writes: u64,
    /// Successful [`FsFile::preallocate`] calls that extended a file, so far.
    preallocations: u64,
    halt_at: Option<u64>,
    halted: bool,
    fail_next_sync: bool,
    fail_next_read: bool,
    fail_next_write_no_space: bool,
    /// The faults injected so far.
    injected: InjectedFaults,
    /// Faults armed for the next write to a file, by its path.
    armed: Vec<(PathBuf, ArmedFault)>,
    /// The writes misdirected or lost so far.
    damaged_writes: Vec<DamagedWrite>,
}

fn halted_error() -> io::Error {
    io::Error::other("simulated disk: power lost (halted)")
}

fn apply(image: &mut Vec<u8>, op: &Pending) {
    match op {
        Pending::Write { offset, data } => {
            let start = *offset as usize;
            let end = start + data.len();
            if image.len() < end {
                image.resize(end, 0);
            }
            image[start..end].copy_from_slice(data);
        }
        Pending::Truncate(len) => image.resize(*len as usize, 0),
    }
}

impl SimState {
    fn new(seed: u64, config: FaultConfig) -> SimState {
        SimState {
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            config,
            inodes: BTreeMap::new(),
            next_inode: 1,
            names: BTreeMap::new(),
            durable_names: BTreeMap::new(),
            pending_dir: Vec::new(),
            dirs: BTreeSet::new(),
            points: 0,
            syncs: 0,
            writes: 0,
            preallocations: 0,
            halt_at: None,
            halted: false,
            fail_next_sync: false,
            fail_next_read: false,
            fail_next_write_no_space: false,
            injected: InjectedFaults::default(),
            armed: Vec::new(),
            damaged_writes: Vec::new(),
        }
    }

    /// The path of inode `id` as reads see it, if it has one.
    fn path_of(&self, id: u64) -> Option<PathBuf> {
        self.names
            .iter()
            .find(|(_, inode)| **inode == id)
            .map(|(path, _)| path.clone())
    }

    /// Takes the fault armed for the next write to inode `id`, if there is one.
    fn take_armed(&mut self, id: u64) -> Option<ArmedFault> {
        let names = &self.names;
        let at = self
            .armed
            .iter()
            .position(|(path, _)| names.get(path) == Some(&id))?;
        Some(self.armed.remove(at).1)
    }

    /// Counts one mutating operation; fails if the disk is halted or halts here. Returns whether
    /// this is the operation the disk halts at (a write there still lands, unsynced).
    fn point(&mut self) -> io::Result<bool> {
        if self.halted {
            return Err(halted_error());
        }
        let point = self.points;
        self.points += 1;
        if self.halt_at == Some(point) {
            self.halted = true;
            return Ok(true);
        }
        Ok(false)
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.random_bool(p.min(1.0))
    }

    fn used_bytes(&self) -> u64 {
        self.inodes.values().map(|i| i.data.len() as u64).sum()
    }

    fn inode(&mut self, id: u64) -> io::Result<&mut Inode> {
        self.inodes
            .get_mut(&id)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "simulated disk: no inode"))
    }

    fn check_dir(&self, path: &Path) -> io::Result<PathBuf> {
        let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
        if !self.dirs.contains(&dir) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("simulated disk: no directory {}", dir.display()),
            ));
        }
        Ok(dir)
    }

    fn write(&mut self, id: u64, offset: u64, data: &[u8]) -> io::Result<()> {
        let halting = self.point()?;
        let current = self.inode(id)?.data.len() as u64;
        let end = offset + data.len() as u64;
        if std::mem::take(&mut self.fail_next_write_no_space)
            || (end > current && self.used_bytes() + (end - current) > self.config.capacity_bytes)
        {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "simulated disk: no space left on device",
            ));
        }
        let mut data = data.to_vec();
        let mut offset = offset;
        if !data.is_empty() && self.chance(self.config.bit_flip) {
            let bit = self.rng.random_range(0..data.len() * 8);
            data[bit / 8] ^= 1 << (bit % 8);
            self.injected.bit_flips += 1;
        }
        let aimed = offset;
        let armed = if self.armed.is_empty() {
            None
        } else {
            self.take_armed(id)
        };
        let misdirected = self.chance(self.config.misdirected_write);
        if misdirected || armed == Some(ArmedFault::Misdirect) {
            self.injected.misdirected_writes += 1;
            let sector = self.config.sector_size;
            offset = if offset >= sector {
                offset - sector
            } else {
                offset + sector
            };
        }
        let lost = armed == Some(ArmedFault::Lose);
        if lost {
            self.injected.lost_writes += 1;
        }
        if offset != aimed || lost {
            let damaged = DamagedWrite {
                path: self.path_of(id),
                offset: aimed,
                len: data.len() as u64,
                landed: (!lost).then_some(offset),
            };
            self.damaged_writes.push(damaged);
        }
        let op = Pending::Write { offset, data };
        let inode = self.inode(id)?;
        apply(&mut inode.data, &op);
        // A lost write is in the page cache, and never reaches the medium: no fsync makes it
        // durable, and a crash forgets it.
        if !lost {
            inode.pending.push(op);
        }
        if halting {
            return Err(halted_error());
        }
        Ok(())
    }

    fn truncate(&mut self, id: u64, len: u64) -> io::Result<()> {
        if self.point()? {
            return Err(halted_error());
        }
        let current = self.inode(id)?.data.len() as u64;
        if len > current && self.used_bytes() + (len - current) > self.config.capacity_bytes {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "simulated disk: no space left on device",
            ));
        }
        let op = Pending::Truncate(len);
        let inode = self.inode(id)?;
        apply(&mut inode.data, &op);
        inode.pending.push(op);
        Ok(())
    }

    fn sync(&mut self, id: u64) -> io::Result<()> {
        if self.point()? {
            return Err(halted_error());
        }
        let fail = std::mem::take(&mut self.fail_next_sync) || self.chance(self.config.sync_error);
        let inode = self.inode(id)?;
        let pending = std::mem::take(&mut inode.pending);
        if fail {
            self.injected.sync_errors += 1;
            // The pages are marked clean without reaching the medium: reads still see them, a
            // crash loses them, and a later fsync reports success ("fsyncgate").
            return Err(io::Error::other("simulated disk: fsync failed (EIO)"));
        }
        for op in &pending {
            apply(&mut inode.durable, op);
        }
        self.syncs += 1;
        Ok(())
    }

    fn read(&mut self, id: u64, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if self.halted {
            return Err(halted_error());
        }
        if std::mem::take(&mut self.fail_next_read) || self.chance(self.config.read_error) {
            self.injected.read_errors += 1;
            return Err(io::Error::other("simulated disk: read error (EIO)"));
        }
        let data = &self.inode(id)?.data;
        let start = offset as usize;
        let Some(src) = data.get(start..start + buf.len()) else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "simulated disk: read past the end of the file",
            ));
        };
        buf.copy_from_slice(src);
        Ok(())
    }

    /// The disk a power loss leaves behind (see the module documentation).
    fn crashed_image(&mut self) -> SimState {
        let seed = self.rng.random::<u64>();
        let mut after = SimState::new(seed, self.config.clone());
        after.dirs = self.dirs.clone();
        let keep = self.config.keep_unsynced;
        let sector = self.config.sector_size.max(1);
        let mut images = BTreeMap::new();
        let ids: Vec<u64> = self.inodes.keys().copied().collect();
        for id in ids {
            let mut image = self.inodes[&id].durable.clone();
            let pending = self.inodes[&id].pending.clone();
            for op in &pending {
                match op {
                    Pending::Write { offset, data } => {
                        let mut start = *offset;
                        let end = offset + data.len() as u64;
                        while start < end {
                            let piece_end = ((start / sector + 1) * sector).min(end);
                            if self.chance(keep) {
                                let from = (start - offset) as usize;
                                let to = (piece_end - offset) as usize;
                                let piece = Pending::Write {
                                    offset: start,
                                    data: data[from..to].to_vec(),
                                };
                                apply(&mut image, &piece);
                            }
                            start = piece_end;
                        }
                    }
                    Pending::Truncate(_) => {
                        if self.chance(keep) {
                            apply(&mut image, op);
                        }
                    }
                }
            }
            images.insert(id, image);
        }
        let mut names = self.durable_names.clone();
        let kept_dir_ops = if self.pending_dir.is_empty() {
            0
        } else {
            self.rng.random_range(0..=self.pending_dir.len())
        };
        for (_, op) in &self.pending_dir[..kept_dir_ops] {
            apply_dir_op(&mut names, op);
        }
        for (path, id) in names {
            let image = images.get(&id).cloned().unwrap_or_default();
            let new_id = after.next_inode;
            after.next_inode += 1;
            after.inodes.insert(
                new_id,
                Inode {
                    data: image.clone(),
                    durable: image,
                    pending: Vec::new(),
                },
            );
            after.names.insert(path.clone(), new_id);
            after.durable_names.insert(path, new_id);
        }
        after
    }
}

impl SimFs {
    /// An empty disk whose faults follow `config`, its random choices drawn from `seed`.
    pub fn new(seed: u64, config: FaultConfig) -> SimFs {
        SimFs {
            state: Arc::new(Mutex::new(SimState::new(seed, config))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panic while holding the lock leaves the disk as consistent as a power loss would.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Power loss: this disk halts (every later call on it or its open files fails) and the
    /// returned disk holds what survived. Two crashes of the same run give the same disk.
    pub fn crash(&self) -> SimFs {
        let mut state = self.lock();
        state.halted = true;
        SimFs {
            state: Arc::new(Mutex::new(state.crashed_image())),
        }
    }

    /// The number of mutating operations (writes, truncations, fsyncs, creations, renames,
    /// removals, directory fsyncs) made so far: the crash points of the run.
    pub fn points(&self) -> u64 {
        self.lock().points
    }

    /// The number of successful file fsyncs ([`FsFile::sync`]) so far, directory fsyncs not
    /// counted: what a write costs in fsyncs.
    pub fn sync_count(&self) -> u64 {
        self.lock().syncs
    }

    /// The number of successful [`FsFile::write_at`] calls so far, on every file (preallocations
    /// not counted): what a write costs in `pwrite`s.
    pub fn write_count(&self) -> u64 {
        self.lock().writes
    }

    /// The faults injected since this disk was made (by a probability of its [`FaultConfig`] or
    /// a one-shot trigger); bits flipped with [`flip_bit`](Self::flip_bit) are not counted.
    pub fn injected(&self) -> InjectedFaults {
        self.lock().injected
    }

    /// The writes misdirected or lost since this disk was made (a disk returned by
    /// [`crash`](Self::crash) starts again from none), in order.
    pub fn damaged_writes(&self) -> Vec<DamagedWrite> {
        self.lock().damaged_writes.clone()
    }

    /// The next write to the file at `path` (resolved when it is written) lands one sector
    /// away from where it was aimed, as [`FaultConfig::misdirected_write`] makes writes do: the
    /// aimed-at sectors keep their old contents, and the fsync after it succeeds.
    pub fn misdirect_next_write(&self, path: &Path) {
        let mut state = self.lock();
        state
            .armed
            .push((path.to_path_buf(), ArmedFault::Misdirect));
    }

    /// The device loses the next write to the file at `path` (resolved when it is written): it
    /// succeeds, reads return it until a crash, the fsyncs after it succeed, and the medium
    /// keeps what it held before.
    pub fn lose_next_write(&self, path: &Path) {
        let mut state = self.lock();
        state.armed.push((path.to_path_buf(), ArmedFault::Lose));
    }

    /// The number of faults armed by [`misdirect_next_write`](Self::misdirect_next_write) and
    /// [`lose_next_write`](Self::lose_next_write) that no write has met yet.
    pub fn armed_writes(&self) -> usize {
        self.lock().armed.len()
    }

    /// Forgets the faults armed for next writes that no write has met yet.
    pub fn disarm_writes(&self) {
        self.lock().armed.clear();
    }

    /// The number of [`FsFile::preallocate`] calls that extended a file so far.
    pub fn preallocation_count(&self) -> u64 {
        self.lock().preallocations
    }

    /// Halts the disk at mutating operation number `point` (counted from 0, as
    /// [`points`](Self::points) counts): that operation fails (a write there lands unsynced,
    /// torn by the next crash), and so does every call after it.
    pub fn halt_at_point(&self, point: u64) {
        self.lock().halt_at = Some(point);
    }

    /// Whether the disk has halted (a [`halt_at_point`](Self::halt_at_point) was reached).
    pub fn is_halted(&self) -> bool {
        self.lock().halted
    }

    /// Replaces the fault probabilities.
    pub fn set_config(&self, config: FaultConfig) {
        self.lock().config = config;
    }

    /// The next fsync fails (and loses that file's unsynced writes, see [`FaultConfig`]).
    pub fn fail_next_sync(&self) {
        self.lock().fail_next_sync = true;
    }

    /// The next read fails with an I/O error.
    pub fn fail_next_read(&self) {
        self.lock().fail_next_read = true;
    }

    /// The next write fails as if the disk were full, writing nothing.
    pub fn fail_next_write_no_space(&self) {
        self.lock().fail_next_write_no_space = true;
    }

    /// Flips bit `bit` (0-7) of the byte at `offset` of the file at `path`, on the medium and in
    /// the page cache: silent corruption. Returns false if there is no such byte.
    pub fn flip_bit(&self, path: &Path, offset: u64, bit: u8) -> bool {
        let mut state = self.lock();
        let Some(id) = state.names.get(path).copied() else {
            return false;
        };
        let Some(inode) = state.inodes.get_mut(&id) else {
            return false;
        };
        let mask = 1u8 << (bit % 8);
        let mut flipped = false;
        for image in [&mut inode.data, &mut inode.durable] {
            if let Some(byte) = image.get_mut(offset as usize) {
                *byte ^= mask;
                flipped = true;
            }
        }
        flipped
    }

    /// The contents of the file at `path` as reads see them, or `None` if there is none.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.lock();
        let id = state.names.get(path)?;
        state.inodes.get(id).map(|i| i.data.clone())
    }

    /// Replaces the contents of the file at `path` on the medium and in the page cache (a test
    /// tool for building damaged disks); creates the file durably if it is missing.
    pub fn set_contents(&self, path: &Path, data: Vec<u8>) {
        let mut state = self.lock();
        let id = match state.names.get(path) {
            Some(id) => *id,
            None => {
                let id = state.next_inode;
                state.next_inode += 1;
                state.names.insert(path.to_path_buf(), id);
                state.durable_names.insert(path.to_path_buf(), id);
                id
            }
        };
        state.inodes.insert(
            id,
            Inode {
                data: data.clone(),
                durable: data,
                pending: Vec::new(),
            },
        );
    }

    /// Removes the file at `path` at once and durably (a test tool, e.g. for a lost segment).
    pub fn remove_durably(&self, path: &Path) -> bool {
        let mut state = self.lock();
        state.durable_names.remove(path);
        state.names.remove(path).is_some()
    }
}

/// An open file of a [`SimFs`]: it keeps referring to its inode after a rename or removal.
#[derive(Debug)]
struct SimFile {
    fs: SimFs,
    inode: u64,
}

impl FsFile for SimFile {
    fn len(&self) -> io::Result<u64> {
        let mut state = self.fs.lock();
        if state.halted {
            return Err(halted_error());
        }
        Ok(state.inode(self.inode)?.data.len() as u64)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.fs.lock().read(self.inode, offset, buf)
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.fs.lock();
        state.write(self.inode, offset, data)?;
        state.writes += 1;
        Ok(())
    }

    /// A write of zeros from the end of the file to `len` (what `RealFs` does), one crash
    /// point: until synced, a crash keeps any subset of its sectors, and the faults of a write
    /// (a full disk, a flipped bit, a misdirected write) apply to it.
    fn preallocate(&self, len: u64) -> io::Result<()> {
        let mut state = self.fs.lock();
        if state.halted {
            return Err(halted_error());
        }
        let current = state.inode(self.inode)?.data.len() as u64;
        if len <= current {
            return Ok(());
        }
        state.write(self.inode, current, &vec![0; (len - current) as usize])?;
        state.preallocations += 1;
        Ok(())
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.fs.lock().truncate(self.inode, len)
    }

    fn sync(&self) -> io::Result<()> {
        self.fs.lock().sync(self.inode)
    }
}

impl Fs for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        if state.halted {
            return Err(halted_error());
        }
        for ancestor in dir.ancestors() {
            state.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let mut state = self.lock();
        if state.point()? {
            return Err(halted_error());
        }
        let dir = state.check_dir(path)?;
        let id = state.next_inode;
        state.next_inode += 1;
        state.inodes.insert(id, Inode::default());
        state.names.insert(path.to_path_buf(), id);
        state
            .pending_dir
            .push((dir, DirOp::Link(path.to_path_buf(), id)));
        Ok(Box::new(SimFile {
            fs: self.clone(),
            inode: id,
        }))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let state = self.lock();
        if state.halted {
            return Err(halted_error());
        }
        let Some(id) = state.names.get(path).copied() else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("simulated disk: no file {}", path.display()),
            ));
        };
        Ok(Box::new(SimFile {
            fs: self.clone(),
            inode: id,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock();
        if state.point()? {
            return Err(halted_error());
        }
        let dir = state.check_dir(to)?;
        let Some(id) = state.names.remove(from) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("simulated disk: no file {}", from.display()),
            ));
        };
        state.names.insert(to.to_path_buf(), id);
        let op = DirOp::Rename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            id,
        };
        state.pending_dir.push((dir, op));
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        if state.point()? {
            return Err(halted_error());
        }
        let dir = state.check_dir(path)?;
        if state.names.remove(path).is_none() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("simulated disk: no file {}", path.display()),
            ));
        }
        state
            .pending_dir
            .push((dir, DirOp::Unlink(path.to_path_buf())));
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.lock();
        if state.halted {
            return Err(halted_error());
        }
        if !state.dirs.contains(dir) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("simulated disk: no directory {}", dir.display()),
            ));
        }
        Ok(state
            .names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        if state.point()? {
            return Err(halted_error());
        }
        let ops = std::mem::take(&mut state.pending_dir);
        let (mine, others): (Vec<_>, Vec<_>) = ops.into_iter().partition(|(d, _)| d == dir);
        state.pending_dir = others;
        for (_, op) in &mine {
            apply_dir_op(&mut state.durable_names, op);
        }
        Ok(())
    }
}
