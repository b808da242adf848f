//! Parsing the commands a client library sends on connecting, answered by the connection itself
//! ([`crate::connection`]): `HELLO`, `AUTH`, `SELECT`, `CLIENT ...`, `COMMAND ...`,
//! `CONFIG ...`.

use super::strings::integer_arg;
use super::table::{lookup, Arity};
use super::Command;
use crate::resp::{parse_integer, Reply};

/// A command about the connection or the server's description, answered without the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionCommand {
    /// `HELLO [2 [AUTH user password] [SETNAME name]]` (RESP2 only).
    Hello {
        /// `AUTH user password`.
        auth: Option<(Vec<u8>, Vec<u8>)>,
        /// `SETNAME name`.
        name: Option<Vec<u8>>,
    },
    /// `AUTH [user] password`: no password is configured, so only the user `default` exists.
    Auth {
        /// The user, if named.
        user: Option<Vec<u8>>,
    },
    /// `SELECT 0` (the only database).
    Select(i64),
    /// `CLIENT ID`.
    ClientId,
    /// `CLIENT GETNAME`.
    ClientGetName,
    /// `CLIENT SETNAME name` (empty: no name).
    ClientSetName(Vec<u8>),
    /// `CLIENT SETINFO LIB-NAME|LIB-VER value`.
    ClientSetInfo {
        /// `lib-name` or `lib-ver`.
        attribute: String,
        /// Its value.
        value: Vec<u8>,
    },
    /// `CLIENT INFO`.
    ClientInfo,
    /// `COMMAND` (every command's entry) or `COMMAND INFO name ...`.
    CommandInfo(Option<Vec<String>>),
    /// `COMMAND COUNT`.
    CommandCount,
    /// `COMMAND LIST`.
    CommandList,
    /// `COMMAND DOCS [name ...]`: raftkv has no documentation to give (an empty array).
    CommandDocs,
    /// `CONFIG GET pattern [pattern ...]`.
    ConfigGet(Vec<Vec<u8>>),
    /// `CONFIG RESETSTAT`: nothing to reset.
    ConfigResetStat,
}

fn lower(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_ascii_lowercase()
}

/// Redis 7's reply to a subcommand with the wrong number of arguments: `'client|setname'`.
fn subcommand_arity(name: &str, sub: &str) -> Reply {
    Reply::err(format!(
        "wrong number of arguments for '{name}|{sub}' command"
    ))
}

/// Redis's reply to an unknown subcommand.
fn unknown_subcommand(name: &str, sub: &[u8]) -> Reply {
    Reply::err(format!(
        "unknown subcommand '{}'. Try {} HELP.",
        String::from_utf8_lossy(sub),
        name.to_ascii_uppercase()
    ))
}

/// Parses the connection commands (`name` in lower case, its arity already checked).
pub(super) fn parse(name: &str, args: Vec<Vec<u8>>) -> Result<Command, Reply> {
    let command = match name {
        "hello" => hello(args)?,
        "auth" => {
            let user = (args.len() == 2).then(|| args[0].clone());
            ConnectionCommand::Auth { user }
        }
        "select" => ConnectionCommand::Select(integer_arg(&args[0])?),
        "client" => client(args)?,
        "command" => command(args)?,
        _ => config(args)?,
    };
    Ok(Command::Connection(command))
}

fn hello(args: Vec<Vec<u8>>) -> Result<ConnectionCommand, Reply> {
    let mut args = args.into_iter();
    let (mut auth, mut name) = (None, None);
    if let Some(version) = args.next() {
        match parse_integer(&version) {
            Some(2) => {}
            Some(_) => {
                return Err(Reply::Error(
                    "NOPROTO sorry, this protocol version is not supported".into(),
                ))
            }
            None => {
                return Err(Reply::err(
                    "Protocol version is not an integer or out of range",
                ))
            }
        }
    }
    while let Some(option) = args.next() {
        match lower(&option).as_str() {
            "auth" => match (args.next(), args.next()) {
                (Some(user), Some(password)) => auth = Some((user, password)),
                _ => return Err(hello_syntax(&option)),
            },
            "setname" => {
                let given = args.next().ok_or_else(|| hello_syntax(&option))?;
                check_name(&given, "Client names")?;
                name = Some(given);
            }
            _ => return Err(hello_syntax(&option)),
        }
    }
    Ok(ConnectionCommand::Hello { auth, name })
}

