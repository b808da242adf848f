//! The peer transport: Raft messages as length-prefixed protobuf frames over TCP.
//!
//! Each node listens on one address for both Redis clients and peers. A peer connection opens with
//! a handshake that no RESP client can send (it starts with a NUL byte), naming the sender's id
//! and address; then it carries frames `[len: u32 BE][eraftpb.Message]`, one way only.
//!
//! Sending: one writer thread per peer, fed through a queue. The writer connects on demand, writes
//! every queued message in one batch and flushes; when connecting or writing fails it drops the
//! batch, tells the node (`report_unreachable`, and `report_snapshot(Failure)` for a snapshot it
//! was carrying) and waits a short back-off before connecting again. Raft tolerates lost messages:
//! the leader probes again and retransmits. A snapshot that was written out is reported as
//! `Finish`. The queue is bounded: past [`MAX_QUEUED_MESSAGES`] a message is dropped (and the
//! peer reported unreachable) rather than let a dead peer's backlog grow without limit.

use std::collections::HashMap;
use std::io::{self, BufWriter, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use prost::Message as _;
use raft_core::eraftpb::{Message, MessageType};
use raft_core::SnapshotStatus;
use slog::{debug, info, warn, Logger};

use crate::event::Event;
use crate::peer_auth::{self, ClusterSecret};

/// The bytes a peer connection starts with. A RESP client never sends a NUL byte first.
pub const PEER_MAGIC: &[u8; 8] = b"\0RAFTKV1";
/// The largest frame accepted (a snapshot of a big map travels in one frame).
pub const MAX_FRAME_BYTES: usize = 1 << 30;
/// The most messages waiting for one peer's writer before new ones are dropped.
pub const MAX_QUEUED_MESSAGES: usize = 4096;
/// How long a writer waits after a failure before connecting again.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a writer waits for a connection to open.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a write may block before the peer is taken for dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The handshake a peer connection starts with: magic, the sender's id, its address.
pub fn encode_handshake(id: u64, addr: &str) -> Vec<u8> {
    let mut out = PEER_MAGIC.to_vec();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(addr.len() as u16).to_be_bytes());
    out.extend_from_slice(addr.as_bytes());
    out
}

/// Reads a handshake (the whole of it, magic included): the sender's id and address.
pub fn read_handshake(r: &mut impl Read) -> io::Result<(u64, String)> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)?;
    if &magic != PEER_MAGIC {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad peer magic"));
    }
    let mut id = [0u8; 8];
    r.read_exact(&mut id)?;
    let mut len = [0u8; 2];
    r.read_exact(&mut len)?;
    let mut addr = vec![0u8; u16::from_be_bytes(len) as usize];
    r.read_exact(&mut addr)?;
    let addr = String::from_utf8(addr)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "peer address is not UTF-8"))?;
    Ok((u64::from_be_bytes(id), addr))
}

/// Appends one frame (`[len: u32 BE][message]`) to `out`.
pub fn encode_frame(msg: &Message, out: &mut Vec<u8>) {
    let len = msg.encoded_len();
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.reserve(len);
    msg.encode(out).expect("a Vec grows as needed");
}

/// Reads one frame. `Ok(None)` at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Message>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Message::decode(&body[..])
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Reads a peer connection after its first byte was seen to be NUL: the handshake, the
/// challenge when this node has a cluster secret (answered on `stream`), then frames, each
/// passed to the node as an event, until the stream ends or breaks.
pub fn serve_peer(
    mut conn: impl Read,
    stream: &TcpStream,
    secret: Option<&ClusterSecret>,
    events: &Sender<Event>,
    logger: &Logger,
) {
    let (from, addr) = match read_handshake(&mut conn) {
        Ok(hello) => hello,
        Err(e) => {
            debug!(logger, "bad peer handshake"; "error" => %e);
            return;
        }
    };
    if let Some(secret) = secret {
        let _ = stream.set_read_timeout(Some(CONNECT_TIMEOUT));
        let mut out = stream;
        if let Err(e) = peer_auth::challenge(&mut conn, &mut out, secret, from, &addr) {
            warn!(logger, "refused a peer that did not prove the cluster secret";
                "claimed_id" => from, "claimed_addr" => addr, "error" => %e);
            return;
        }
        let _ = stream.set_read_timeout(None);
    }
    if events.send(Event::Hello { id: from, addr }).is_err() {
        return;
    }
    loop {
        match read_frame(&mut conn) {
            Ok(Some(msg)) => {
                if events.send(Event::Peer(Box::new(msg))).is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                debug!(logger, "peer connection closed"; "from" => from, "error" => %e);
                return;
            }
        }
    }
}

