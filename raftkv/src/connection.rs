//! A client connection's own state (its id, its name, the library it says it is) and the
//! commands answered from it without the node: `HELLO`, `AUTH`, `SELECT`, `CLIENT ...`,
//! `COMMAND ...`, `CONFIG ...`. These are what client libraries send on connecting; a library
//! that gets the reply Redis would give connects unchanged.

use crate::command::connection::command_info;
use crate::command::table::TABLE;
use crate::command::ConnectionCommand;
use crate::resp::{Reply, MAX_BULK_BYTES};

/// The Redis version whose commands and replies raftkv follows, for clients that check it
/// (`HELLO`, `INFO server`).
pub const REDIS_VERSION: &str = "7.2.0";

/// The server settings `CONFIG GET` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `maxclients`: the most client connections served at once.
    pub max_clients: usize,
    /// `timeout`: seconds a client may stay idle (0: for ever).
    pub idle_timeout_secs: u64,
}

/// One client connection's state.
#[derive(Debug, Clone)]
pub struct ClientState {
    id: u64,
    peer: String,
    name: Vec<u8>,
    lib_name: Vec<u8>,
    lib_ver: Vec<u8>,
    settings: Settings,
}

impl ClientState {
    /// The state of a new connection numbered `id` (unique in the process, as `CLIENT ID`
    /// promises) from `peer`.
    pub fn new(id: u64, peer: String, settings: Settings) -> ClientState {
        ClientState {
            id,
            peer,
            name: Vec::new(),
            lib_name: Vec::new(),
            lib_ver: Vec::new(),
            settings,
        }
    }

    /// Answers a connection command, updating the state.
    pub fn answer(&mut self, command: ConnectionCommand) -> Reply {
        match command {
            ConnectionCommand::Hello { auth, name } => {
                if let Some((user, _)) = auth {
                    if let Err(refused) = authenticate(Some(&user)) {
                        return refused;
                    }
                }
                if let Some(name) = name {
                    self.name = name;
                }
                self.hello()
            }
            ConnectionCommand::Auth { user } => match authenticate(user.as_deref()) {
                Ok(()) => Reply::ok(),
                Err(refused) => refused,
            },
            ConnectionCommand::Select(0) => Reply::ok(),
            ConnectionCommand::Select(_) => Reply::err("DB index is out of range"),
            ConnectionCommand::ClientId => Reply::Integer(self.id as i64),
            ConnectionCommand::ClientGetName if self.name.is_empty() => Reply::Nil,
            ConnectionCommand::ClientGetName => Reply::Bulk(self.name.clone()),
            ConnectionCommand::ClientSetName(name) => {
                self.name = name;
                Reply::ok()
            }
            ConnectionCommand::ClientSetInfo { attribute, value } => {
                if attribute == "lib-name" {
                    self.lib_name = value;
                } else {
                    self.lib_ver = value;
                }
                Reply::ok()
            }
            ConnectionCommand::ClientInfo => Reply::Bulk(self.info_line().into_bytes()),
            ConnectionCommand::CommandInfo(names) => command_info(names.as_deref()),
            ConnectionCommand::CommandCount => Reply::Integer(TABLE.len() as i64),
            ConnectionCommand::CommandList => Reply::Array(
                TABLE
                    .iter()
                    .map(|s| Reply::Bulk(s.name.as_bytes().to_vec()))
                    .collect(),
            ),
            ConnectionCommand::CommandDocs => Reply::Array(Vec::new()),
            ConnectionCommand::ConfigGet(patterns) => self.config_get(&patterns),
            ConnectionCommand::ConfigResetStat => Reply::ok(),
        }
    }

    /// `HELLO`'s reply in RESP2: a flat array of field names and values.
    fn hello(&self) -> Reply {
        let text = |s: &str| Reply::Bulk(s.as_bytes().to_vec());
        Reply::Array(vec![
            text("server"),
            text("redis"),
            text("version"),
            text(REDIS_VERSION),
            text("proto"),
            Reply::Integer(2),
            text("id"),
            Reply::Integer(self.id as i64),
            text("mode"),
            text("standalone"),
            text("role"),
            text("master"),
            text("modules"),
            Reply::Array(Vec::new()),
        ])
    }

    /// `CLIENT INFO`'s line, with the fields Redis starts it with.
    fn info_line(&self) -> String {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        format!(
            "id={} addr={} name={} db=0 resp=2 lib-name={} lib-ver={}\n",
            self.id,
            self.peer,
            text(&self.name),
            text(&self.lib_name),
            text(&self.lib_ver)
        )
    }

    /// `CONFIG GET`: every parameter a pattern matches (Redis glob, any case), once each.
    fn config_get(&self, patterns: &[Vec<u8>]) -> Reply {
        let max_clients = self.settings.max_clients.to_string();
        let timeout = self.settings.idle_timeout_secs.to_string();
        let bulk_len = MAX_BULK_BYTES.to_string();
        let parameters: [(&str, &str); 9] = [
            // One key space: SELECT 0 only.
            ("databases", "1"),
            ("maxclients", &max_clients),
            ("timeout", &timeout),
            // No RDB dumps: the write-ahead log and the Raft snapshots keep everything, and
            // every write is fsync'd by a quorum before it is acknowledged.
            ("save", ""),
            ("appendonly", "yes"),
            ("appendfsync", "always"),
            ("maxmemory", "0"),
            ("maxmemory-policy", "noeviction"),
            ("proto-max-bulk-len", &bulk_len),
        ];
        let mut out = Vec::new();
        for (name, value) in parameters {
            if patterns.iter().any(|p| glob_match(p, name.as_bytes())) {
                out.push(Reply::Bulk(name.as_bytes().to_vec()));
                out.push(Reply::Bulk(value.as_bytes().to_vec()));
            }
        }
        Reply::Array(out)
    }
}

