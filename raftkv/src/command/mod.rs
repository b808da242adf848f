//! The commands the server understands, checked for name and arity (against [`table`]) before
//! they reach the node or the connection.
//!
//! Errors use Redis's wording, so clients and tests written against Redis see the same text:
//! `ERR unknown command 'x', with args beginning with: ...`,
//! `ERR wrong number of arguments for 'get' command`, `ERR syntax error`,
//! `ERR value is not an integer or out of range`.
//!
//! The pieces: [`table`] (names, arities, flags, key positions), `strings` (`SET` and its
//! options, `SETEX`, the `INCR` family), `expiry` (`EXPIRE`, `TTL`, ...), [`connection`] (what client
//! libraries send on connecting: `HELLO`, `SELECT`, `CLIENT`, `COMMAND`, `CONFIG`).

pub mod connection;
mod expiry;
mod strings;
pub mod table;

use crate::kv::{Op, Write};
use crate::resp::Reply;
pub use connection::ConnectionCommand;

/// A parsed, well-formed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `PING [message]`: answered by the connection itself.
    Ping(Option<Vec<u8>>),
    /// `ECHO message`: answered by the connection itself.
    Echo(Vec<u8>),
    /// `QUIT`: `+OK`, then the server closes the connection.
    Quit,
    /// A command about the connection, answered by the connection itself.
    Connection(ConnectionCommand),
    /// A linearizable read.
    Read(ReadCommand),
    /// A write, replicated through the log.
    Write(Write),
    /// `INFO [section ...]`: the node's role, term, leader, indexes and keyspace; the sections
    /// asked for, in lower case (none: the default ones).
    Info(Vec<String>),
    /// `RAFT.ADDNODE id addr`: adds a voter reachable at `addr`.
    AddNode {
        /// The new member's id.
        id: u64,
        /// Its address (`host:port`).
        addr: String,
    },
    /// `RAFT.REMOVENODE id`: removes a member.
    RemoveNode(u64),
    /// `RAFT.TRANSFER id`: asks the leader to hand leadership to `id`.
    Transfer(u64),
    /// `RAFT.STATUS`: the node's Raft state, with every member's progress on the leader.
    Status,
}

/// A command that only reads the key space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadCommand {
    /// `GET key`.
    Get(Vec<u8>),
    /// `EXISTS key [key ...]`.
    Exists(Vec<Vec<u8>>),
    /// `MGET key [key ...]`.
    MGet(Vec<Vec<u8>>),
    /// `STRLEN key`.
    Strlen(Vec<u8>),
    /// `TTL key`: seconds to live, -1 without a deadline, -2 for a missing key.
    Ttl(Vec<u8>),
    /// `PTTL key`: as `TTL`, in ms.
    Pttl(Vec<u8>),
    /// `DBSIZE`.
    DbSize,
}

/// Parses a command's arguments (name first). Returns the error reply to send when the command
/// is unknown or malformed. Never panics, whatever the input.
pub fn parse(mut args: Vec<Vec<u8>>) -> Result<Command, Reply> {
    if args.is_empty() {
        return Err(Reply::err("empty command"));
    }
    let raw_name = args.remove(0);
    let Some(spec) = table::lookup_any_case(&raw_name) else {
        return Err(unknown_command(&raw_name, &args));
    };
    // The table's name: in lower case, and no allocation per command.
    let name = spec.name;
    let given = args.len();
    if !spec.arity.allows(given) || (name == "mset" && !given.is_multiple_of(2)) {
        return Err(Reply::err(format!(
            "wrong number of arguments for '{name}' command"
        )));
    }
    match name {
        "set" => return strings::set(args),
        "setex" | "psetex" => return strings::setex(name, args),
        "expire" | "pexpire" | "expireat" | "pexpireat" => return expiry::expire(name, args),
        "hello" | "auth" | "select" | "client" | "command" | "config" => {
            return connection::parse(name, args)
        }
        _ => {}
    }
    let mut rest = args.into_iter();
    let mut next = || rest.next().unwrap_or_default();
    let write = |op| Ok(Command::Write(Write::Op(op)));
    match name {
        "ping" => Ok(Command::Ping(if given == 1 { Some(next()) } else { None })),
        "echo" => Ok(Command::Echo(next())),
        "quit" => Ok(Command::Quit),
        "get" => Ok(Command::Read(ReadCommand::Get(next()))),
        "strlen" => Ok(Command::Read(ReadCommand::Strlen(next()))),
        "exists" => Ok(Command::Read(ReadCommand::Exists(rest.collect()))),
        "mget" => Ok(Command::Read(ReadCommand::MGet(rest.collect()))),
        "dbsize" => Ok(Command::Read(ReadCommand::DbSize)),
        "ttl" | "pttl" | "persist" => Ok(expiry::by_key(name, next())),
        "setnx" => write(Op::SetNx(next(), next())),
        "getset" => Ok(strings::getset(next(), next())),
        "append" => write(Op::Append(next(), next())),
        "incr" | "decr" | "incrby" | "decrby" => {
            let key = next();
            let amount = rest.next();
            strings::incr_by(name, key, amount.as_deref())
        }
        "del" => write(Op::Del(rest.collect())),
        "mset" => {
            let flat: Vec<Vec<u8>> = rest.collect();
            let pairs = flat
                .chunks_exact(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect();
            write(Op::MSet(pairs))
        }
        "info" => Ok(Command::Info(
            rest.map(|s| String::from_utf8_lossy(&s).to_ascii_lowercase())
                .collect(),
        )),
        "raft.addnode" => {
            let id = node_id(&next())?;
            let addr = String::from_utf8(next())
                .ok()
                .filter(|a| a.parse::<std::net::SocketAddr>().is_ok())
                .ok_or_else(|| Reply::err("invalid address: expected ip:port"))?;
            Ok(Command::AddNode { id, addr })
        }
        "raft.removenode" => Ok(Command::RemoveNode(node_id(&next())?)),
        "raft.transfer" => Ok(Command::Transfer(node_id(&next())?)),
        "raft.status" => Ok(Command::Status),
        _ => Err(unknown_command(&raw_name, &[])),
    }
}

fn node_id(arg: &[u8]) -> Result<u64, Reply> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|&id| id != 0)
        .ok_or_else(|| Reply::err("invalid node id: expected a positive integer"))
}