fn hello_syntax(option: &[u8]) -> Reply {
    Reply::err(format!(
        "Syntax error in HELLO option '{}'",
        String::from_utf8_lossy(option)
    ))
}

fn client(mut args: Vec<Vec<u8>>) -> Result<ConnectionCommand, Reply> {
    let raw_sub = args.remove(0);
    let sub = lower(&raw_sub);
    let arity = match sub.as_str() {
        "id" | "getname" | "info" => Arity::Exactly(0),
        "setname" => Arity::Exactly(1),
        "setinfo" => Arity::Exactly(2),
        _ => return Err(unknown_subcommand("client", &raw_sub)),
    };
    if !arity.allows(args.len()) {
        return Err(subcommand_arity("client", &sub));
    }
    let mut args = args.into_iter();
    Ok(match sub.as_str() {
        "id" => ConnectionCommand::ClientId,
        "getname" => ConnectionCommand::ClientGetName,
        "info" => ConnectionCommand::ClientInfo,
        "setname" => {
            let name = args.next().unwrap_or_default();
            check_name(&name, "Client names")?;
            ConnectionCommand::ClientSetName(name)
        }
        _ => {
            let raw_attribute = args.next().unwrap_or_default();
            let attribute = lower(&raw_attribute);
            if attribute != "lib-name" && attribute != "lib-ver" {
                return Err(Reply::err(format!(
                    "Unrecognized option '{}'",
                    String::from_utf8_lossy(&raw_attribute)
                )));
            }
            let value = args.next().unwrap_or_default();
            check_name(&value, &attribute)?;
            ConnectionCommand::ClientSetInfo { attribute, value }
        }
    })
}

/// Redis's rule for client names and library names: printable ASCII, no spaces.
pub(crate) fn check_name(name: &[u8], what: &str) -> Result<(), Reply> {
    if name.iter().all(|b| (b'!'..=b'~').contains(b)) {
        return Ok(());
    }
    Err(Reply::err(format!(
        "{what} cannot contain spaces, newlines or special characters."
    )))
}

fn command(mut args: Vec<Vec<u8>>) -> Result<ConnectionCommand, Reply> {
    if args.is_empty() {
        return Ok(ConnectionCommand::CommandInfo(None));
    }
    let raw_sub = args.remove(0);
    let sub = lower(&raw_sub);
    Ok(match sub.as_str() {
        "count" | "list" if !args.is_empty() => return Err(subcommand_arity("command", &sub)),
        "count" => ConnectionCommand::CommandCount,
        "list" => ConnectionCommand::CommandList,
        "docs" => ConnectionCommand::CommandDocs,
        "info" => ConnectionCommand::CommandInfo(Some(args.iter().map(|a| lower(a)).collect())),
        _ => return Err(unknown_subcommand("command", &raw_sub)),
    })
}

fn config(mut args: Vec<Vec<u8>>) -> Result<ConnectionCommand, Reply> {
    let raw_sub = args.remove(0);
    let sub = lower(&raw_sub);
    match sub.as_str() {
        "get" if args.is_empty() => Err(subcommand_arity("config", &sub)),
        "get" => Ok(ConnectionCommand::ConfigGet(args)),
        "resetstat" if !args.is_empty() => Err(subcommand_arity("config", &sub)),
        "resetstat" => Ok(ConnectionCommand::ConfigResetStat),
        "set" if args.len() < 2 || !args.len().is_multiple_of(2) => {
            Err(subcommand_arity("config", &sub))
        }
        // raftkv's settings are fixed at start (`raftkv help`).
        "set" => Err(Reply::err(format!(
            "Unknown option or number of arguments for CONFIG SET - '{}'",
            String::from_utf8_lossy(&args[0])
        ))),
        _ => Err(unknown_subcommand("config", &raw_sub)),
    }
}

