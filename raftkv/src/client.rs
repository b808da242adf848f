//! A Redis client connection, served as a task on the I/O thread's event loop.
//!
//! Each read from the socket is parsed into every complete command it holds, pipelined ones
//! included; the commands for the node go to it in one batch (through the [`ClientFeed`], with
//! the other connections' batches of the same turn of the event loop), and the replies of
//! everything read are written back in one write, in request order.
//!
//! Redis runs a connection's commands one after another, so a pipelined `GET` sees the `SET`
//! before it. Raft alone does not give that: the `GET`'s read index may be taken before the `SET`
//! commits (legal for concurrent operations, but not what a Redis client expects). So a
//! connection keeps only commands of one kind in flight at a time: a run of reads goes to the node
//! together (one ReadIndex covers them), as does a run of writes (Raft keeps their order), but a
//! read waits for the writes before it to be answered, a write for the reads before it, and any
//! other command for everything before it. Replies come back tagged with their request's slot
//! and are put back in order whatever order they arrive in.
//!
//! Memory is bounded per connection: at most [`MAX_IN_FLIGHT`] commands are at the node at a
//! time, and once the encoded replies waiting to be written pass [`MAX_PENDING_OUTPUT_BYTES`]
//! the connection writes them out before it reads or dispatches anything more, so a client that
//! sends without reading stops being read (TCP then pushes back on it). A connection holds at
//! most that much encoded output, plus the replies of [`MAX_IN_FLIGHT`] commands, plus one read
//! of input and the command being received (which `resp`'s limits bound).

use std::collections::VecDeque;
use std::io;
use std::mem;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::time::timeout;

use crate::client_feed::ClientFeed;
use crate::command::{self, Command};
use crate::connection::ClientState;
use crate::event::{ReplyTo, Request};
use crate::resp::{self, Reply};

/// Encoded replies a connection holds before it stops reading to write them out.
pub const MAX_PENDING_OUTPUT_BYTES: usize = 4 << 20;
/// The most commands of one connection at the node at a time (a pipeline deeper than this goes
/// in several batches).
pub const MAX_IN_FLIGHT: usize = 64;
/// How much room a read has at least.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// An input buffer grown larger than this (a large command came through) is freed once empty.
const KEPT_INPUT_BYTES: usize = 1 << 20;

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

/// A reply's place in the connection's order.
enum Slot {
    Waiting,
    Ready(Reply),
}

/// One client connection.
pub struct Client {
    stream: TcpStream,
    state: ClientState,
    feed: ClientFeed,
    idle_timeout: Option<Duration>,
    /// Bytes read and not parsed yet.
    input: Vec<u8>,
    /// Encoded replies not written yet.
    output: Vec<u8>,
    /// The replies not encoded yet, in request order; the first is slot number `first_slot`.
    slots: VecDeque<Slot>,
    first_slot: u64,
    /// Commands for the node, not sent yet.
    batch: Vec<Request>,
    /// The kind of the commands at the node, if any are.
    in_flight: Option<Kind>,
    /// How many slots wait for the node's reply.
    waiting: usize,
    replies_tx: UnboundedSender<Vec<(u64, Reply)>>,
    replies: UnboundedReceiver<Vec<(u64, Reply)>>,
}

impl Client {
    /// A connection on `stream`, with its `state`, sending the node its commands through
    /// `feed`; closed after `idle_timeout` without input.
    pub fn new(
        stream: TcpStream,
        state: ClientState,
        feed: ClientFeed,
        idle_timeout: Option<Duration>,
    ) -> Client {
        let (replies_tx, replies) = mpsc::unbounded_channel();
        Client {
            stream,
            state,
            feed,
            idle_timeout,
            input: Vec::new(),
            output: Vec::new(),
            slots: VecDeque::new(),
            first_slot: 0,
            batch: Vec::new(),
            in_flight: None,
            waiting: 0,
            replies_tx,
            replies,
        }
    }

