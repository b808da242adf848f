//! The receiving side of a peer connection: handshake, the cluster secret's challenge, then
//! frames passed to the node.

use std::sync::mpsc::Sender;

use slog::{debug, warn, Logger};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::{read_frame, read_handshake, CONNECT_TIMEOUT};
use crate::event::Event;
use crate::peer_auth::{self, ClusterSecret, ANSWER_LEN};

/// The read buffer of a peer connection: a Ready's worth of appends in few reads.
const PEER_READ_BUFFER_BYTES: usize = 256 * 1024;

/// Reads a peer connection after its first byte was seen to be NUL: the handshake, the
/// challenge when this node has a cluster secret, then frames, each passed to the node as an
/// event, until the stream ends or breaks. Input is untrusted: anything malformed ends the
/// connection.
pub async fn serve_peer(
    mut stream: TcpStream,
    secret: Option<ClusterSecret>,
    events: Sender<Event>,
    logger: Logger,
) {
    let (read_half, mut write_half) = stream.split();
    let mut conn = BufReader::with_capacity(PEER_READ_BUFFER_BYTES, read_half);
    // A peer that connects and stalls in its handshake is not waited on for ever.
    let (from, addr) = match timeout(CONNECT_TIMEOUT, read_handshake(&mut conn)).await {
        Ok(Ok(hello)) => hello,
        Ok(Err(e)) => {
            debug!(logger, "bad peer handshake"; "error" => %e);
            return;
        }
        Err(_) => {
            debug!(logger, "a peer handshake timed out");
            return;
        }
    };
    if let Some(secret) = &secret {
        let challenge = peer_auth::new_challenge();
        let proven = timeout(CONNECT_TIMEOUT, async {
            write_half.write_all(&challenge).await?;
            let mut answer = [0u8; ANSWER_LEN];
            conn.read_exact(&mut answer).await?;
            peer_auth::check_answer(secret, &challenge, &answer, from, &addr)
        })
        .await;
        let refused = match proven {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("no answer in time".to_string()),
        };
        if let Some(error) = refused {
            warn!(logger, "refused a peer that did not prove the cluster secret";
                "claimed_id" => from, "claimed_addr" => addr, "error" => error);
            return;
        }
    }
    if events.send(Event::Hello { id: from, addr }).is_err() {
        return;
    }
    loop {
        match read_frame(&mut conn).await {
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
