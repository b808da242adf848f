//! Peer authentication with a cluster secret (issue 19): a node that has one accepts a peer
//! connection only once the peer proves it knows the secret. After the peer's handshake (its id
//! and address) the node sends a fresh random challenge; the peer answers with
//! HMAC-SHA256(secret, challenge || id || address), which the node checks in constant time before
//! it takes a single message. A fresh challenge per connection means a recorded answer cannot be
//! replayed. The secret is read from a file, never from the command line (which other users of
//! the machine can read).

use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use rand::RngExt;
use sha2::Sha256;

/// The length of a challenge.
pub const CHALLENGE_LEN: usize = 16;
/// The length of an answer (an HMAC-SHA256).
pub const ANSWER_LEN: usize = 32;

/// The secret every node of a cluster shares. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSecret(Arc<Vec<u8>>);

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClusterSecret(<{} bytes>)", self.0.len())
    }
}

/// Why a secret file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read.
    #[error("cannot read the cluster secret file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The file holds too short a secret.
    #[error("the cluster secret in {path} is {len} bytes; at least 16 are needed")]
    TooShort {
        /// The file.
        path: String,
        /// The secret's length, trailing newline excluded.
        len: usize,
    },
}

impl ClusterSecret {
    /// A secret from raw bytes (at least 16).
    pub fn new(bytes: Vec<u8>) -> Option<ClusterSecret> {
        (bytes.len() >= 16).then(|| ClusterSecret(Arc::new(bytes)))
    }

    /// Reads the secret from `path`: the file's bytes, without a trailing newline.
    pub fn from_file(path: &Path) -> Result<ClusterSecret, SecretError> {
        let shown = path.display().to_string();
        let mut bytes = std::fs::read(path).map_err(|source| SecretError::Read {
            path: shown.clone(),
            source,
        })?;
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        let len = bytes.len();
        ClusterSecret::new(bytes).ok_or(SecretError::TooShort { path: shown, len })
    }

    fn answer_to(&self, challenge: &[u8], id: u64, addr: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(challenge);
        mac.update(&id.to_be_bytes());
        mac.update(addr.as_bytes());
        mac
    }
}

/// A fresh random challenge for a connecting peer.
pub fn new_challenge() -> [u8; CHALLENGE_LEN] {
    rand::rng().random()
}

/// Checks a peer's `answer` to `challenge`, the peer having said it is `id` at `addr`.
pub fn check_answer(
    secret: &ClusterSecret,
    challenge: &[u8],
    answer: &[u8],
    id: u64,
    addr: &str,
) -> io::Result<()> {
    secret
        .answer_to(challenge, id, addr)
        .verify_slice(answer)
        .map_err(|_| io::Error::new(io::ErrorKind::PermissionDenied, "wrong cluster secret"))
}

/// The answer to `challenge` of a node connecting as `id` at `addr`.
pub fn answer_for(
    secret: &ClusterSecret,
    challenge: &[u8],
    id: u64,
    addr: &str,
) -> [u8; ANSWER_LEN] {
    secret
        .answer_to(challenge, id, addr)
        .finalize()
        .into_bytes()
        .into()
}

/// The receiving side: challenges a peer that said it is `id` at `addr`, and checks its answer.
pub fn challenge(
    conn: &mut impl Read,
    out: &mut impl Write,
    secret: &ClusterSecret,
    id: u64,
    addr: &str,
) -> io::Result<()> {
    let challenge = new_challenge();
    out.write_all(&challenge)?;
    out.flush()?;
    let mut answer = [0u8; ANSWER_LEN];
    conn.read_exact(&mut answer)?;
    check_answer(secret, &challenge, &answer, id, addr)
}

/// The connecting side: answers the challenge of the node it connected to as `id` at `addr`.
pub fn answer(
    conn: &mut (impl Read + Write),
    secret: &ClusterSecret,
    id: u64,
    addr: &str,
) -> io::Result<()> {
    let mut challenge = [0u8; CHALLENGE_LEN];
    conn.read_exact(&mut challenge)?;
    conn.write_all(&answer_for(secret, &challenge, id, addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn secret(s: &str) -> ClusterSecret {
        ClusterSecret::new(s.as_bytes().to_vec()).unwrap()
    }

    /// A node checking with `checking` the peer that answers with `answering` as (`id`, `addr`),
    /// while the node expects node 1 at 127.0.0.1:1. Whether the node lets it in.
    fn admitted(checking: &ClusterSecret, answering: &ClusterSecret, id: u64, addr: &str) -> bool {
        let (mut node_end, mut peer_end) = UnixStream::pair().unwrap();
        let (answering, addr) = (answering.clone(), addr.to_string());
        let peer = std::thread::spawn(move || answer(&mut peer_end, &answering, id, &addr));
        let mut out = node_end.try_clone().unwrap();
        let verdict = challenge(&mut node_end, &mut out, checking, 1, "127.0.0.1:1");
        peer.join().unwrap().unwrap();
        verdict.is_ok()
    }

    #[test]
    fn only_an_answer_with_the_same_secret_and_identity_passes() {
        let s = secret("correct horse battery staple");
        assert!(admitted(&s, &s, 1, "127.0.0.1:1"));
        assert!(!admitted(
            &s,
            &secret("another secret of 16+ bytes"),
            1,
            "127.0.0.1:1"
        ));
        assert!(
            !admitted(&s, &s, 99, "127.0.0.1:1"),
            "claimed as another id"
        );
        assert!(
            !admitted(&s, &s, 1, "10.0.0.9:1"),
            "claimed at another address"
        );
    }

    #[test]
    fn a_secret_file_loses_its_trailing_newline_and_must_be_long_enough() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "0123456789abcdef\n").unwrap();
        assert_eq!(
            ClusterSecret::from_file(&path).unwrap(),
            secret("0123456789abcdef")
        );
        std::fs::write(&path, "short\n").unwrap();
        assert!(matches!(
            ClusterSecret::from_file(&path),
            Err(SecretError::TooShort { len: 5, .. })
        ));
        assert!(format!("{:?}", secret("0123456789abcdef")).contains("16 bytes"));
    }
}
