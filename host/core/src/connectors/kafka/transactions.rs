//! The exactly-once sink's two-phase commit over Kafka transactions, as pure decisions.
//!
//! Each sink subtask writes each checkpoint's records in a transaction of its own, under
//! transactional id `<prefix>-<subtask>-<n>`, `n` the smallest number no pending
//! transaction of the subtask uses: a small pool of ids, reused as transactions commit, so
//! the broker keeps state for a few ids per subtask, not one per checkpoint. A new producer
//! for an id bumps its epoch, so the triple (id, producer id, epoch) names exactly one
//! transaction, and a checkpoint records that triple for every transaction it
//! pre-committed ([`Prepared`]).
//!
//! Restoring, a subtask ([`recovery`]) commits again every transaction the checkpoint
//! prepared — its process may have died after `_metadata` and before the commit — which
//! the broker treats as a retry when it was committed already. Then, restoring or not, it
//! fences every transaction still open under the ids it answers for ([`answers_for`]): those
//! of failed attempts, so that no stale transaction holds back `read_committed` readers
//! until it times out.

use serde::{Deserialize, Serialize};

use kafka_protocol::error::ResponseError;

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
    /// Transactions pre-committed and not yet known to be committed, oldest first.
    pub pending: Vec<Prepared>,
}

impl SinkTransactions {
    /// The id for a new transaction: the lowest-numbered one no pending transaction holds.
    pub(super) fn free_id(&self) -> String {
        (0u64..)
            .map(|n| transactional_id(&self.prefix, n))
            .find(|id| !self.pending.iter().any(|p| p.transactional_id == *id))
            .expect("fewer pending transactions than numbers")
    }
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
    /// Still open under the checkpoint's producer and epoch: commit it (an error ending it
    /// is [`Lost`](Recovery::Lost) only when the broker says the producer or its
    /// transaction is no longer that one: [`is_fenced`]).
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

/// Whether a broker error ending a transaction means it is not the restored one any more
/// (its producer fenced, its epoch stale, its state moved on); any other error may pass,
/// and the restore must fail and be retried rather than give the transaction up.
pub(super) fn is_fenced(error: &ResponseError) -> bool {
    matches!(
        error,
        ResponseError::ProducerFenced
            | ResponseError::InvalidProducerEpoch
            | ResponseError::InvalidTxnState
            | ResponseError::InvalidProducerIdMapping
    )
}

/// Whether subtask `index` of `parallelism` answers for transactional id `id` of a sink with
/// id prefix `prefix`: ids `<prefix>-<j>-<n>` of every subtask `j` it would take over in a
/// restore (`j mod parallelism = index`), whatever parallelism earlier attempts ran at.
pub(super) fn answers_for(id: &str, prefix: &str, index: u32, parallelism: u32) -> bool {
    let subtask = id
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.split_once('-'))
        .filter(|(_, n)| n.parse::<u64>().is_ok())
        .and_then(|(j, _)| j.parse::<u32>().ok());
    subtask.is_some_and(|j| j % parallelism.max(1) == index)
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
    fn a_subtask_answers_for_the_ids_of_the_subtasks_it_takes_over() {
        assert!(answers_for("job-out-0-7", "job-out", 0, 2));
        assert!(answers_for("job-out-2-0", "job-out", 0, 2));
        assert!(!answers_for("job-out-1-7", "job-out", 0, 2));
        assert!(answers_for("job-out-5-1", "job-out", 2, 3));
        // Another sink's ids, or not ours at all.
        assert!(!answers_for("job-out-x-0-1", "job-out", 0, 1));
        assert!(!answers_for("job-outer-0-1", "job-out", 0, 1));
        assert!(!answers_for("job-out-0-", "job-out", 0, 1));
    }

    #[test]
    fn new_transactions_take_the_lowest_id_no_pending_one_holds() {
        let mut state = SinkTransactions {
            prefix: subtask_prefix("p", 0),
            pending: Vec::new(),
        };
        assert_eq!(state.free_id(), "p-0-0");
        for (checkpoint, n) in [(1, 0), (2, 2)] {
            state.pending.push(Prepared {
                checkpoint,
                transactional_id: transactional_id(&state.prefix, n),
                producer_id: 1,
                epoch: 0,
            });
        }
        assert_eq!(state.free_id(), "p-0-1");
        state.pending.remove(0);
        assert_eq!(state.free_id(), "p-0-0");
    }

    #[test]
    fn only_a_broker_saying_the_transaction_moved_on_gives_it_up() {
        assert!(is_fenced(&ResponseError::ProducerFenced));
        assert!(is_fenced(&ResponseError::InvalidTxnState));
        assert!(!is_fenced(&ResponseError::CoordinatorNotAvailable));
        assert!(!is_fenced(&ResponseError::RequestTimedOut));
    }

    #[test]
    fn ids_name_the_subtask_and_count() {
        let prefix = subtask_prefix("cairn-job-out", 2);
        assert_eq!(transactional_id(&prefix, 5), "cairn-job-out-2-5");
    }
}
