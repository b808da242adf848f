//! Parsing the expiry commands: `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT`, `PERSIST`, `TTL`,
//! `PTTL`. Relative times stay relative here: the node that proposes the write makes them
//! deadlines with its clock ([`crate::kv::Write::at`]).

use super::strings::integer_arg;
use super::{Command, ReadCommand};
use crate::kv::{Op, Write};
use crate::resp::Reply;

/// The longest time to live accepted, in ms (about 146 million years): a longer one would
/// overflow once added to the clock, which Redis refuses as an invalid expire time.
pub(super) const MAX_TTL_MS: i64 = i64::MAX / 2;

/// Redis's reply to a time that is out of range for the command `name`.
pub(super) fn ttl_error(name: &str) -> Reply {
    Reply::err(format!("invalid expire time in '{name}' command"))
}

/// `EXPIRE key seconds`, `PEXPIRE key ms`, `EXPIREAT key unix-seconds`, `PEXPIREAT key unix-ms`
/// (`name` in lower case). The options of Redis 7 (`NX`, `XX`, `GT`, `LT`) are not supported.
pub(super) fn expire(name: &str, args: Vec<Vec<u8>>) -> Result<Command, Reply> {
    let mut args = args.into_iter();
    let (key, amount) = (
        args.next().unwrap_or_default(),
        args.next().unwrap_or_default(),
    );
    if let Some(option) = args.next() {
        return Err(Reply::err(format!(
            "Unsupported option {}",
            String::from_utf8_lossy(&option)
        )));
    }
    let amount = integer_arg(&amount)?;
    let scale = if name.starts_with('p') { 1 } else { 1000 };
    let ms = amount
        .checked_mul(scale)
        .filter(|ms| ms.abs() <= MAX_TTL_MS)
        .ok_or_else(|| ttl_error(name))?;
    Ok(Command::Write(if name.ends_with("at") {
        // A time before the epoch has passed: the key is deleted.
        Write::Op(Op::ExpireAt(key, ms.max(0) as u64))
    } else {
        Write::ExpireIn(key, ms)
    }))
}

/// `PERSIST key`, `TTL key`, `PTTL key` (`name` in lower case).
pub(super) fn by_key(name: &str, key: Vec<u8>) -> Command {
    match name {
        "persist" => Command::Write(Write::Op(Op::Persist(key))),
        "ttl" => Command::Read(ReadCommand::Ttl(key)),
        _ => Command::Read(ReadCommand::Pttl(key)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    fn words(words: &[&str]) -> Result<Command, Reply> {
        parse(words.iter().map(|w| w.as_bytes().to_vec()).collect())
    }

    #[test]
    fn relative_expiries_stay_relative_and_absolute_ones_become_ms() {
        let write = |w| Ok(Command::Write(w));
        assert_eq!(
            words(&["EXPIRE", "k", "10"]),
            write(Write::ExpireIn(b"k".to_vec(), 10_000))
        );
        assert_eq!(
            words(&["pexpire", "k", "-1"]),
            write(Write::ExpireIn(b"k".to_vec(), -1))
        );
        assert_eq!(
            words(&["EXPIREAT", "k", "1700000000"]),
            write(Write::Op(Op::ExpireAt(b"k".to_vec(), 1_700_000_000_000)))
        );
        assert_eq!(
            words(&["PEXPIREAT", "k", "-3"]),
            write(Write::Op(Op::ExpireAt(b"k".to_vec(), 0)))
        );
        assert_eq!(
            words(&["PERSIST", "k"]),
            write(Write::Op(Op::Persist(b"k".to_vec())))
        );
        assert_eq!(
            words(&["TTL", "k"]),
            Ok(Command::Read(ReadCommand::Ttl(b"k".to_vec())))
        );
        assert_eq!(
            words(&["PTTL", "k"]),
            Ok(Command::Read(ReadCommand::Pttl(b"k".to_vec())))
        );
    }

    #[test]
    fn bad_times_and_options_get_redis_errors() {
        assert_eq!(
            words(&["EXPIRE", "k", "soon"]),
            Err(Reply::err("value is not an integer or out of range"))
        );
        assert_eq!(
            words(&["EXPIRE", "k", "9223372036854775807"]),
            Err(Reply::err("invalid expire time in 'expire' command"))
        );
        assert_eq!(
            words(&["PEXPIREAT", "k", "9223372036854775807"]),
            Err(Reply::err("invalid expire time in 'pexpireat' command"))
        );
        assert_eq!(
            words(&["EXPIRE", "k", "10", "NX"]),
            Err(Reply::err("Unsupported option NX"))
        );
        assert_eq!(
            words(&["TTL"]),
            Err(Reply::err("wrong number of arguments for 'ttl' command"))
        );
    }
}