struct PeerWriter {
    addr: String,
    queue: Sender<Message>,
    queued: Arc<AtomicUsize>,
}

/// The sending side of the transport, owned by the node's loop.
pub struct Transport {
    id: u64,
    addr: String,
    secret: Option<ClusterSecret>,
    peers: HashMap<u64, PeerWriter>,
    events: Sender<Event>,
    logger: Logger,
}

impl Transport {
    /// A transport for node `id`, which listens on `addr` and answers peers' challenges with
    /// `secret`; reports go to `events`.
    pub fn new(
        id: u64,
        addr: String,
        secret: Option<ClusterSecret>,
        events: Sender<Event>,
        logger: Logger,
    ) -> Transport {
        Transport {
            secret,
            id,
            addr,
            peers: HashMap::new(),
            events,
            logger,
        }
    }

    /// The address messages to `id` go to, if known.
    pub fn peer_addr(&self, id: u64) -> Option<&str> {
        self.peers.get(&id).map(|p| p.addr.as_str())
    }

    /// Sends to `id` at `addr` from now on (starting its writer, or restarting it if the address
    /// changed). Does nothing for this node itself.
    pub fn set_peer(&mut self, id: u64, addr: &str) {
        if id == self.id || self.peer_addr(id) == Some(addr) {
            return;
        }
        info!(self.logger, "peer address"; "peer" => id, "addr" => addr);
        let (queue, rx) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let writer = Writer {
            secret: self.secret.clone(),
            from: self.id,
            from_addr: self.addr.clone(),
            to: id,
            addr: addr.to_string(),
            queued: queued.clone(),
            events: self.events.clone(),
            logger: self.logger.clone(),
        };
        let spawned = thread::Builder::new()
            .name(format!("peer-{id}"))
            .spawn(move || writer.run(rx));
        if let Err(e) = spawned {
            slog::error!(self.logger, "cannot start a peer writer"; "peer" => id, "error" => %e);
            return;
        }
        // Replacing the old writer drops its queue, which ends its thread.
        self.peers.insert(
            id,
            PeerWriter {
                addr: addr.to_string(),
                queue,
                queued,
            },
        );
    }

    /// Stops sending to `id`.
    pub fn remove_peer(&mut self, id: u64) {
        if self.peers.remove(&id).is_some() {
            info!(self.logger, "peer removed"; "peer" => id);
        }
    }

    /// Queues messages for their peers. A message to an unknown peer, or to one whose queue is
    /// full, is dropped and reported as from an unreachable peer.
    pub fn send(&mut self, msgs: Vec<Message>) {
        for msg in msgs {
            let to = msg.to;
            let is_snapshot = msg.msg_type == MessageType::MsgSnapshot as i32;
            let accepted = match self.peers.get(&to) {
                Some(peer) if peer.queued.load(Ordering::Relaxed) < MAX_QUEUED_MESSAGES => {
                    peer.queued.fetch_add(1, Ordering::Relaxed);
                    peer.queue.send(msg).is_ok()
                }
                _ => false,
            };
            if !accepted {
                debug!(self.logger, "message dropped"; "to" => to);
                let _ = self.events.send(Event::Unreachable(to));
                if is_snapshot {
                    let _ = self
                        .events
                        .send(Event::SnapshotStatus(to, SnapshotStatus::Failure));
                }
            }
        }
    }
}

/// One peer's writer thread.
struct Writer {
    secret: Option<ClusterSecret>,
    from: u64,
    from_addr: String,
    to: u64,
    addr: String,
    queued: Arc<AtomicUsize>,
    events: Sender<Event>,
    logger: Logger,
}