    /// Serves the connection until the client closes it, quits, breaks the protocol or stays
    /// idle too long (an error of kind `TimedOut`).
    pub async fn serve(mut self) -> io::Result<()> {
        loop {
            if self.input.is_empty() && self.input.capacity() > KEPT_INPUT_BYTES {
                self.input = Vec::new();
            }
            self.input.reserve(READ_CHUNK_BYTES);
            let read = self.stream.read_buf(&mut self.input);
            let n = match self.idle_timeout {
                Some(idle) => timeout(idle, read)
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "idle client"))??,
                None => read.await?,
            };
            if n == 0 {
                return Ok(());
            }
            let close = self.take_commands().await?;
            self.settle().await?;
            self.flush().await?;
            if close {
                return self.stream.shutdown().await;
            }
        }
    }

    /// Parses and handles every complete command in the input. Returns whether the connection
    /// is to close once the replies are written (`QUIT`, a protocol error).
    async fn take_commands(&mut self) -> io::Result<bool> {
        let mut used = 0;
        let mut close = false;
        loop {
            let args = match resp::parse_command(&self.input[used..]) {
                Ok(Some((args, n))) => {
                    used += n;
                    args
                }
                Ok(None) => break,
                Err(e) => {
                    self.now(Reply::err(format!("Protocol error: {e}"))).await?;
                    close = true;
                    break;
                }
            };
            if args.is_empty() {
                continue;
            }
            match command::parse(args) {
                Ok(Command::Ping(None)) => self.now(Reply::Status("PONG".to_string())).await?,
                Ok(Command::Ping(Some(message)) | Command::Echo(message)) => {
                    self.now(Reply::Bulk(message)).await?
                }
                Ok(Command::Connection(c)) => {
                    let reply = self.state.answer(c);
                    self.now(reply).await?
                }
                Ok(Command::Quit) => {
                    self.now(Reply::ok()).await?;
                    close = true;
                    break;
                }
                Ok(command) => self.dispatch(command).await?,
                Err(reply) => self.now(reply).await?,
            }
        }
        self.input.drain(..used);
        Ok(close)
    }

    /// A reply known at once: encoded now if nothing before it is pending, else queued behind.
    async fn now(&mut self, reply: Reply) -> io::Result<()> {
        if self.slots.len() >= MAX_IN_FLIGHT {
            // Settling leaves no slot behind.
            self.settle().await?;
        }
        if self.slots.is_empty() {
            reply.encode(&mut self.output);
            if self.output.len() >= MAX_PENDING_OUTPUT_BYTES {
                self.flush().await?;
            }
            return Ok(());
        }
        self.slots.push_back(Slot::Ready(reply));
        Ok(())
    }

    /// Queues `command` for the node, first waiting for what is in flight if it is of another
    /// kind or if the connection has its most commands pending.
    async fn dispatch(&mut self, command: Command) -> io::Result<()> {
        let kind = kind_of(&command);
        if self
            .in_flight
            .is_some_and(|k| k != kind || k == Kind::Barrier)
            || self.slots.len() >= MAX_IN_FLIGHT
        {
            self.settle().await?;
        }
        let slot = self.first_slot + self.slots.len() as u64;
        self.slots.push_back(Slot::Waiting);
        self.batch.push(Request {
            command,
            reply: ReplyTo::new(slot, self.replies_tx.clone()),
        });
        self.waiting += 1;
        self.in_flight = Some(kind);
        Ok(())
    }

    /// Sends the batch to the node, waits for every pending reply and encodes them all, in
    /// order; writes them out if they pass the bound.
    async fn settle(&mut self) -> io::Result<()> {
        if !self.batch.is_empty() {
            // If the node is gone, the batch is dropped: every request in it answers that the
            // node stopped.
            self.feed.submit(mem::take(&mut self.batch));
        }
        while self.waiting > 0 {
            // The connection holds a sender itself, so the queue never ends while it waits.
            let Some(replies) = self.replies.recv().await else {
                break;
            };
            for (slot, reply) in replies {
                self.fill(slot, reply);
            }
        }
        self.in_flight = None;
        while let Some(Slot::Ready(_)) = self.slots.front() {
            if let Some(Slot::Ready(reply)) = self.slots.pop_front() {
                reply.encode(&mut self.output);
            }
            self.first_slot += 1;
        }
        if self.output.len() >= MAX_PENDING_OUTPUT_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    /// Puts a reply in its slot (a late duplicate, or one for a slot already written, is
    /// ignored).
    fn fill(&mut self, slot: u64, reply: Reply) {
        let Some(index) = slot.checked_sub(self.first_slot) else {
            return;
        };
        let Ok(index) = usize::try_from(index) else {
            return;
        };
        if let Some(place @ Slot::Waiting) = self.slots.get_mut(index) {
            *place = Slot::Ready(reply);
            self.waiting -= 1;
        }
    }

    /// Writes out the encoded replies; while the client does not read them, this connection
    /// reads nothing more.
    async fn flush(&mut self) -> io::Result<()> {
        if !self.output.is_empty() {
            self.stream.write_all(&self.output).await?;
            self.output.clear();
        }
        if self.output.capacity() > 2 * MAX_PENDING_OUTPUT_BYTES {
            self.output = Vec::new();
        }
        Ok(())
    }
}