/// No password is configured: the user `default` (Redis's `nopass` user) takes any password,
/// and `AUTH password` alone is refused with Redis's words.
fn authenticate(user: Option<&[u8]>) -> Result<(), Reply> {
    match user {
        Some(user) if user == b"default" => Ok(()),
        Some(_) => Err(Reply::Error(
            "WRONGPASS invalid username-password pair or user is disabled.".into(),
        )),
        None => Err(Reply::err(
            "AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        )),
    }
}

/// Whether `text` matches the glob `pattern` (`*`, `?`, a backslash escapes), ignoring ASCII
/// case. Backtracks to the last `*` only, so a hostile pattern costs at most
/// `pattern.len() * text.len()` steps.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // The pattern position after the last `*` seen, and the text position it stands at.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if pattern.get(p) == Some(&b'*') {
            star = Some((p + 1, t));
            p += 1;
            continue;
        }
        // How far the pattern moves if its element at `p` matches `text[t]`.
        let step = match pattern.get(p) {
            Some(b'?') => Some(1),
            Some(b'\\') if p + 1 < pattern.len() => {
                pattern[p + 1].eq_ignore_ascii_case(&text[t]).then_some(2)
            }
            Some(c) => c.eq_ignore_ascii_case(&text[t]).then_some(1),
            None => None,
        };
        match (step, star) {
            (Some(n), _) => {
                p += n;
                t += 1;
            }
            // Let the last `*` take one more byte and try again from there.
            (None, Some((star_p, star_t))) => {
                p = star_p;
                t = star_t + 1;
                star = Some((star_p, star_t + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ClientState {
        ClientState::new(
            7,
            "127.0.0.1:5000".into(),
            Settings {
                max_clients: 10_000,
                idle_timeout_secs: 0,
            },
        )
    }

    #[test]
    fn the_name_is_per_connection_state() {
        let mut c = state();
        assert_eq!(c.answer(ConnectionCommand::ClientGetName), Reply::Nil);
        let named = ConnectionCommand::ClientSetName(b"app".to_vec());
        assert_eq!(c.answer(named), Reply::ok());
        assert_eq!(
            c.answer(ConnectionCommand::ClientGetName),
            Reply::Bulk(b"app".to_vec())
        );
        assert_eq!(c.answer(ConnectionCommand::ClientId), Reply::Integer(7));
        let cleared = ConnectionCommand::ClientSetName(Vec::new());
        c.answer(cleared);
        assert_eq!(c.answer(ConnectionCommand::ClientGetName), Reply::Nil);
    }

    #[test]
    fn hello_names_the_protocol_and_the_connection() {
        let mut c = state();
        let hello = ConnectionCommand::Hello {
            auth: None,
            name: Some(b"n".to_vec()),
        };
        let Reply::Array(fields) = c.answer(hello) else {
            panic!("an array")
        };
        assert_eq!(fields[5], Reply::Integer(2), "proto");
        assert_eq!(fields[7], Reply::Integer(7), "id");
        assert_eq!(
            c.answer(ConnectionCommand::ClientGetName),
            Reply::Bulk(b"n".to_vec())
        );
        let stranger = ConnectionCommand::Hello {
            auth: Some((b"bob".to_vec(), b"pw".to_vec())),
            name: None,
        };
        assert!(matches!(c.answer(stranger), Reply::Error(e) if e.starts_with("WRONGPASS")));
    }

    #[test]
    fn config_get_matches_globs_in_any_case() {
        let c = state();
        let get = |patterns: &[&str]| {
            let patterns: Vec<Vec<u8>> = patterns.iter().map(|p| p.as_bytes().to_vec()).collect();
            c.config_get(&patterns)
        };
        let pair = |k: &str, v: &str| {
            vec![
                Reply::Bulk(k.as_bytes().to_vec()),
                Reply::Bulk(v.as_bytes().to_vec()),
            ]
        };
        assert_eq!(get(&["SAVE"]), Reply::Array(pair("save", "")));
        assert_eq!(
            get(&["append*", "appendonly"]),
            Reply::Array([pair("appendonly", "yes"), pair("appendfsync", "always")].concat())
        );
        assert_eq!(get(&["nothing-like-this"]), Reply::Array(Vec::new()));
        assert_eq!(
            get(&["max?lients"]),
            Reply::Array(pair("maxclients", "10000"))
        );
    }

    #[test]
    fn glob_matching() {
        for (pattern, text, expected) in [
            ("*", "", true),
            ("*", "abc", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbb", false),
            ("?b", "ab", true),
            ("?", "", false),
            ("a\\*", "a*", true),
            ("a\\*", "ab", false),
            ("**x", "yyx", true),
            ("", "a", false),
        ] {
            assert_eq!(
                glob_match(pattern.as_bytes(), text.as_bytes()),
                expected,
                "{pattern} ~ {text}"
            );
        }
        let hostile = "*a".repeat(1000) + "b";
        assert!(!glob_match(
            hostile.as_bytes(),
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        ));
    }
}