/// The `COMMAND INFO` reply for `names` (every command for `None`; nil for an unknown name).
pub fn command_info(names: Option<&[String]>) -> Reply {
    match names {
        None => Reply::Array(super::table::TABLE.iter().map(|s| s.info()).collect()),
        Some(names) => Reply::Array(
            names
                .iter()
                .map(|name| lookup(name).map_or(Reply::Nil, |s| s.info()))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse as parse_command;
    use super::*;

    fn words(words: &[&str]) -> Result<Command, Reply> {
        parse_command(words.iter().map(|w| w.as_bytes().to_vec()).collect())
    }

    fn conn(c: ConnectionCommand) -> Result<Command, Reply> {
        Ok(Command::Connection(c))
    }

    #[test]
    fn hello_takes_protocol_2_only_and_its_options() {
        let plain = ConnectionCommand::Hello {
            auth: None,
            name: None,
        };
        assert_eq!(words(&["HELLO"]), conn(plain.clone()));
        assert_eq!(words(&["hello", "2"]), conn(plain));
        assert_eq!(
            words(&["HELLO", "2", "setname", "app", "AUTH", "default", "pw"]),
            conn(ConnectionCommand::Hello {
                auth: Some((b"default".to_vec(), b"pw".to_vec())),
                name: Some(b"app".to_vec()),
            })
        );
        assert_eq!(
            words(&["HELLO", "3"]),
            Err(Reply::Error(
                "NOPROTO sorry, this protocol version is not supported".into()
            ))
        );
        assert_eq!(
            words(&["HELLO", "two"]),
            Err(Reply::err(
                "Protocol version is not an integer or out of range"
            ))
        );
        assert_eq!(
            words(&["HELLO", "2", "AUTH", "u"]),
            Err(Reply::err("Syntax error in HELLO option 'AUTH'"))
        );
    }

    #[test]
    fn client_subcommands_check_their_arguments() {
        assert_eq!(words(&["CLIENT", "id"]), conn(ConnectionCommand::ClientId));
        assert_eq!(
            words(&["CLIENT", "SETNAME", "worker-1"]),
            conn(ConnectionCommand::ClientSetName(b"worker-1".to_vec()))
        );
        assert_eq!(
            words(&["CLIENT", "SETNAME", "a b"]),
            Err(Reply::err(
                "Client names cannot contain spaces, newlines or special characters."
            ))
        );
        assert_eq!(
            words(&["CLIENT", "SETNAME"]),
            Err(Reply::err(
                "wrong number of arguments for 'client|setname' command"
            ))
        );
        assert_eq!(
            words(&["CLIENT", "SETINFO", "LIB-NAME", "redis-rs"]),
            conn(ConnectionCommand::ClientSetInfo {
                attribute: "lib-name".into(),
                value: b"redis-rs".to_vec()
            })
        );
        assert_eq!(
            words(&["CLIENT", "SETINFO", "color", "red"]),
            Err(Reply::err("Unrecognized option 'color'"))
        );
        assert_eq!(
            words(&["CLIENT", "KILL", "x"]),
            Err(Reply::err("unknown subcommand 'KILL'. Try CLIENT HELP."))
        );
    }

    #[test]
    fn select_command_and_config() {
        assert_eq!(words(&["SELECT", "0"]), conn(ConnectionCommand::Select(0)));
        assert_eq!(
            words(&["SELECT", "x"]),
            Err(Reply::err("value is not an integer or out of range"))
        );
        assert_eq!(
            words(&["COMMAND"]),
            conn(ConnectionCommand::CommandInfo(None))
        );
        assert_eq!(
            words(&["COMMAND", "INFO", "GET"]),
            conn(ConnectionCommand::CommandInfo(Some(vec!["get".into()])))
        );
        assert_eq!(
            words(&["command", "docs"]),
            conn(ConnectionCommand::CommandDocs)
        );
        assert_eq!(
            words(&["COMMAND", "COUNT", "x"]),
            Err(Reply::err(
                "wrong number of arguments for 'command|count' command"
            ))
        );
        assert_eq!(
            words(&["CONFIG", "GET", "save", "appendonly"]),
            conn(ConnectionCommand::ConfigGet(vec![
                b"save".to_vec(),
                b"appendonly".to_vec()
            ]))
        );
        assert_eq!(
            words(&["CONFIG", "SET", "maxclients", "5"]),
            Err(Reply::err(
                "Unknown option or number of arguments for CONFIG SET - 'maxclients'"
            ))
        );
        assert_eq!(
            words(&["CONFIG", "REWRITE"]),
            Err(Reply::err("unknown subcommand 'REWRITE'. Try CONFIG HELP."))
        );
    }

    #[test]
    fn command_info_answers_nil_for_an_unknown_name() {
        let Reply::Array(infos) = command_info(Some(&["get".into(), "nope".into()])) else {
            panic!("an array")
        };
        assert_eq!(infos.len(), 2);
        assert!(matches!(infos[0], Reply::Array(_)));
        assert_eq!(infos[1], Reply::Nil);
    }
}
