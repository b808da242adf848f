//! The I/O thread and the listener: one TCP port per node for Redis clients and peers alike.
//!
//! Every connection, client or peer, inbound or outbound, is a task on one event loop (a tokio
//! runtime on its own thread, [`IoThread`]); the node's thread does no network I/O. An accepted
//! connection's first byte tells what it is: a NUL byte starts a peer's handshake
//! ([`crate::transport`]); anything else is a Redis client ([`crate::client`]).

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use slog::{debug, Logger};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::time::timeout;

use crate::client;
use crate::client_feed::ClientFeed;
use crate::connection::{ClientState, Settings};
use crate::event::Event;
use crate::peer_auth::ClusterSecret;
use crate::resp::Reply;
use crate::transport::{self, PEER_MAGIC};

/// What the listener enforces on client connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// The most client connections served at once.
    pub max_clients: usize,
    /// How long a client connection may stay idle; `None` for ever.
    pub idle_timeout: Option<Duration>,
}

/// The reply to a client past `max_clients`, in Redis's words.
pub const TOO_MANY_CLIENTS: &str = "max number of clients reached";

/// How long `accept` pauses after failing (say, out of file descriptors) before trying again,
/// so that a persistent failure does not spin the I/O thread.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// The thread that runs every connection's I/O: a single-threaded tokio runtime, running for as
/// long as the process lives.
pub struct IoThread {
    handle: Handle,
}

impl IoThread {
    /// Starts the thread.
    pub fn start() -> io::Result<IoThread> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        thread::Builder::new()
            .name("io".to_string())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
        Ok(IoThread { handle })
    }

    /// Where to spawn tasks on the thread.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }
}

/// Accepts connections on `listener` on the I/O thread `io`, for as long as the process lives.
/// Peers must prove `secret` when there is one; clients are held to `limits`.
pub fn spawn_listener(
    io: &Handle,
    listener: std::net::TcpListener,
    events: Sender<Event>,
    secret: Option<ClusterSecret>,
    limits: ClientLimits,
    logger: Logger,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = {
        let _entered = io.enter();
        TcpListener::from_std(listener)?
    };
    let clients = Arc::new(AtomicUsize::new(0));
    let feed = ClientFeed::new(io, events.clone());
    io.spawn(async move {
        // `CLIENT ID`: unique in the process, counting from 1 as Redis does.
        let mut next_id = 0;
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    next_id += 1;
                    let conn = Connection {
                        secret: secret.clone(),
                        limits,
                        clients: clients.clone(),
                        id: next_id,
                        events: events.clone(),
                        feed: feed.clone(),
                        logger: logger.clone(),
                    };
                    tokio::spawn(conn.serve(stream));
                }
                Err(e) => {
                    debug!(logger, "accept failed"; "error" => %e);
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    });
    Ok(())
}

/// Counts a client connection while it lives.
struct ClientSlot(Arc<AtomicUsize>);

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a connection's task gets from the listener.
struct Connection {
    secret: Option<ClusterSecret>,
    limits: ClientLimits,
    clients: Arc<AtomicUsize>,
    /// The connection's number, for `CLIENT ID`.
    id: u64,
    /// Where a peer connection's messages go.
    events: Sender<Event>,
    /// Where a client connection's commands go.
    feed: ClientFeed,
    logger: Logger,
}

impl Connection {
    async fn serve(self, mut stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        // A connection that sends nothing is idle from the start.
        let mut first = [0u8; 1];
        let peeked = match self.limits.idle_timeout {
            Some(idle) => timeout(idle, stream.peek(&mut first))
                .await
                .unwrap_or(Ok(0)),
            None => stream.peek(&mut first).await,
        };
        if !matches!(peeked, Ok(1..)) {
            return;
        }
        if first[0] == PEER_MAGIC[0] {
            // Peers are never idle for long (heartbeats); their reads wait as long as they need.
            transport::serve_peer(stream, self.secret, self.events, self.logger).await;
            return;
        }
        if self.clients.fetch_add(1, Ordering::AcqRel) >= self.limits.max_clients {
            self.clients.fetch_sub(1, Ordering::AcqRel);
            debug!(self.logger, "refused a client: too many"; "max" => self.limits.max_clients);
            // Take in what it sent before closing: closing with unread input would reset the
            // connection, and the client might never see why.
            let mut unread = [0u8; 4096];
            for _ in 0..16 {
                if !matches!(stream.try_read(&mut unread), Ok(1..)) {
                    break;
                }
            }
            let _ = stream
                .write_all(&Reply::err(TOO_MANY_CLIENTS).to_bytes())
                .await;
            let _ = stream.shutdown().await;
            return;
        }
        let _slot = ClientSlot(self.clients);
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "?".to_string(), |a| a.to_string());
        let settings = Settings {
            max_clients: self.limits.max_clients,
            idle_timeout_secs: self.limits.idle_timeout.map_or(0, |t| t.as_secs()),
        };
        let state = ClientState::new(self.id, peer, settings);
        let client = client::Client::new(stream, state, self.feed, self.limits.idle_timeout);
        match client.serve().await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                debug!(self.logger, "closed an idle client connection");
            }
            Err(e) => debug!(self.logger, "client connection ended"; "error" => %e),
        }
    }
}
