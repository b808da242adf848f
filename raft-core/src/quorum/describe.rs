//! Human-readable forms of quorum configurations, for logs, debugging and transcript tests.
//!
//! - `Display`: a [`MajorityConfig`] prints as `(1 2 3)`; a [`JointConfig`] as
//!   `(1 2 3)&&(1 2 4)`, or just its incoming half when it is not joint.
//! - `describe`: a table with one row per voter that shows what each voter acknowledged and which
//!   index a quorum has committed.
//!
//! [`MajorityConfig::describe`] explains how to read a table. The output is deterministic, every
//! line (including the last) ends with `\n`, and no line ends with whitespace.

use core::fmt::{self, Write};

use super::{AckedIndexer, JointConfig, MajorityConfig};

impl fmt::Display for MajorityConfig {
    /// The voter ids in ascending order, space-separated in parentheses: `(1 2 3)`, `()` if empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('(')?;
        for (i, id) in self.ids().iter().enumerate() {
            if i > 0 {
                f.write_char(' ')?;
            }
            write!(f, "{id}")?;
        }
        f.write_char(')')
    }
}

impl fmt::Display for JointConfig {
    /// `incoming&&outgoing`, e.g. `(1 2 3)&&(1 2 4)`; only the incoming half when not joint.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.incoming)?;
        if self.is_joint() {
            write!(f, "&&{}", self.outgoing)?;
        }
        Ok(())
    }
}

/// One voter of the table.
struct Row {
    id: u64,
    /// What the voter acknowledged; `None` when unknown.
    acked: Option<u64>,
}

impl Row {
    /// The index the voter counts as having acknowledged: an unknown voter counts as 0.
    fn index(&self) -> u64 {
        self.acked.unwrap_or(0)
    }
}

/// The rows for `ids`, highest acknowledged index first; an unknown index after a known 0; ties
/// by id.
fn sorted_rows(ids: impl IntoIterator<Item = u64>, acked: &impl AckedIndexer) -> Vec<Row> {
    let mut rows: Vec<Row> = ids
        .into_iter()
        .map(|id| Row {
            id,
            acked: acked.acked_index(id),
        })
        .collect();
    rows.sort_by(|a, b| {
        b.index()
            .cmp(&a.index())
            .then(a.acked.is_none().cmp(&b.acked.is_none()))
            .then(a.id.cmp(&b.id))
    });
    rows
}

/// How many voters of `config` make a quorum: `n/2 + 1`, or 0 for an empty configuration.
fn quorum(config: &MajorityConfig) -> usize {
    if config.is_empty() {
        0
    } else {
        config.len() / 2 + 1
    }
}

/// One half's column of the table: a bar per member row, and which row holds its committed index.
struct Column {
    /// The bar of each row, `None` for rows of voters outside this configuration.
    bars: Vec<Option<String>>,
    /// The row holding the committed index, if the configuration has voters.
    committed_row: Option<usize>,
    /// The width of a bar: one slot per voter plus the quorum line.
    width: usize,
}

impl Column {
    /// Lays out the column of `config` over `rows`, which must be sorted as by [`sorted_rows`].
    fn new(config: &MajorityConfig, rows: &[Row]) -> Column {
        let n = config.len();
        let q = quorum(config);
        let mut committed_row = None;
        let bars = rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                if !config.contains(row.id) {
                    return None;
                }
                let count = rows
                    .iter()
                    .filter(|other| config.contains(other.id) && other.index() >= row.index())
                    .count();
                if count >= q && committed_row.is_none() {
                    committed_row = Some(i);
                }
                let mut bar = String::with_capacity(n + 1);
                for slot in 0..n {
                    if slot == q {
                        bar.push('|');
                    }
                    bar.push(if slot < count { 'x' } else { '.' });
                }
                if q == n {
                    bar.push('|');
                }
                Some(bar)
            })
            .collect();
        Column {
            bars,
            committed_row,
            width: n + 1,
        }
    }
}

/// `q of (ids)` for the heading line.
fn quorum_of(config: &MajorityConfig) -> String {
    format!("{} of {}", quorum(config), config)
}

/// Writes the rows of the table: the non-empty `columns`, the acknowledged index and the id. With
/// `labelled`, the committed marker names the columns whose committed index the row holds.
fn write_rows(out: &mut String, rows: &[Row], columns: &[(&str, Column)], labelled: bool) {
    let shown: Vec<String> = rows
        .iter()
        .map(|row| match row.acked {
            Some(index) => index.to_string(),
            None => "?".to_string(),
        })
        .collect();
    let index_width = shown.iter().map(String::len).max().unwrap_or(1);
    for (i, (row, index)) in rows.iter().zip(&shown).enumerate() {
        for (_, column) in columns {
            match column.bars.get(i) {
                Some(Some(bar)) => out.push_str(bar),
                _ => out.extend(core::iter::repeat_n(' ', column.width)),
            }
            out.push(' ');
        }
        let _ = write!(out, " {index:>index_width$} (id={})", row.id);
        let marked: Vec<&str> = columns
            .iter()
            .filter(|(_, column)| column.committed_row == Some(i))
            .map(|(name, _)| *name)
            .collect();
        if !marked.is_empty() {
            out.push_str(" <- committed");
            if labelled {
                let _ = write!(out, " ({})", marked.join(", "));
            }
        }
        out.push('\n');
    }
}

