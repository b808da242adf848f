//! The peer transport: Raft messages as length-prefixed protobuf frames over TCP.
//!
//! Each node listens on one address for both Redis clients and peers. A peer connection opens with
//! a handshake that no RESP client can send (it starts with a NUL byte), naming the sender's id
//! and address; then it carries frames `[len: u32 BE][eraftpb.Message]`, one way only.
//!
//! Both sides run as tasks on the I/O thread's event loop ([`crate::server`]), never on the node's
//! thread. Receiving ([`serve_peer`]): each frame read becomes an [`Event::Peer`] for the node.
//! Sending ([`Transport`], owned by the node's loop): one task per peer, fed through a queue. It
//! connects on demand, writes every queued message in one batch; when connecting or writing
//! fails it drops the batch, tells the node (`report_unreachable`, and
//! `report_snapshot(Failure)` for a snapshot it was carrying) and waits a short back-off before
//! connecting again. Raft tolerates lost messages: the leader probes again and retransmits. A
//! snapshot that was written out is reported as `Finish`. The queue is bounded: past
//! [`MAX_QUEUED_MESSAGES`] a message is dropped (and the peer reported unreachable) rather than
//! let a dead peer's backlog grow without limit.

mod inbound;
mod outbound;

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use raft_core::eraftpb::{Message, MessageType};
use raft_core::SnapshotStatus;
use slog::{debug, info, Logger};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::runtime::Handle;
use tokio::sync::mpsc::{self, UnboundedSender};

use crate::event::Event;
use crate::peer_auth::ClusterSecret;
pub use inbound::serve_peer;

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
pub async fn read_handshake(r: &mut (impl AsyncRead + Unpin)) -> io::Result<(u64, String)> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).await?;
    if &magic != PEER_MAGIC {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad peer magic"));
    }
    let id = r.read_u64().await?;
    let len = r.read_u16().await?;
    let mut addr = vec![0u8; usize::from(len)];
    r.read_exact(&mut addr).await?;
    let addr = String::from_utf8(addr)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "peer address is not UTF-8"))?;
    Ok((id, addr))
}

/// Appends one frame (`[len: u32 BE][message]`) to `out`.
pub fn encode_frame(msg: &Message, out: &mut Vec<u8>) {
    let len = msg.encoded_len();
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.reserve(len);
    msg.encode(out).expect("a Vec grows as needed");
}

/// Reads one frame. `Ok(None)` at a clean end of stream.
pub async fn read_frame(r: &mut (impl AsyncRead + Unpin)) -> io::Result<Option<Message>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
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
    r.read_exact(&mut body).await?;
    Message::decode(&body[..])
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

struct PeerWriter {
    addr: String,
    queue: UnboundedSender<Message>,
    queued: Arc<AtomicUsize>,
}

/// The sending side of the transport, owned by the node's loop.
pub struct Transport {
    id: u64,
    addr: String,
    secret: Option<ClusterSecret>,
    peers: HashMap<u64, PeerWriter>,
    events: Sender<Event>,
    /// The I/O thread's event loop, where the writers run.
    io: Handle,
    logger: Logger,
}

impl Transport {
    /// A transport for node `id`, which listens on `addr` and answers peers' challenges with
    /// `secret`; its writers run on `io`; reports go to `events`.
    pub fn new(
        id: u64,
        addr: String,
        secret: Option<ClusterSecret>,
        events: Sender<Event>,
        io: Handle,
        logger: Logger,
    ) -> Transport {
        Transport {
            secret,
            id,
            addr,
            peers: HashMap::new(),
            events,
            io,
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
        let (queue, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let writer = outbound::Writer {
            secret: self.secret.clone(),
            from: self.id,
            from_addr: self.addr.clone(),
            to: id,
            addr: addr.to_string(),
            queued: queued.clone(),
            events: self.events.clone(),
            logger: self.logger.clone(),
        };
        self.io.spawn(writer.run(rx));
        // Replacing the old writer drops its queue, which ends its task.
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

fn is_snapshot(msg: &Message) -> bool {
    msg.msg_type == MessageType::MsgSnapshot as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

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
        assert_eq!(
            block_on(read_frame(&mut reader)).unwrap(),
            Some(msg.clone())
        );
        assert_eq!(block_on(read_frame(&mut reader)).unwrap(), Some(msg));
        assert_eq!(block_on(read_frame(&mut reader)).unwrap(), None);
    }

    #[test]
    fn oversized_or_garbled_frames_are_errors() {
        let mut huge = ((MAX_FRAME_BYTES + 1) as u32).to_be_bytes().to_vec();
        huge.extend_from_slice(&[0; 8]);
        assert!(block_on(read_frame(&mut &huge[..])).is_err());
        let garbled = [0, 0, 0, 2, 0xFF, 0xFF];
        assert!(block_on(read_frame(&mut &garbled[..])).is_err());
    }

    #[test]
    fn handshake_round_trips_and_rejects_a_bad_magic() {
        let bytes = encode_handshake(7, "127.0.0.1:7007");
        assert_eq!(bytes[0], 0, "starts with a byte no RESP client sends first");
        assert_eq!(
            block_on(read_handshake(&mut &bytes[..])).unwrap(),
            (7, "127.0.0.1:7007".to_string())
        );
        let mut bad = bytes.clone();
        bad[3] = b'x';
        assert!(block_on(read_handshake(&mut &bad[..])).is_err());
        assert!(
            block_on(read_handshake(&mut &bytes[..5])).is_err(),
            "a short handshake"
        );
    }
}