/// Redis's reply to an unknown command: the name and the first arguments, each cut to 128 bytes.
fn unknown_command(name: &[u8], args: &[Vec<u8>]) -> Reply {
    let quote = |arg: &[u8]| String::from_utf8_lossy(&arg[..arg.len().min(128)]).into_owned();
    let mut listed = String::new();
    for arg in args {
        if listed.len() >= 128 {
            break;
        }
        listed.push_str(&format!("'{}' ", quote(arg)));
    }
    Reply::err(format!(
        "unknown command '{}', with args beginning with: {listed}",
        quote(name)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<Command, Reply> {
        parse(words.iter().map(|w| w.as_bytes().to_vec()).collect())
    }

    #[test]
    fn names_are_case_insensitive() {
        assert_eq!(
            parse_words(&["gEt", "k"]),
            Ok(Command::Read(ReadCommand::Get(b"k".to_vec())))
        );
        assert_eq!(parse_words(&["Raft.Status"]), Ok(Command::Status));
    }

    #[test]
    fn ping_takes_an_optional_message() {
        assert_eq!(parse_words(&["PING"]), Ok(Command::Ping(None)));
        assert_eq!(
            parse_words(&["PING", "hi"]),
            Ok(Command::Ping(Some(b"hi".to_vec())))
        );
        assert_eq!(
            parse_words(&["PING", "a", "b"]),
            Err(Reply::err("wrong number of arguments for 'ping' command"))
        );
    }

    #[test]
    fn wrong_arity_names_the_command_in_lower_case() {
        for (words, name) in [
            (&["GET"][..], "get"),
            (&["SET", "k"][..], "set"),
            (&["MSET", "a", "1", "b"][..], "mset"),
            (&["DBSIZE", "x"][..], "dbsize"),
            (&["RAFT.ADDNODE", "4"][..], "raft.addnode"),
        ] {
            assert_eq!(
                parse_words(words),
                Err(Reply::err(format!(
                    "wrong number of arguments for '{name}' command"
                ))),
                "{words:?}"
            );
        }
    }

    #[test]
    fn unknown_commands_quote_name_and_arguments() {
        assert_eq!(
            parse_words(&["FLUSHALL", "ASYNC"]),
            Err(Reply::Error(
                "ERR unknown command 'FLUSHALL', with args beginning with: 'ASYNC' ".to_string()
            ))
        );
        assert_eq!(
            parse_words(&["nope"]),
            Err(Reply::Error(
                "ERR unknown command 'nope', with args beginning with: ".to_string()
            ))
        );
    }

    #[test]
    fn every_table_entry_parses_with_its_minimum_arguments_without_panicking() {
        for spec in table::TABLE {
            for n in 0..6 {
                let mut args = vec![spec.name.as_bytes().to_vec()];
                args.extend((0..n).map(|i| format!("{i}").into_bytes()));
                let _ = parse(args);
            }
        }
    }

    #[test]
    fn writes_become_ops() {
        assert_eq!(
            parse_words(&["MSET", "a", "1", "b", "2"]),
            Ok(Command::Write(Write::Op(Op::MSet(vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"2".to_vec())
            ]))))
        );
        assert_eq!(
            parse_words(&["APPEND", "k", "v"]),
            Ok(Command::Write(Write::Op(Op::Append(
                b"k".to_vec(),
                b"v".to_vec()
            ))))
        );
    }

    #[test]
    fn admin_commands_check_ids_and_addresses() {
        assert_eq!(
            parse_words(&["RAFT.ADDNODE", "4", "127.0.0.1:7004"]),
            Ok(Command::AddNode {
                id: 4,
                addr: "127.0.0.1:7004".to_string()
            })
        );
        assert_eq!(
            parse_words(&["RAFT.ADDNODE", "0", "127.0.0.1:7004"]),
            Err(Reply::err("invalid node id: expected a positive integer"))
        );
        assert_eq!(
            parse_words(&["RAFT.ADDNODE", "4", "nowhere"]),
            Err(Reply::err("invalid address: expected ip:port"))
        );
        assert_eq!(
            parse_words(&["RAFT.TRANSFER", "2"]),
            Ok(Command::Transfer(2))
        );
        assert_eq!(
            parse_words(&["RAFT.REMOVENODE", "x"]),
            Err(Reply::err("invalid node id: expected a positive integer"))
        );
    }
}
