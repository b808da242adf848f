//! Parsing the string commands: `SET` and its options, `SETNX`, `GETSET`, `APPEND`, and the
//! `INCR` family. Arity is checked before (by the table); these check the arguments' values.

use super::expiry::{ttl_error, MAX_TTL_MS};
use super::Command;
use crate::kv::{Op, SetCondition, SetExpiry, Write};
use crate::resp::{parse_integer, Reply};

/// Redis's reply to an argument that should be an integer and is not.
pub(super) fn not_an_integer() -> Reply {
    Reply::err("value is not an integer or out of range")
}

/// An integer argument, or Redis's error.
pub(super) fn integer_arg(arg: &[u8]) -> Result<i64, Reply> {
    parse_integer(arg).ok_or_else(not_an_integer)
}

/// A `SET` option that names a time.
#[derive(Clone, Copy)]
enum TimeOption {
    Ex,
    Px,
    ExAt,
    PxAt,
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`, options in any order and
/// any case, as Redis parses them: a repeated or conflicting option is a syntax error.
pub(super) fn set(args: Vec<Vec<u8>>) -> Result<Command, Reply> {
    let mut args = args.into_iter();
    let (key, value) = (
        args.next().unwrap_or_default(),
        args.next().unwrap_or_default(),
    );
    let mut condition = SetCondition::Always;
    let mut get = false;
    let mut keep_ttl = false;
    let mut time: Option<(TimeOption, Vec<u8>)> = None;
    let syntax = || Reply::err("syntax error");
    while let Some(option) = args.next() {
        let option = String::from_utf8_lossy(&option).to_ascii_lowercase();
        let unset_condition = condition == SetCondition::Always;
        let unset_expiry = !keep_ttl && time.is_none();
        match option.as_str() {
            "nx" if unset_condition => condition = SetCondition::IfAbsent,
            "xx" if unset_condition => condition = SetCondition::IfPresent,
            "get" => get = true,
            "keepttl" if unset_expiry => keep_ttl = true,
            "ex" | "px" | "exat" | "pxat" if unset_expiry => {
                let which = match option.as_str() {
                    "ex" => TimeOption::Ex,
                    "px" => TimeOption::Px,
                    "exat" => TimeOption::ExAt,
                    _ => TimeOption::PxAt,
                };
                time = Some((which, args.next().ok_or_else(syntax)?));
            }
            _ => return Err(syntax()),
        }
    }
    let plain = |expiry| {
        Command::Write(Write::Op(Op::Set {
            key: key.clone(),
            value: value.clone(),
            condition,
            get,
            expiry,
        }))
    };
    let Some((which, amount)) = time else {
        let expiry = if keep_ttl {
            SetExpiry::Keep
        } else {
            SetExpiry::Clear
        };
        return Ok(plain(expiry));
    };
    let amount = integer_arg(&amount)?;
    let scale = match which {
        TimeOption::Ex | TimeOption::ExAt => 1000,
        TimeOption::Px | TimeOption::PxAt => 1,
    };
    let ms = amount
        .checked_mul(scale)
        .filter(|ms| *ms > 0)
        .ok_or_else(|| ttl_error("set"))?;
    match which {
        TimeOption::ExAt | TimeOption::PxAt => Ok(plain(SetExpiry::At(ms as u64))),
        TimeOption::Ex | TimeOption::Px if ms > MAX_TTL_MS => Err(ttl_error("set")),
        TimeOption::Ex | TimeOption::Px => Ok(Command::Write(Write::SetFor {
            key,
            value,
            condition,
            get,
            ttl_ms: ms as u64,
        })),
    }
}

/// `SETEX key seconds value` and `PSETEX key ms value` (`name` in lower case): `SET key value
/// EX seconds` (`PX ms`), with Redis's error for a time that is not positive.
pub(super) fn setex(name: &str, args: Vec<Vec<u8>>) -> Result<Command, Reply> {
    let mut args = args.into_iter();
    let key = args.next().unwrap_or_default();
    let amount = integer_arg(&args.next().unwrap_or_default())?;
    let scale = if name == "setex" { 1000 } else { 1 };
    let ttl_ms = amount
        .checked_mul(scale)
        .filter(|ms| (1..=MAX_TTL_MS).contains(ms))
        .ok_or_else(|| ttl_error(name))?;
    Ok(Command::Write(Write::SetFor {
        key,
        value: args.next().unwrap_or_default(),
        condition: SetCondition::Always,
        get: false,
        ttl_ms: ttl_ms as u64,
    }))
}

/// `GETSET key value`: `SET key value GET` (the key loses its deadline).
pub(super) fn getset(key: Vec<u8>, value: Vec<u8>) -> Command {
    Command::Write(Write::Op(Op::Set {
        key,
        value,
        condition: SetCondition::Always,
        get: true,
        expiry: SetExpiry::Clear,
    }))
}

/// `INCR`, `DECR`, `INCRBY`, `DECRBY` (`name` in lower case; `amount` for the last two).
pub(super) fn incr_by(name: &str, key: Vec<u8>, amount: Option<&[u8]>) -> Result<Command, Reply> {
    let by = match (name, amount) {
        ("incr", _) => 1,
        ("decr", _) => -1,
        ("incrby", Some(amount)) => integer_arg(amount)?,
        (_, Some(amount)) => integer_arg(amount)?
            .checked_neg()
            .ok_or_else(|| Reply::err("decrement would overflow"))?,
        (_, None) => return Err(not_an_integer()),
    };
    Ok(Command::Write(Write::Op(Op::IncrBy(key, by))))
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    fn words(words: &[&str]) -> Result<Command, Reply> {
        parse(words.iter().map(|w| w.as_bytes().to_vec()).collect())
    }

    fn set_op(condition: SetCondition, get: bool, expiry: SetExpiry) -> Command {
        Command::Write(Write::Op(Op::Set {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            condition,
            get,
            expiry,
        }))
    }

    #[test]
    fn set_options_combine_in_any_order_and_case() {
        use SetCondition::*;
        assert_eq!(
            words(&["SET", "k", "v"]),
            Ok(set_op(Always, false, SetExpiry::Clear))
        );
        assert_eq!(
            words(&["set", "k", "v", "get", "Nx"]),
            Ok(set_op(IfAbsent, true, SetExpiry::Clear))
        );
        assert_eq!(
            words(&["SET", "k", "v", "KEEPTTL", "XX"]),
            Ok(set_op(IfPresent, false, SetExpiry::Keep))
        );
        assert_eq!(
            words(&["SET", "k", "v", "PXAT", "1700000000000"]),
            Ok(set_op(Always, false, SetExpiry::At(1_700_000_000_000)))
        );
        assert_eq!(
            words(&["SET", "k", "v", "EXAT", "1700000000"]),
            Ok(set_op(Always, false, SetExpiry::At(1_700_000_000_000)))
        );
        assert_eq!(
            words(&["SET", "k", "v", "ex", "10", "NX"]),
            Ok(Command::Write(Write::SetFor {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                condition: IfAbsent,
                get: false,
                ttl_ms: 10_000,
            }))
        );
        assert!(matches!(
            words(&["SET", "k", "v", "PX", "1"]),
            Ok(Command::Write(Write::SetFor { ttl_ms: 1, .. }))
        ));
    }

    #[test]
    fn set_refuses_conflicting_options_and_bad_times_with_redis_errors() {
        let syntax = Err(Reply::err("syntax error"));
        for bad in [
            &["SET", "k", "v", "NX", "XX"][..],
            &["SET", "k", "v", "EX", "10", "PX", "10"],
            &["SET", "k", "v", "EX", "10", "KEEPTTL"],
            &["SET", "k", "v", "KEEPTTL", "EXAT", "10"],
            &["SET", "k", "v", "EX"],
            &["SET", "k", "v", "FOREVER"],
        ] {
            assert_eq!(words(bad), syntax, "{bad:?}");
        }
        assert_eq!(
            words(&["SET", "k", "v", "EX", "ten"]),
            Err(not_an_integer())
        );
        let invalid = Err(Reply::err("invalid expire time in 'set' command"));
        for bad in ["0", "-5", "9223372036854775807"] {
            assert_eq!(words(&["SET", "k", "v", "EX", bad]), invalid, "EX {bad}");
        }
        assert_eq!(words(&["SET", "k", "v", "PXAT", "0"]), invalid);
    }

    #[test]
    fn the_incr_family_and_getset_and_setnx() {
        let incr = |key: &str, by| Ok(Command::Write(Write::Op(Op::IncrBy(key.into(), by))));
        assert_eq!(words(&["INCR", "n"]), incr("n", 1));
        assert_eq!(words(&["DECR", "n"]), incr("n", -1));
        assert_eq!(words(&["INCRBY", "n", "-7"]), incr("n", -7));
        assert_eq!(words(&["DECRBY", "n", "7"]), incr("n", -7));
        assert_eq!(words(&["INCRBY", "n", "1.5"]), Err(not_an_integer()));
        assert_eq!(
            words(&["DECRBY", "n", "-9223372036854775808"]),
            Err(Reply::err("decrement would overflow"))
        );
        assert!(matches!(
            words(&["SETEX", "k", "10", "v"]),
            Ok(Command::Write(Write::SetFor { ttl_ms: 10_000, .. }))
        ));
        assert!(matches!(
            words(&["psetex", "k", "10", "v"]),
            Ok(Command::Write(Write::SetFor { ttl_ms: 10, .. }))
        ));
        assert_eq!(
            words(&["SETEX", "k", "0", "v"]),
            Err(Reply::err("invalid expire time in 'setex' command"))
        );
        assert_eq!(
            words(&["GETSET", "k", "v"]),
            Ok(set_op(SetCondition::Always, true, SetExpiry::Clear))
        );
        assert_eq!(
            words(&["SETNX", "k", "v"]),
            Ok(Command::Write(Write::Op(Op::SetNx(
                b"k".to_vec(),
                b"v".to_vec()
            ))))
        );
    }
}