impl MajorityConfig {
    /// A table of what each voter acknowledged, with the index a majority has committed marked.
    ///
    /// The first line names the configuration and how many of its voters make a quorum
    /// (`n/2 + 1`). Then one row per voter, sorted by acknowledged index, highest first; a voter
    /// whose index is unknown is shown as `?`, counts as having acknowledged 0 and comes after a
    /// voter that acknowledged 0; equal indexes are ordered by id. The bar on the left has one
    /// slot per voter: the number of `x` is how many voters acknowledged at least the index of the
    /// row, and the `|` stands after the quorum-th slot. So the first row whose `x` reach the `|`
    /// holds the committed index; it is marked `<- committed`. An empty configuration (which
    /// commits every index, see [`MajorityConfig::committed_index`]) prints only its first line.
    ///
    /// Every line, including the last, ends with `\n`; no line ends with whitespace. Meant for logs
    /// and tests: it allocates, and its cost grows with the square of the number of voters.
    ///
    /// ```
    /// use raft_core::quorum::{AckedIndexer, MajorityConfig};
    ///
    /// struct Acked;
    /// impl AckedIndexer for Acked {
    ///     fn acked_index(&self, id: u64) -> Option<u64> {
    ///         [(1, 10), (3, 5)].iter().find(|(v, _)| *v == id).map(|(_, idx)| *idx)
    ///     }
    /// }
    ///
    /// let table = MajorityConfig::new([1, 2, 3]).describe(&Acked);
    /// assert_eq!(
    ///     table,
    ///     "quorum 2 of (1 2 3)\n\
    ///      x.|.  10 (id=1)\n\
    ///      xx|.   5 (id=3) <- committed\n\
    ///      xx|x   ? (id=2)\n"
    /// );
    /// ```
    pub fn describe(&self, acked: &impl AckedIndexer) -> String {
        let mut out = format!("quorum {}", quorum_of(self));
        if self.is_empty() {
            out.push_str(": no voters, every index counts as committed\n");
            return out;
        }
        out.push('\n');
        let rows = sorted_rows(self.ids().iter().copied(), acked);
        let column = Column::new(self, &rows);
        write_rows(&mut out, &rows, &[("", column)], false);
        out
    }
}

