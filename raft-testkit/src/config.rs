//! The configuration the harnesses give their nodes, and the two settings they vary.

use raft_core::Config;

/// Check-quorum and pre-vote, the two settings that change the shape of elections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags {
    /// `Config::check_quorum`.
    pub check_quorum: bool,
    /// `Config::pre_vote`.
    pub pre_vote: bool,
}

impl Flags {
    /// Every combination, in the order [`Flags::from_byte`] gives them for 0, 1, 2, 3 (a
    /// recorded run seeded by its position in this list replays only if the order stays).
    pub const ALL: [Flags; 4] = [
        Flags {
            check_quorum: false,
            pre_vote: false,
        },
        Flags {
            check_quorum: true,
            pre_vote: false,
        },
        Flags {
            check_quorum: false,
            pre_vote: true,
        },
        Flags {
            check_quorum: true,
            pre_vote: true,
        },
    ];

    /// The flags encoded in the low two bits of `b`: bit 0 check-quorum, bit 1 pre-vote.
    pub fn from_byte(b: u8) -> Flags {
        Flags {
            check_quorum: b & 1 != 0,
            pre_vote: b & 2 != 0,
        }
    }
}

/// The configuration of node `id` with `flags`: heartbeats every 2 ticks, randomised election
/// timeouts of 15..20 ticks, and small windows and messages (4 appends in flight, 64 bytes of
/// entries per append) so that followers get paused, flushes send several appends, and probes
/// happen.
pub fn config(id: u64, flags: Flags) -> Config {
    Config {
        id,
        election_tick: 10,
        heartbeat_tick: 2,
        // Ticking a follower 10 times ends its leader lease (check-quorum counts `election_tick`)
        // without making it campaign on its own.
        min_election_tick: 15,
        max_election_tick: 20,
        max_inflight_msgs: 4,
        max_size_per_msg: 64,
        check_quorum: flags.check_quorum,
        pre_vote: flags.pre_vote,
        ..Default::default()
    }
}

/// A logger that drops everything.
pub fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_flags_follow_the_byte_encoding() {
        let decoded: Vec<Flags> = (0..4).map(Flags::from_byte).collect();
        assert_eq!(
            decoded,
            Flags::ALL,
            "Flags::ALL[b] must be Flags::from_byte(b)"
        );
        assert_eq!(
            Flags::from_byte(0b111),
            Flags::ALL[3],
            "only the low two bits count"
        );
    }
}
