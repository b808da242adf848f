//! [`Gate`]: whether a node is paused, with a pause that waits for the work under way.

use std::sync::{RwLock, RwLockReadGuard};

/// Whether a node is paused. Each piece of work on the node (handling a Ready, a tick, stepping a
/// message, a proposal) runs while holding what [`Gate::enter`] returns; [`Gate::pause`] waits
/// until the pieces under way are done, so once it returns nothing runs until [`Gate::resume`].
#[derive(Debug, Default)]
pub(crate) struct Gate {
    paused: RwLock<bool>,
}

/// Held while a piece of work runs on an unpaused node.
pub(crate) type Open<'a> = RwLockReadGuard<'a, bool>;

impl Gate {
    /// `None` if the node is paused; otherwise a guard that holds off a pause while it lives.
    /// Never take a second one on a thread that holds one: a waiting pause would block it.
    pub(crate) fn enter(&self) -> Option<Open<'_>> {
        // The flag is a plain bool, whole after any panic: poisoning carries no meaning here.
        let open = self.paused.read().unwrap_or_else(|e| e.into_inner());
        (!*open).then_some(open)
    }

    /// Whether the node is paused now.
    pub(crate) fn is_paused(&self) -> bool {
        *self.paused.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Pauses the node once the work under way is done.
    pub(crate) fn pause(&self) {
        *self.paused.write().unwrap_or_else(|e| e.into_inner()) = true;
    }

    /// Lets work run again.
    pub(crate) fn resume(&self) {
        *self.paused.write().unwrap_or_else(|e| e.into_inner()) = false;
    }
}
