//! The listener: one TCP port per node for Redis clients and peers alike.
//!
//! Each accepted connection gets a thread. Its first byte tells what it is: a NUL byte starts a
//! peer's handshake ([`crate::transport`]); anything else is a Redis client. A client's commands
//! are parsed as they arrive, pipelined ones included: the connection hands every complete
//! command in its buffer to the node, then writes the replies in order.
//!
//! Redis runs a connection's commands one after another, so a pipelined `GET` sees the `SET`
//! before it. Raft alone does not give that: the `GET`'s read index may be taken before the `SET`
//! commits (legal for concurrent operations, but not what a Redis client expects). So a
//! connection keeps only commands of one kind in flight at a time: a run of reads goes to the node
//! together (one ReadIndex covers them), as does a run of writes (Raft keeps their order), but a
//! read waits for the writes before it to be answered, a write for the reads before it, and any
//! other command for everything before it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use slog::{debug, warn, Logger};

use crate::command::{self, Command};
use crate::connection::{ClientState, Settings};
use crate::event::{Event, Request};
use crate::peer_auth::ClusterSecret;
use crate::resp::{self, Reply};
use crate::transport;

/// Write the replies gathered so far once they pass this many bytes.
const FLUSH_BYTES: usize = 64 * 1024;

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

/// Counts a client connection while it lives.
struct ClientSlot(Arc<AtomicUsize>);

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accepts connections on `listener` on a thread of its own, for as long as the process lives.
/// Peers must prove `secret` when there is one; clients are held to `limits`.
pub fn spawn_listener(
    listener: TcpListener,
    events: Sender<Event>,
    secret: Option<ClusterSecret>,
    limits: ClientLimits,
    logger: Logger,
) -> io::Result<JoinHandle<()>> {
    let clients = Arc::new(AtomicUsize::new(0));
    thread::Builder::new()
        .name("listener".to_string())
        .spawn(move || {
            // `CLIENT ID`: unique in the process, counting from 1 as Redis does.
            let mut next_id = 0;
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => {
                        let (events, conn_logger) = (events.clone(), logger.clone());
                        next_id += 1;
                        let conn = Connection {
                            secret: secret.clone(),
                            limits,
                            clients: clients.clone(),
                            id: next_id,
                        };
                        let spawned = thread::Builder::new()
                            .name("conn".to_string())
                            .spawn(move || handle_connection(stream, conn, &events, &conn_logger));
                        if let Err(e) = spawned {
                            warn!(logger, "cannot start a connection thread"; "error" => %e);
                        }
                    }
                    Err(e) => debug!(logger, "accept failed"; "error" => %e),
                }
            }
        })
}

/// What a connection's thread gets from the listener.
struct Connection {
    secret: Option<ClusterSecret>,
    limits: ClientLimits,
    clients: Arc<AtomicUsize>,
    /// The connection's number, for `CLIENT ID`.
    id: u64,
}

fn handle_connection(stream: TcpStream, conn: Connection, events: &Sender<Event>, logger: &Logger) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    // A connection that sends nothing is idle from the start.
    if stream.set_read_timeout(conn.limits.idle_timeout).is_err() {
        return;
    }
    let first = match reader.fill_buf() {
        Ok([]) | Err(_) => return,
        Ok(buf) => buf[0],
    };
    if first == transport::PEER_MAGIC[0] {
        // Peers are never idle for long (heartbeats); their reads wait as long as they need.
        let _ = stream.set_read_timeout(None);
        transport::serve_peer(reader, &stream, conn.secret.as_ref(), events, logger);
        return;
    }
    if conn.clients.fetch_add(1, Ordering::AcqRel) >= conn.limits.max_clients {
        conn.clients.fetch_sub(1, Ordering::AcqRel);
        debug!(logger, "refused a client: too many"; "max" => conn.limits.max_clients);
        let mut stream = stream;
        let _ = stream.write_all(&Reply::err(TOO_MANY_CLIENTS).to_bytes());
        return;
    }
    let _slot = ClientSlot(conn.clients);
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let settings = Settings {
        max_clients: conn.limits.max_clients,
        idle_timeout_secs: conn.limits.idle_timeout.map_or(0, |t| t.as_secs()),
    };
    let mut state = ClientState::new(conn.id, peer, settings);
    // Reading with the idle timeout: a client that sends nothing for that long is closed.
    match serve_client(reader, stream, &mut state, events) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            debug!(logger, "closed an idle client connection");
        }
        Err(e) => debug!(logger, "client connection ended"; "error" => %e),
    }
}

