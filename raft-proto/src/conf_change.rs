//! Membership changes: one trait over the v1 and v2 forms, the joint-consensus predicates of a
//! `ConfChangeV2`, and the compact text form ("v1 l2 r3") used by tests and transcripts.

use std::borrow::Cow;

use bytes::Bytes;
use prost::Message as _;

use crate::eraftpb::{
    ConfChange, ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, EntryType,
};

/// A membership change in either wire form, so the core can take both through one entry point.
///
/// A v1 `ConfChange` is the same thing as a `ConfChangeV2` with transition `Auto` and a single change;
/// the core works on the v2 form and keeps the v1 form only to write it back into the log unchanged.
pub trait ConfChangeI {
    /// This change in the v2 form, borrowed when it already is one.
    fn as_v2(&self) -> Cow<'_, ConfChangeV2>;
    /// This change in the v2 form, by value.
    fn into_v2(self) -> ConfChangeV2;
    /// The v1 form, if this change is one.
    fn as_v1(&self) -> Option<&ConfChange>;
    /// The type of the log entry that carries this change.
    fn entry_type(&self) -> EntryType;
    /// The protobuf encoding of this change in its own form (v1 or v2), i.e. an entry's `data`.
    fn encode_to_bytes(&self) -> Bytes;
}

impl ConfChangeI for ConfChange {
    fn as_v2(&self) -> Cow<'_, ConfChangeV2> {
        Cow::Owned(v1_to_v2(
            self.change_type,
            self.node_id,
            self.context.clone(),
        ))
    }

    fn into_v2(self) -> ConfChangeV2 {
        v1_to_v2(self.change_type, self.node_id, self.context)
    }

    fn as_v1(&self) -> Option<&ConfChange> {
        Some(self)
    }

    fn entry_type(&self) -> EntryType {
        EntryType::EntryConfChange
    }

    fn encode_to_bytes(&self) -> Bytes {
        Bytes::from(self.encode_to_vec())
    }
}

impl ConfChangeI for ConfChangeV2 {
    fn as_v2(&self) -> Cow<'_, ConfChangeV2> {
        Cow::Borrowed(self)
    }

    fn into_v2(self) -> ConfChangeV2 {
        self
    }

    fn as_v1(&self) -> Option<&ConfChange> {
        None
    }

    fn entry_type(&self) -> EntryType {
        EntryType::EntryConfChangeV2
    }

    fn encode_to_bytes(&self) -> Bytes {
        Bytes::from(self.encode_to_vec())
    }
}

/// The v1 -> v2 mapping shared by `as_v2` and `into_v2`. The raw `change_type` is copied as is (even an
/// unknown value) so that validation in the core sees exactly what was proposed; `id` has no v2 field.
fn v1_to_v2(change_type: i32, node_id: u64, context: Bytes) -> ConfChangeV2 {
    ConfChangeV2 {
        transition: ConfChangeTransition::Auto as i32,
        changes: vec![ConfChangeSingle {
            change_type,
            node_id,
        }],
        context,
    }
}

impl ConfChangeV2 {
    /// Whether this change enters a joint configuration and, if so, whether Raft leaves it on its own.
    ///
    /// Returns `Some(auto_leave)` when the change uses joint consensus: it has more than one change, or
    /// its transition is not `Auto`. `auto_leave` is false only for `Explicit`, where the application
    /// proposes the leave itself. A single change with `Auto` uses the simple protocol: `None`.
    ///
    /// An out-of-range transition value is treated as joint with auto-leave rather than a panic: joint
    /// consensus is safe for any change set, and the core is expected to reject such input anyway.
    pub fn enter_joint(&self) -> Option<bool> {
        let auto = ConfChangeTransition::Auto as i32;
        if self.transition == auto && self.changes.len() <= 1 {
            return None;
        }
        Some(self.transition != ConfChangeTransition::Explicit as i32)
    }

    /// Whether this change leaves a joint configuration: it is the zero value apart from `context`
    /// (no changes, transition `Auto`), which is how a leave is proposed.
    pub fn leave_joint(&self) -> bool {
        self.transition == ConfChangeTransition::Auto as i32 && self.changes.is_empty()
    }
}

