//! The command table: every command's name, arity, flags and key positions, as Redis's
//! `COMMAND` reports them. The parser checks arity against it, and `COMMAND` answers from it, so
//! client libraries that ask which arguments are keys get the truth.

use crate::resp::Reply;

/// How many arguments (after the name) a command takes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arity {
    Exactly(usize),
    AtLeast(usize),
    Between(usize, usize),
}

impl Arity {
    pub(super) fn allows(&self, n: usize) -> bool {
        match *self {
            Arity::Exactly(k) => n == k,
            Arity::AtLeast(k) => n >= k,
            Arity::Between(lo, hi) => (lo..=hi).contains(&n),
        }
    }

    /// Redis's arity: the argument count with the name, negative for "at least".
    fn redis(&self) -> i64 {
        match *self {
            Arity::Exactly(k) => k as i64 + 1,
            Arity::AtLeast(k) | Arity::Between(k, _) => -(k as i64 + 1),
        }
    }
}

/// One command of the table.
#[derive(Debug)]
pub struct Spec {
    /// The name, in lower case.
    pub name: &'static str,
    pub(super) arity: Arity,
    flags: &'static [&'static str],
    /// The first key argument (1 is the first argument), the last (-1: the last argument), and
    /// the step between keys; all 0 for a command without keys.
    keys: (i64, i64, i64),
}

const READ: &[&str] = &["readonly", "fast"];
const WRITE: &[&str] = &["write", "denyoom", "fast"];
const WRITE_SLOW: &[&str] = &["write", "denyoom"];
const CONNECTION: &[&str] = &["noscript", "loading", "stale", "fast"];
const ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];
const NO_KEYS: (i64, i64, i64) = (0, 0, 0);
const ONE_KEY: (i64, i64, i64) = (1, 1, 1);
const ALL_KEYS: (i64, i64, i64) = (1, -1, 1);

const fn spec(
    name: &'static str,
    arity: Arity,
    flags: &'static [&'static str],
    keys: (i64, i64, i64),
) -> Spec {
    Spec {
        name,
        arity,
        flags,
        keys,
    }
}

use Arity::{AtLeast, Between, Exactly};

/// Every command raftkv understands.
pub const TABLE: &[Spec] = &[
    spec("ping", Between(0, 1), &["fast", "stale"], NO_KEYS),
    spec("echo", Exactly(1), &["fast"], NO_KEYS),
    spec("quit", AtLeast(0), CONNECTION, NO_KEYS),
    spec("hello", AtLeast(0), CONNECTION, NO_KEYS),
    spec("auth", Between(1, 2), CONNECTION, NO_KEYS),
    spec("select", Exactly(1), CONNECTION, NO_KEYS),
    spec("client", AtLeast(1), ADMIN, NO_KEYS),
    spec("command", AtLeast(0), &["loading", "stale"], NO_KEYS),
    spec("config", AtLeast(1), ADMIN, NO_KEYS),
    spec("info", AtLeast(0), &["loading", "stale"], NO_KEYS),
    spec("get", Exactly(1), READ, ONE_KEY),
    spec("mget", AtLeast(1), READ, ALL_KEYS),
    spec("exists", AtLeast(1), READ, ALL_KEYS),
    spec("strlen", Exactly(1), READ, ONE_KEY),
    spec("ttl", Exactly(1), READ, ONE_KEY),
    spec("pttl", Exactly(1), READ, ONE_KEY),
    spec("dbsize", Exactly(0), READ, NO_KEYS),
    spec("set", AtLeast(2), WRITE_SLOW, ONE_KEY),
    spec("setnx", Exactly(2), WRITE, ONE_KEY),
    spec("setex", Exactly(3), WRITE_SLOW, ONE_KEY),
    spec("psetex", Exactly(3), WRITE_SLOW, ONE_KEY),
    spec("getset", Exactly(2), WRITE, ONE_KEY),
    spec("mset", AtLeast(2), WRITE_SLOW, (1, -1, 2)),
    spec("del", AtLeast(1), &["write"], ALL_KEYS),
    spec("incr", Exactly(1), WRITE, ONE_KEY),
    spec("decr", Exactly(1), WRITE, ONE_KEY),
    spec("incrby", Exactly(2), WRITE, ONE_KEY),
    spec("decrby", Exactly(2), WRITE, ONE_KEY),
    spec("append", Exactly(2), WRITE, ONE_KEY),
    spec("expire", AtLeast(2), &["write", "fast"], ONE_KEY),
    spec("pexpire", AtLeast(2), &["write", "fast"], ONE_KEY),
    spec("expireat", AtLeast(2), &["write", "fast"], ONE_KEY),
    spec("pexpireat", AtLeast(2), &["write", "fast"], ONE_KEY),
    spec("persist", Exactly(1), &["write", "fast"], ONE_KEY),
    spec("raft.addnode", Exactly(2), &["admin"], NO_KEYS),
    spec("raft.removenode", Exactly(1), &["admin"], NO_KEYS),
    spec("raft.transfer", Exactly(1), &["admin"], NO_KEYS),
    spec("raft.status", Exactly(0), &["admin", "stale"], NO_KEYS),
];

/// The table's entry for `name` (in lower case).
pub fn lookup(name: &str) -> Option<&'static Spec> {
    TABLE.iter().find(|spec| spec.name == name)
}

/// The table's entry for a command name as a client sent it, in any case.
pub fn lookup_any_case(name: &[u8]) -> Option<&'static Spec> {
    TABLE
        .iter()
        .find(|spec| spec.name.as_bytes().eq_ignore_ascii_case(name))
}

impl Spec {
    /// The command's `COMMAND INFO` entry, in Redis 7's shape: name, arity, flags, first key,
    /// last key, step, then ACL categories, tips, key specifications and subcommands (empty).
    pub fn info(&self) -> Reply {
        let (first, last, step) = self.keys;
        let flags = self
            .flags
            .iter()
            .map(|f| Reply::Status(f.to_string()))
            .collect();
        Reply::Array(vec![
            Reply::Bulk(self.name.as_bytes().to_vec()),
            Reply::Integer(self.arity.redis()),
            Reply::Array(flags),
            Reply::Integer(first),
            Reply::Integer(last),
            Reply::Integer(step),
            Reply::Array(Vec::new()),
            Reply::Array(Vec::new()),
            Reply::Array(Vec::new()),
            Reply::Array(Vec::new()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_lower_case() {
        for (i, spec) in TABLE.iter().enumerate() {
            assert_eq!(spec.name, spec.name.to_ascii_lowercase());
            assert!(
                TABLE[..i].iter().all(|other| other.name != spec.name),
                "{} twice",
                spec.name
            );
        }
    }

    #[test]
    fn info_reports_redis_arity_and_key_positions() {
        let get = lookup("get").unwrap().info();
        let Reply::Array(fields) = get else {
            panic!("an array")
        };
        assert_eq!(fields.len(), 10);
        assert_eq!(fields[1], Reply::Integer(2), "GET key");
        assert_eq!(
            fields[3..6],
            [Reply::Integer(1), Reply::Integer(1), Reply::Integer(1)]
        );
        let Reply::Array(mset) = lookup("mset").unwrap().info() else {
            panic!("an array")
        };
        assert_eq!(
            mset[1],
            Reply::Integer(-3),
            "MSET key value [key value ...]"
        );
        assert_eq!(mset[5], Reply::Integer(2), "keys every other argument");
        assert!(lookup("flushall").is_none());
    }
}
