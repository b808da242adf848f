//! The sending side: one task per peer that connects on demand, proves the cluster secret, and
//! writes the queued messages in batches.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;

use raft_core::eraftpb::Message;
use raft_core::SnapshotStatus;
use slog::{debug, Logger};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{timeout, Instant};

use super::{
    encode_frame, encode_handshake, is_snapshot, CONNECT_TIMEOUT, MAX_QUEUED_MESSAGES,
    RECONNECT_BACKOFF, WRITE_TIMEOUT,
};
use crate::event::Event;
use crate::peer_auth::{self, ClusterSecret, CHALLENGE_LEN};

/// A write buffer kept between batches up to this size; a larger one (a snapshot went out) is
/// freed.
const KEPT_BUFFER_BYTES: usize = 4 << 20;

/// One peer's writer.
pub(super) struct Writer {
    pub(super) secret: Option<ClusterSecret>,
    pub(super) from: u64,
    pub(super) from_addr: String,
    pub(super) to: u64,
    pub(super) addr: String,
    pub(super) queued: Arc<AtomicUsize>,
    pub(super) events: Sender<Event>,
    pub(super) logger: Logger,
}

impl Writer {
    /// Writes what the queue brings until the transport drops the queue.
    pub(super) async fn run(self, mut rx: UnboundedReceiver<Message>) {
        let mut conn: Option<TcpStream> = None;
        let mut retry_at = Instant::now();
        let mut reported = false;
        let mut out = Vec::new();
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_QUEUED_MESSAGES {
                match rx.try_recv() {
                    Ok(msg) => batch.push(msg),
                    Err(_) => break,
                }
            }
            self.queued.fetch_sub(batch.len(), Ordering::Relaxed);
            if conn.is_none() && Instant::now() >= retry_at {
                match timeout(CONNECT_TIMEOUT, self.connect()).await {
                    Ok(Ok(stream)) => {
                        debug!(self.logger, "connected to peer"; "peer" => self.to);
                        conn = Some(stream);
                        reported = false;
                    }
                    Ok(Err(e)) => {
                        debug!(self.logger, "cannot connect to peer"; "peer" => self.to,
                            "addr" => &self.addr, "error" => %e);
                        retry_at = Instant::now() + RECONNECT_BACKOFF;
                    }
                    Err(_) => {
                        debug!(self.logger, "connecting to peer timed out"; "peer" => self.to,
                            "addr" => &self.addr);
                        retry_at = Instant::now() + RECONNECT_BACKOFF;
                    }
                }
            }
            let result = match conn.as_mut() {
                None => Err(io::Error::new(io::ErrorKind::NotConnected, "backing off")),
                Some(stream) if batch.iter().any(is_snapshot) => {
                    // Encoding a snapshot of hundreds of megabytes takes about 100 ms: on a
                    // blocking thread, not on the I/O thread that serves every client (the
                    // messages share their payloads, so the copy handed over is cheap).
                    let msgs = batch.clone();
                    let encoded = tokio::task::spawn_blocking(move || {
                        let mut bytes = Vec::new();
                        for msg in &msgs {
                            encode_frame(msg, &mut bytes);
                        }
                        bytes
                    })
                    .await;
                    match encoded {
                        Ok(bytes) => write_with_progress(stream, &bytes).await,
                        Err(e) => Err(io::Error::other(format!("encoding a snapshot: {e}"))),
                    }
                }
                Some(stream) => {
                    out.clear();
                    for msg in &batch {
                        encode_frame(msg, &mut out);
                    }
                    write_with_progress(stream, &out).await
                }
            };
            if out.capacity() > KEPT_BUFFER_BYTES {
                out = Vec::new();
            }
            let status = match result {
                Ok(()) => SnapshotStatus::Finish,
                Err(e) => {
                    if conn.take().is_some() {
                        debug!(self.logger, "lost peer connection"; "peer" => self.to, "error" => %e);
                        retry_at = Instant::now() + RECONNECT_BACKOFF;
                    }
                    // Once per outage is enough for the leader to fall back to probing.
                    if !reported {
                        reported = true;
                        let _ = self.events.send(Event::Unreachable(self.to));
                    }
                    SnapshotStatus::Failure
                }
            };
            for msg in batch.iter().filter(|m| is_snapshot(m)) {
                let _ = self.events.send(Event::SnapshotStatus(msg.to, status));
            }
        }
    }

    async fn connect(&self) -> io::Result<TcpStream> {
        let mut stream = TcpStream::connect(self.addr.as_str()).await?;
        stream.set_nodelay(true)?;
        stream
            .write_all(&encode_handshake(self.from, &self.from_addr))
            .await?;
        if let Some(secret) = &self.secret {
            let mut challenge = [0u8; CHALLENGE_LEN];
            stream.read_exact(&mut challenge).await?;
            let answer = peer_auth::answer_for(secret, &challenge, self.from, &self.from_addr);
            stream.write_all(&answer).await?;
        }
        Ok(stream)
    }
}

/// Writes all of `bytes`; the peer is taken for dead when one write makes no progress for
/// [`WRITE_TIMEOUT`] (a large snapshot may take longer as a whole).
async fn write_with_progress(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    let mut written = 0;
    while written < bytes.len() {
        let n = timeout(WRITE_TIMEOUT, stream.write(&bytes[written..]))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "peer write stalled"))??;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "peer closed"));
        }
        written += n;
    }
    Ok(())
}