impl JointConfig {
    /// A table of what each voter of either half acknowledged, with the committed index of each
    /// half marked.
    ///
    /// When the configuration is not joint this is the incoming half's
    /// [`MajorityConfig::describe`]. Otherwise the first line gives the quorum of each half,
    /// incoming first, and the rows cover the voters of both halves, sorted as in
    /// [`MajorityConfig::describe`]. Each non-empty half has its own bar column, incoming first:
    /// a voter has a bar only under the halves it belongs to (blank otherwise), and the bar counts
    /// that half's voters only. A row is marked with the halves whose committed index it holds,
    /// e.g. `<- committed (incoming, outgoing)`; the joint committed index is the lower of the two.
    ///
    /// ```text
    /// quorum 2 of (1 2 3) && 2 of (1 2 4)
    /// x.|. x.|.  10 (id=1)
    /// xx|. xx|.   8 (id=2) <- committed (incoming, outgoing)
    ///      xx|x   6 (id=4)
    /// xx|x        ? (id=3)
    /// ```
    pub fn describe(&self, acked: &impl AckedIndexer) -> String {
        if !self.is_joint() {
            return self.incoming.describe(acked);
        }
        let mut out = format!(
            "quorum {} && {}\n",
            quorum_of(&self.incoming),
            quorum_of(&self.outgoing)
        );
        let rows = sorted_rows(self.ids(), acked);
        let mut columns = Vec::with_capacity(2);
        for (name, half) in [("incoming", &self.incoming), ("outgoing", &self.outgoing)] {
            if !half.is_empty() {
                columns.push((name, Column::new(half, &rows)));
            }
        }
        write_rows(&mut out, &rows, &columns, true);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Acknowledged indexes as (voter, index) pairs; voters not listed are unknown.
    struct Acked(Vec<(u64, u64)>);

    impl AckedIndexer for Acked {
        fn acked_index(&self, id: u64) -> Option<u64> {
            self.0.iter().find(|(v, _)| *v == id).map(|(_, idx)| *idx)
        }
    }

    fn joint(incoming: &[u64], outgoing: &[u64]) -> JointConfig {
        JointConfig {
            incoming: MajorityConfig::new(incoming.iter().copied()),
            outgoing: MajorityConfig::new(outgoing.iter().copied()),
        }
    }

    #[test]
    fn display_lists_voters_sorted_in_parentheses() {
        assert_eq!(MajorityConfig::new([3, 1, 2]).to_string(), "(1 2 3)");
        assert_eq!(MajorityConfig::new([7]).to_string(), "(7)");
        assert_eq!(MajorityConfig::default().to_string(), "()");
    }

    #[test]
    fn display_of_joint_shows_outgoing_only_when_joint() {
        assert_eq!(
            joint(&[1, 2, 3], &[1, 2, 4]).to_string(),
            "(1 2 3)&&(1 2 4)"
        );
        assert_eq!(JointConfig::new([2, 1]).to_string(), "(1 2)");
        assert_eq!(JointConfig::default().to_string(), "()");
        assert_eq!(joint(&[], &[5]).to_string(), "()&&(5)");
    }

    #[test]
    fn describe_marks_the_row_holding_the_committed_index() {
        // 5 voters, quorum 3: sorted 9, 8, 7, 7, ? -> committed 7, the first row with 3 marks.
        let config = MajorityConfig::new([1, 2, 3, 4, 5]);
        let acked = Acked(vec![(1, 7), (2, 9), (3, 7), (4, 8)]);
        assert_eq!(config.committed_index(&acked), 7);
        assert_eq!(
            config.describe(&acked),
            "quorum 3 of (1 2 3 4 5)\n\
             x..|..  9 (id=2)\n\
             xx.|..  8 (id=4)\n\
             xxx|x.  7 (id=1) <- committed\n\
             xxx|x.  7 (id=3)\n\
             xxx|xx  ? (id=5)\n"
        );
    }

    #[test]
    fn describe_puts_unknown_after_known_zero_and_counts_both_as_zero() {
        let config = MajorityConfig::new([1, 2]);
        let acked = Acked(vec![(2, 0)]);
        assert_eq!(
            config.describe(&acked),
            "quorum 2 of (1 2)\n\
             xx|  0 (id=2) <- committed\n\
             xx|  ? (id=1)\n",
            "a known 0 sorts before an unknown voter; both count as having acknowledged 0"
        );
    }

    #[test]
    fn describe_of_an_empty_config_says_every_index_is_committed() {
        assert_eq!(
            MajorityConfig::default().describe(&Acked(vec![(1, 3)])),
            "quorum 0 of (): no voters, every index counts as committed\n"
        );
        assert_eq!(
            JointConfig::default().describe(&Acked(vec![])),
            MajorityConfig::default().describe(&Acked(vec![]))
        );
    }

    #[test]
    fn describe_of_a_non_joint_config_is_the_incoming_table() {
        let acked = Acked(vec![(1, 4), (2, 6)]);
        assert_eq!(
            JointConfig::new([1, 2, 3]).describe(&acked),
            MajorityConfig::new([1, 2, 3]).describe(&acked)
        );
    }

    #[test]
    fn describe_of_a_joint_config_shows_each_half_and_its_committed_row() {
        // incoming (1 2 3) commits 8 (10, 8, ?); outgoing (1 2 4) commits 8 (10, 8, 6).
        let config = joint(&[1, 2, 3], &[1, 2, 4]);
        let acked = Acked(vec![(1, 10), (2, 8), (4, 6)]);
        assert_eq!(
            config.describe(&acked),
            "quorum 2 of (1 2 3) && 2 of (1 2 4)\n\
             x.|. x.|.  10 (id=1)\n\
             xx|. xx|.   8 (id=2) <- committed (incoming, outgoing)\n\
             \x20    xx|x   6 (id=4)\n\
             xx|x        ? (id=3)\n"
        );
    }

    #[test]
    fn describe_of_a_joint_config_with_empty_incoming_shows_only_outgoing() {
        let config = joint(&[], &[1, 2]);
        let acked = Acked(vec![(1, 4), (2, 6)]);
        assert_eq!(
            config.describe(&acked),
            "quorum 0 of () && 2 of (1 2)\n\
             x.|  6 (id=2)\n\
             xx|  4 (id=1) <- committed (outgoing)\n"
        );
    }

    #[test]
    fn describe_does_not_depend_on_how_the_config_was_built() {
        let acked = Acked(vec![(1, 5), (2, 5), (3, 5), (4, 2)]);
        let a = joint(&[1, 2, 3], &[2, 3, 4]);
        let b = joint(&[3, 2, 1, 1], &[4, 3, 2]);
        assert_eq!(a.describe(&acked), b.describe(&acked));
    }

    #[test]
    fn describe_never_ends_a_line_with_whitespace() {
        let config = joint(&[1, 2, 3, 4], &[3, 4, 5, 6, 7]);
        let acked = Acked(vec![(1, 3), (3, 100), (6, 0), (7, 12)]);
        let table = config.describe(&acked);
        assert!(table.ends_with('\n'), "{table}");
        for line in table.lines() {
            assert_eq!(line, line.trim_end(), "trailing whitespace in\n{table}");
        }
    }
}
