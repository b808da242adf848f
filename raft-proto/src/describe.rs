//! Stable one-line descriptions of wire values, for logs and test transcripts.
//!
//! Formats (a transcript diff is reviewed like code, so change them only on purpose):
//! - entry: `term/index Type payload`, e.g. `1/5 EntryNormal "put x"`; conf-change entries show the
//!   decoded change in the compact text form (`1/6 EntryConfChangeV2 v2 l4 r5`), followed by
//!   `Implicit`/`Explicit` when the transition is not `Auto`; a non-empty entry context is appended as
//!   ` Context:<payload>`.
//! - payload: `"text"` when valid UTF-8 without control characters, else `0x` + hex; long payloads are
//!   cut and followed by `...(<total>B)`.
//! - message: `from->to Type Term:T Log:LT/I`, then, each only when set: `Rejected (Hint: H)`,
//!   `Commit:C`, `CommitTerm:CT`, `Entries:[e1, e2]`, `Snapshot: <snapshot>`, `RequestSnapshot:R`,
//!   `Priority:P`, `DeprecatedPriority:P`, `Context:<payload>`.
//! - hard state: `Term:T Vote:V Commit:C`.
//! - conf state: all five fields, always, in wire order of meaning:
//!   `Voters:[1 2 3] VotersOutgoing:[] Learners:[4] LearnersNext:[] AutoLeave:false`.
//! - snapshot: `Index:I Term:T ConfState:<conf state>` (the data is not shown).
//!
//! Enum values outside the schema never panic: they print as `MessageType(99)` / `EntryType(7)`.

use std::fmt::Write as _;

use prost::Message as _;

use crate::conf_change::{conf_changes_to_string, ConfChangeI as _};
use crate::eraftpb::{
    ConfChange, ConfChangeTransition, ConfChangeV2, ConfState, Entry, EntryType, HardState,
    Message, MessageType, Snapshot,
};

/// Longest text payload shown, in bytes (cut at a character boundary).
const MAX_TEXT: usize = 64;
/// Longest binary payload shown, in bytes (two hex digits each).
const MAX_HEX: usize = 16;

/// Describes an entry, e.g. `1/5 EntryNormal "payload"` or `1/6 EntryConfChangeV2 v2 v3 l4 r5`.
pub fn describe_entry(e: &Entry) -> String {
    let mut out = format!("{}/{} ", e.term, e.index);
    match EntryType::try_from(e.entry_type) {
        Ok(t) => out.push_str(t.as_str_name()),
        Err(_) => {
            let _ = write!(out, "EntryType({})", e.entry_type);
        }
    }
    let body = match EntryType::try_from(e.entry_type) {
        Ok(EntryType::EntryConfChange) => match ConfChange::decode(e.data.as_ref()) {
            Ok(cc) => describe_conf_change_v2(&cc.as_v2()),
            Err(_) => format!("<undecodable ConfChange {}>", payload(&e.data)),
        },
        Ok(EntryType::EntryConfChangeV2) => match ConfChangeV2::decode(e.data.as_ref()) {
            Ok(cc) => describe_conf_change_v2(&cc),
            Err(_) => format!("<undecodable ConfChangeV2 {}>", payload(&e.data)),
        },
        _ => payload(&e.data),
    };
    if !body.is_empty() {
        out.push(' ');
        out.push_str(&body);
    }
    if !e.context.is_empty() {
        let _ = write!(out, " Context:{}", payload(&e.context));
    }
    out
}

/// The changes in compact text form, then the transition unless it is `Auto` (the common case). A
/// leave-joint change (no changes, `Auto`) is therefore empty.
fn describe_conf_change_v2(cc: &ConfChangeV2) -> String {
    let mut out = conf_changes_to_string(&cc.changes);
    let transition = match ConfChangeTransition::try_from(cc.transition) {
        Ok(ConfChangeTransition::Auto) => return out,
        Ok(t) => t.as_str_name().to_string(),
        Err(_) => format!("ConfChangeTransition({})", cc.transition),
    };
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(&transition);
    out
}