impl Writer {
    fn run(self, rx: Receiver<Message>) {
        let mut conn: Option<BufWriter<TcpStream>> = None;
        let mut retry_at = Instant::now();
        let mut reported = false;
        let mut frame = Vec::new();
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            batch.extend(rx.try_iter().take(MAX_QUEUED_MESSAGES));
            self.queued.fetch_sub(batch.len(), Ordering::Relaxed);
            if conn.is_none() && Instant::now() >= retry_at {
                match self.connect() {
                    Ok(stream) => {
                        debug!(self.logger, "connected to peer"; "peer" => self.to);
                        conn = Some(BufWriter::with_capacity(256 * 1024, stream));
                        reported = false;
                    }
                    Err(e) => {
                        debug!(self.logger, "cannot connect to peer"; "peer" => self.to,
                            "addr" => &self.addr, "error" => %e);
                        retry_at = Instant::now() + RECONNECT_BACKOFF;
                    }
                }
            }
            let result = match conn.as_mut() {
                None => Err(io::Error::new(io::ErrorKind::NotConnected, "backing off")),
                Some(stream) => batch.iter().try_for_each(|msg| {
                    frame.clear();
                    encode_frame(msg, &mut frame);
                    stream.write_all(&frame)
                }),
            };
            let result = result.and_then(|()| conn.as_mut().map_or(Ok(()), |s| s.flush()));
            match result {
                Ok(()) => {
                    for msg in batch.iter().filter(|m| is_snapshot(m)) {
                        let _ = self
                            .events
                            .send(Event::SnapshotStatus(msg.to, SnapshotStatus::Finish));
                    }
                }
                Err(e) => {
                    if conn.take().is_some() {
                        debug!(self.logger, "lost peer connection"; "peer" => self.to, "error" => %e);
                        retry_at = Instant::now() + RECONNECT_BACKOFF;
                    }
                    for msg in batch.iter().filter(|m| is_snapshot(m)) {
                        let _ = self
                            .events
                            .send(Event::SnapshotStatus(msg.to, SnapshotStatus::Failure));
                    }
                    // Once per outage is enough for the leader to fall back to probing.
                    if !reported {
                        reported = true;
                        let _ = self.events.send(Event::Unreachable(self.to));
                    }
                }
            }
        }
    }

    fn connect(&self) -> io::Result<TcpStream> {
        let addr = self
            .addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
        let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        (&stream).write_all(&encode_handshake(self.from, &self.from_addr))?;
        if let Some(secret) = &self.secret {
            stream.set_read_timeout(Some(CONNECT_TIMEOUT))?;
            peer_auth::answer(&mut &stream, secret, self.from, &self.from_addr)?;
            stream.set_read_timeout(None)?;
        }
        Ok(stream)
    }
}

fn is_snapshot(msg: &Message) -> bool {
    msg.msg_type == MessageType::MsgSnapshot as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let msg = Message {
            msg_type: MessageType::MsgAppend as i32,
            to: 2,
            from: 1,
            term: 3,
            ..Default::default()
        };
        let mut bytes = Vec::new();
        encode_frame(&msg, &mut bytes);
        encode_frame(&msg, &mut bytes);
        let mut reader = &bytes[..];
        assert_eq!(read_frame(&mut reader).unwrap(), Some(msg.clone()));
        assert_eq!(read_frame(&mut reader).unwrap(), Some(msg));
        assert_eq!(read_frame(&mut reader).unwrap(), None);
    }

    #[test]
    fn oversized_or_garbled_frames_are_errors() {
        let mut huge = ((MAX_FRAME_BYTES + 1) as u32).to_be_bytes().to_vec();
        huge.extend_from_slice(&[0; 8]);
        assert!(read_frame(&mut &huge[..]).is_err());
        let garbled = [0, 0, 0, 2, 0xFF, 0xFF];
        assert!(read_frame(&mut &garbled[..]).is_err());
    }

    #[test]
    fn handshake_round_trips_and_rejects_a_bad_magic() {
        let bytes = encode_handshake(7, "127.0.0.1:7007");
        assert_eq!(bytes[0], 0, "starts with a byte no RESP client sends first");
        assert_eq!(
            read_handshake(&mut &bytes[..]).unwrap(),
            (7, "127.0.0.1:7007".to_string())
        );
        let mut bad = bytes.clone();
        bad[3] = b'x';
        assert!(read_handshake(&mut &bad[..]).is_err());
    }
}
