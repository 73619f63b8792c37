//! The exactly-once sink's two-phase commit over Kafka transactions, as pure decisions.
//!
//! Each sink subtask writes each checkpoint's records in a transaction of its own, under a
//! transactional id used for that transaction only: `<prefix>-<subtask>-<n>`, `n` counting
//! up across the job's life (checkpointed). A new producer for an id bumps its epoch, so
//! the triple (id, producer id, epoch) names exactly one transaction, and a checkpoint
//! records that triple for every transaction it pre-committed ([`Prepared`]).
//!
//! Restoring, a subtask ([`recovery`]) commits again every transaction the checkpoint
//! prepared — its process may have died after `_metadata` and before the commit — which
//! the broker treats as a retry when it was committed already; and it fences every later id
//! a failed attempt may have left open ([`is_open`]), so that no stale transaction holds
//! back `read_committed` readers until it times out.

use serde::{Deserialize, Serialize};

use super::protocol::Described;

/// A transaction pre-committed at a checkpoint's barrier, to commit once it completes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Prepared {
    pub checkpoint: u64,
    pub transactional_id: String,
    pub producer_id: i64,
    pub epoch: i16,
}

/// What a sink subtask checkpoints (encoding version 1, JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SinkTransactions {
    /// `<prefix>-<subtask>-`: the ids of this subtask's transactions start so.
    pub prefix: String,
    /// The number of the next transactional id.
    pub next: u64,
    /// Transactions pre-committed and not yet known to be committed, oldest first.
    pub pending: Vec<Prepared>,
}

/// The transactional id number `n` of a subtask with id prefix `prefix`.
pub(super) fn transactional_id(prefix: &str, n: u64) -> String {
    format!("{prefix}{n}")
}

/// `<prefix>-<subtask>-`
pub(super) fn subtask_prefix(prefix: &str, subtask: u32) -> String {
    format!("{prefix}-{subtask}-")
}

/// What a restore does with a transaction its checkpoint prepared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Recovery {
    /// Still open under the checkpoint's producer and epoch: commit it.
    Commit,
    /// Committed already (or committing): nothing to do.
    Committed,
    /// The broker no longer holds it to commit: its records are gone. Why.
    Lost(String),
}

/// What to do with `prepared`, given what its coordinator says of its id now (`None`: the
/// id is unknown to the cluster).
pub(super) fn recovery(prepared: &Prepared, now: Option<&Described>) -> Recovery {
    let Some(now) = now else {
        return Recovery::Lost(
            "the cluster does not know its transactional id: it expired \
             (transactional.id.expiration.ms) after being committed, or was never written"
                .into(),
        );
    };
    if now.producer_id != prepared.producer_id || now.epoch != prepared.epoch {
        return Recovery::Lost(format!(
            "the id now belongs to producer {} epoch {} (the checkpoint prepared it as \
             producer {} epoch {}): the broker aborted it, most likely after \
             transaction.timeout.ms, and a newer producer took the id",
            now.producer_id, now.epoch, prepared.producer_id, prepared.epoch
        ));
    }
    match now.state.as_str() {
        "Ongoing" => Recovery::Commit,
        "PrepareCommit" | "CompleteCommit" => Recovery::Committed,
        state => Recovery::Lost(format!("the broker has it in state {state}, not committed")),
    }
}

/// Whether a transaction left by an attempt after the restored checkpoint is open, and so
/// must be fenced (aborted).
pub(super) fn is_open(now: &Described) -> bool {
    matches!(
        now.state.as_str(),
        "Ongoing" | "PrepareAbort" | "PrepareEpochFence"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared() -> Prepared {
        Prepared {
            checkpoint: 7,
            transactional_id: "p-0-3".into(),
            producer_id: 1000,
            epoch: 2,
        }
    }

    fn described(state: &str, producer_id: i64, epoch: i16) -> Described {
        Described {
            state: state.into(),
            producer_id,
            epoch,
        }
    }

    #[test]
    fn an_open_transaction_of_the_same_producer_is_committed() {
        assert_eq!(
            recovery(&prepared(), Some(&described("Ongoing", 1000, 2))),
            Recovery::Commit
        );
        for state in ["CompleteCommit", "PrepareCommit"] {
            assert_eq!(
                recovery(&prepared(), Some(&described(state, 1000, 2))),
                Recovery::Committed
            );
        }
    }

    #[test]
    fn an_aborted_or_taken_over_transaction_is_lost_and_says_why() {
        let Recovery::Lost(why) = recovery(&prepared(), Some(&described("Ongoing", 1000, 3)))
        else {
            panic!("a newer epoch is another transaction");
        };
        assert!(why.contains("transaction.timeout.ms"), "{why}");
        assert!(matches!(
            recovery(&prepared(), Some(&described("CompleteAbort", 1000, 2))),
            Recovery::Lost(_)
        ));
        assert!(matches!(
            recovery(&prepared(), Some(&described("Ongoing", 1001, 2))),
            Recovery::Lost(_)
        ));
        assert!(matches!(recovery(&prepared(), None), Recovery::Lost(_)));
    }

    #[test]
    fn only_open_transactions_are_fenced() {
        assert!(is_open(&described("Ongoing", 1, 0)));
        assert!(!is_open(&described("CompleteCommit", 1, 0)));
        assert!(!is_open(&described("Empty", 1, 0)));
    }

    #[test]
    fn ids_name_the_subtask_and_count() {
        let prefix = subtask_prefix("cairn-job-out", 2);
        assert_eq!(transactional_id(&prefix, 5), "cairn-job-out-2-5");
    }
}