/// Describes a message on one line, e.g.
/// `1->2 MsgAppend Term:3 Log:2/7 Commit:5 Entries:[3/8 EntryNormal "a", 3/9 EntryNormal "b"]`.
pub fn describe_message(m: &Message) -> String {
    let mut out = format!("{}->{} ", m.from, m.to);
    match MessageType::try_from(m.msg_type) {
        Ok(t) => out.push_str(t.as_str_name()),
        Err(_) => {
            let _ = write!(out, "MessageType({})", m.msg_type);
        }
    }
    let _ = write!(out, " Term:{} Log:{}/{}", m.term, m.log_term, m.index);
    if m.reject {
        let _ = write!(out, " Rejected (Hint: {})", m.reject_hint);
    }
    if m.commit != 0 {
        let _ = write!(out, " Commit:{}", m.commit);
    }
    if m.commit_term != 0 {
        let _ = write!(out, " CommitTerm:{}", m.commit_term);
    }
    if !m.entries.is_empty() {
        let entries: Vec<String> = m.entries.iter().map(describe_entry).collect();
        let _ = write!(out, " Entries:[{}]", entries.join(", "));
    }
    // A snapshot field that is set but empty carries nothing worth a transcript line.
    if let Some(s) = m.snapshot.as_deref().filter(|s| **s != Snapshot::default()) {
        let _ = write!(out, " Snapshot: {}", describe_snapshot(s));
    }
    if m.request_snapshot != 0 {
        let _ = write!(out, " RequestSnapshot:{}", m.request_snapshot);
    }
    if m.priority != 0 {
        let _ = write!(out, " Priority:{}", m.priority);
    }
    if m.deprecated_priority != 0 {
        let _ = write!(out, " DeprecatedPriority:{}", m.deprecated_priority);
    }
    if !m.context.is_empty() {
        let _ = write!(out, " Context:{}", payload(&m.context));
    }
    out
}

/// Describes a hard state, e.g. `Term:1 Vote:2 Commit:3`.
pub fn describe_hard_state(hs: &HardState) -> String {
    format!("Term:{} Vote:{} Commit:{}", hs.term, hs.vote, hs.commit)
}

/// Describes a conf state, e.g.
/// `Voters:[1 2 3] VotersOutgoing:[] Learners:[4] LearnersNext:[] AutoLeave:false`.
/// Ids are shown in stored order, not sorted, so the description reflects the value exactly.
pub fn describe_conf_state(cs: &ConfState) -> String {
    format!(
        "Voters:[{}] VotersOutgoing:[{}] Learners:[{}] LearnersNext:[{}] AutoLeave:{}",
        ids(&cs.voters),
        ids(&cs.voters_outgoing),
        ids(&cs.learners),
        ids(&cs.learners_next),
        cs.auto_leave
    )
}

/// Describes a snapshot's metadata, e.g. `Index:10 Term:2 ConfState:Voters:[1 2 3] ...`; missing
/// metadata reads as zeros and an empty conf state.
pub fn describe_snapshot(s: &Snapshot) -> String {
    let meta = s.metadata.as_ref();
    let (index, term) = meta.map_or((0, 0), |m| (m.index, m.term));
    let cs = match meta.and_then(|m| m.conf_state.as_ref()) {
        Some(cs) => describe_conf_state(cs),
        None => describe_conf_state(&ConfState::default()),
    };
    format!("Index:{index} Term:{term} ConfState:{cs}")
}

fn ids(ids: &[u64]) -> String {
    let strs: Vec<String> = ids.iter().map(u64::to_string).collect();
    strs.join(" ")
}

/// A payload as quoted text when it is printable UTF-8, else as hex; cut when long.
fn payload(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(text) if !text.chars().any(char::is_control) => {
            let mut cut = text.len().min(MAX_TEXT);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            // `{:?}` escapes quotes and backslashes, so the quoted form is unambiguous.
            with_total(format!("{:?}", &text[..cut]), cut, data.len())
        }
        _ => {
            let shown = &data[..data.len().min(MAX_HEX)];
            let mut hex = String::from("0x");
            for b in shown {
                let _ = write!(hex, "{b:02x}");
            }
            with_total(hex, shown.len(), data.len())
        }
    }
}

fn with_total(mut shown: String, shown_len: usize, total: usize) -> String {
    if shown_len < total {
        let _ = write!(shown, "...({total}B)");
    }
    shown
}