/// A single change of `change_type` for `node_id`.
pub fn new_conf_change_single(node_id: u64, change_type: ConfChangeType) -> ConfChangeSingle {
    ConfChangeSingle {
        change_type: change_type as i32,
        node_id,
    }
}

/// Parses the compact text form: whitespace-separated tokens `vN` (add voter), `lN` (add learner) and
/// `rN` (remove), where `N` is a decimal node id. An empty or blank string is an empty list.
///
/// `uN` (etcd's "update node") is rejected because the wire format has no such change type. Node id 0 is
/// accepted here: this is syntax only, and the core's membership checks decide what is valid.
pub fn conf_changes_from_string(s: &str) -> Result<Vec<ConfChangeSingle>, String> {
    s.split_whitespace().map(parse_token).collect()
}

fn parse_token(tok: &str) -> Result<ConfChangeSingle, String> {
    let mut chars = tok.chars();
    let change_type = match chars.next() {
        Some('v') => ConfChangeType::AddNode,
        Some('l') => ConfChangeType::AddLearnerNode,
        Some('r') => ConfChangeType::RemoveNode,
        Some('u') => {
            return Err(format!(
                "conf change token {tok:?}: 'u' (update node) is not supported by this wire format"
            ))
        }
        _ => {
            return Err(format!(
                "conf change token {tok:?}: expected v<id>, l<id> or r<id>"
            ))
        }
    };
    let id = chars.as_str();
    // `u64::from_str` would also take a leading '+'; insist on plain digits so the form stays canonical.
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "conf change token {tok:?}: node id must be decimal digits"
        ));
    }
    let node_id = id
        .parse::<u64>()
        .map_err(|e| format!("conf change token {tok:?}: bad node id: {e}"))?;
    Ok(new_conf_change_single(node_id, change_type))
}

/// Formats changes in the compact text form, one space between tokens (the inverse of
/// [`conf_changes_from_string`]). A change type outside the enum is written `?<type>:<id>`, which the
/// parser rejects: it cannot be represented, but it must not be hidden either.
pub fn conf_changes_to_string(changes: &[ConfChangeSingle]) -> String {
    let mut out = String::new();
    for (i, cc) in changes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let token = match ConfChangeType::try_from(cc.change_type) {
            Ok(ConfChangeType::AddNode) => format!("v{}", cc.node_id),
            Ok(ConfChangeType::AddLearnerNode) => format!("l{}", cc.node_id),
            Ok(ConfChangeType::RemoveNode) => format!("r{}", cc.node_id),
            Err(_) => format!("?{}:{}", cc.change_type, cc.node_id),
        };
        out.push_str(&token);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(transition: ConfChangeTransition, changes: &str) -> ConfChangeV2 {
        ConfChangeV2 {
            transition: transition as i32,
            changes: conf_changes_from_string(changes).unwrap(),
            context: Bytes::new(),
        }
    }

    #[test]
    fn enter_joint_follows_transition_and_size() {
        use ConfChangeTransition::*;
        assert_eq!(v2(Auto, "v1").enter_joint(), None);
        assert_eq!(v2(Auto, "").enter_joint(), None);
        assert_eq!(v2(Auto, "v1 v2").enter_joint(), Some(true));
        assert_eq!(v2(Implicit, "v1").enter_joint(), Some(true));
        assert_eq!(v2(Explicit, "v1").enter_joint(), Some(false));
        assert_eq!(v2(Explicit, "v1 r2").enter_joint(), Some(false));
        // Explicit/Implicit with no changes still enters a (trivial) joint config, as in etcd.
        assert_eq!(v2(Explicit, "").enter_joint(), Some(false));
        let mut odd = v2(Auto, "v1");
        odd.transition = 9;
        assert_eq!(odd.enter_joint(), Some(true));
    }

    #[test]
    fn leave_joint_ignores_only_context() {
        use ConfChangeTransition::*;
        let mut leave = v2(Auto, "");
        assert!(leave.leave_joint());
        leave.context = Bytes::from_static(b"ctx");
        assert!(leave.leave_joint());
        assert!(!v2(Auto, "v1").leave_joint());
        assert!(!v2(Explicit, "").leave_joint());
        assert!(!v2(Implicit, "").leave_joint());
    }
}
