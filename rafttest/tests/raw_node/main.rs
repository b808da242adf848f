//! Tests of the `RawNode` / `Ready` contract (DESIGN.md §4) and of restarts.
//!
//! Readys are handled by hand, so each test can check exactly what a Ready (or the `LightReady`
//! returned by `advance`) holds: numbering, `messages` versus `persisted_messages`, `must_sync`,
//! when hard and soft state are reported, when committed entries are handed out (only once, in
//! order, and only once persisted locally), paging by `max_committed_size_per_ready`, the split
//! `advance_append` / `advance_apply`, restarting from `MemStorage` with `Config::applied`, config
//! validation, refusals of `RawNode::step`, and seeded election timeouts.

mod advance;
mod committed_entries;
mod config_and_refusals;
mod harness;
mod ready_contents;
mod restart;
mod runtime_settings;
mod seeds;
mod single_voter;