/// A reply known at once, or one the node will send.
enum Pending {
    Now(Reply),
    Later(Receiver<Reply>),
}

/// What may be in flight together on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
    /// Anything else (INFO, admin commands): alone.
    Barrier,
}

fn kind_of(command: &Command) -> Kind {
    match command {
        Command::Read(_) => Kind::Read,
        Command::Write(_) => Kind::Write,
        _ => Kind::Barrier,
    }
}

/// The replies of one connection, in command order, and what kind of command is in flight.
struct Replies {
    pending: Vec<Pending>,
    in_flight: Option<Kind>,
    out: Vec<u8>,
}

impl Replies {
    /// Waits for every pending reply and encodes them all, in order.
    fn resolve(&mut self, writer: &mut TcpStream) -> io::Result<()> {
        for p in self.pending.drain(..) {
            let reply = match p {
                Pending::Now(reply) => reply,
                Pending::Later(rx) => rx.recv().unwrap_or_else(|_| Reply::err("the node stopped")),
            };
            reply.encode(&mut self.out);
            if self.out.len() >= FLUSH_BYTES {
                writer.write_all(&self.out)?;
                self.out.clear();
            }
        }
        self.in_flight = None;
        Ok(())
    }

    /// Hands `command` to the node, first waiting for what is in flight if it is of another kind.
    fn dispatch(
        &mut self,
        command: Command,
        events: &Sender<Event>,
        writer: &mut TcpStream,
    ) -> io::Result<()> {
        let kind = kind_of(&command);
        if self
            .in_flight
            .is_some_and(|k| k != kind || k == Kind::Barrier)
        {
            self.resolve(writer)?;
        }
        self.pending.push(dispatch(command, events));
        self.in_flight = Some(kind);
        Ok(())
    }
}

fn serve_client(
    mut reader: impl Read,
    mut writer: TcpStream,
    state: &mut ClientState,
    events: &Sender<Event>,
) -> io::Result<()> {
    let mut input = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut replies = Replies {
        pending: Vec::new(),
        in_flight: None,
        out: Vec::new(),
    };
    loop {
        let n = reader.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        input.extend_from_slice(&chunk[..n]);
        let mut used = 0;
        let mut close = false;
        loop {
            let now = |reply| Pending::Now(reply);
            match resp::parse_command(&input[used..]) {
                Ok(Some((args, n))) => {
                    used += n;
                    if args.is_empty() {
                        continue;
                    }
                    match command::parse(args) {
                        Ok(Command::Ping(None)) => {
                            replies.pending.push(now(Reply::Status("PONG".to_string())))
                        }
                        Ok(Command::Ping(Some(message)) | Command::Echo(message)) => {
                            replies.pending.push(now(Reply::Bulk(message)))
                        }
                        Ok(Command::Connection(c)) => replies.pending.push(now(state.answer(c))),
                        Ok(Command::Quit) => {
                            replies.pending.push(now(Reply::ok()));
                            close = true;
                            break;
                        }
                        Ok(command) => replies.dispatch(command, events, &mut writer)?,
                        Err(reply) => replies.pending.push(now(reply)),
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let reply = Reply::err(format!("Protocol error: {e}"));
                    replies.pending.push(now(reply));
                    close = true;
                    break;
                }
            }
        }
        input.drain(..used);
        replies.resolve(&mut writer)?;
        writer.write_all(&replies.out)?;
        replies.out.clear();
        if close {
            return writer.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn dispatch(command: Command, events: &Sender<Event>) -> Pending {
    let (reply, rx) = mpsc::channel();
    match events.send(Event::Client(Request { command, reply })) {
        Ok(()) => Pending::Later(rx),
        Err(_) => Pending::Now(Reply::err("the node stopped")),
    }
}
