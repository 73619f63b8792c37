//! Checkpoint statistics and configuration, as Flink reports them.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::{ApiError, Reply, error, flink_id, job};
use crate::control::JobControl;
use cairn_api::params::{CheckpointId, JobId, VertexId};
use cairn_api::responses::{JobNotFound, Unauthorized};
use cairn_api::{
    CheckpointConfigInfo, CheckpointCounts, CheckpointDetails, CheckpointMode, CheckpointSummary,
    CheckpointType, CheckpointingStatistics, CompletedCheckpointStatistics, ErrorBody,
    Externalization, FailedCheckpointStatistics, LatestCheckpoints, MinMaxAvg,
    RestoredCheckpointStatistics, SubtaskAlignment, SubtaskCheckpointDurations,
    SubtaskCheckpointStatistics, TaskCheckpointStatistics,
    TaskCheckpointStatisticsWithSubtaskDetails,
};
use cairn_core::config::{CheckpointingMode, Retention};
use cairn_core::runtime::{CompletedCheckpoint, SubtaskCheckpoint, Summary};

/// Checkpoint statistics
///
/// Mirrors Flink's `GET /jobs/:jobid/checkpoints`. Covers the checkpoints and savepoints of
/// every attempt of the job (kept across restarts): completed, failed and in-progress
/// counts, a summary over every completed one, the latest completed checkpoint, savepoint
/// and failure, the latest `web.checkpoints.history` (default 10) completed, and how many
/// attempts restored from a checkpoint or savepoint (`counts.restored`, `latest.restored`).
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/checkpoints",
    tag = "checkpoints",
    operation_id = "checkpointStatistics",
    params(JobId),
    responses(
        (status = 200, description = "Counts, summary, latest and the latest completed (newest first).", body = CheckpointingStatistics),
        (status = 401, response = Unauthorized),
        (status = 404, response = JobNotFound),
    )
)]
pub(super) async fn statistics(
    State(control): State<Arc<JobControl>>,
    Path(id): Path<String>,
) -> Reply<CheckpointingStatistics> {
    let control = job(&control, &id)?;
    let snapshot = control.snapshot();
    let stats = snapshot.checkpoints;
    let summary = |s: Summary| MinMaxAvg {
        min: s.min,
        max: s.max,
        avg: s.avg(),
    };
    Ok(Json(CheckpointingStatistics {
        counts: CheckpointCounts {
            restored: snapshot.restores,
            total: stats.completed + stats.failed + stats.in_progress,
            in_progress: stats.in_progress,
            completed: stats.completed,
            failed: stats.failed,
        },
        summary: CheckpointSummary {
            checkpointed_size: summary(stats.stored_bytes),
            state_size: summary(stats.raw_bytes),
            end_to_end_duration: summary(stats.duration_ms),
        },
        latest: LatestCheckpoints {
            completed: stats.latest_checkpoint.as_ref().map(completed),
            savepoint: stats.latest_savepoint.as_ref().map(completed),
            failed: stats
                .latest_failed
                .as_ref()
                .map(|f| FailedCheckpointStatistics {
                    class_name: Default::default(),
                    id: f.id,
                    status: Default::default(),
                    is_savepoint: f.is_savepoint,
                    trigger_timestamp: f.timestamp_ms,
                    failure_timestamp: f.failed_ms,
                    failure_message: f.reason.clone(),
                }),
            restored: snapshot.restored.map(|r| RestoredCheckpointStatistics {
                id: r.id,
                restore_timestamp: r.timestamp_ms,
                is_savepoint: r.is_savepoint,
                external_path: r.location,
            }),
        },
        history: stats.history.iter().rev().map(completed).collect(),
    }))
}

/// Flink's statistics of one completed checkpoint or savepoint.
fn completed(c: &CompletedCheckpoint) -> CompletedCheckpointStatistics {
    let duration = c.duration.as_millis() as u64;
    CompletedCheckpointStatistics {
        class_name: Default::default(),
        id: c.id,
        status: Default::default(),
        is_savepoint: c.is_savepoint,
        checkpoint_type: if c.is_savepoint {
            CheckpointType::Savepoint
        } else {
            CheckpointType::Checkpoint
        },
        num_subtasks: c.subtasks.len(),
        num_acknowledged_subtasks: c.subtasks.len(),
        savepoint_format: c.is_savepoint.then_some(Default::default()),
        trigger_timestamp: c.timestamp_ms,
        latest_ack_timestamp: c.timestamp_ms + duration,
        checkpointed_size: c.stored_bytes,
        state_size: c.raw_bytes,
        end_to_end_duration: duration,
        external_path: c.location.clone(),
        discarded: false,
    }
}

/// A completed checkpoint the statistics still hold (the history, and the latest ones).
fn find_checkpoint(control: &JobControl, id: &str) -> Result<CompletedCheckpoint, ApiError> {
    let stats = control.snapshot().checkpoints;
    let wanted: Option<u64> = id.parse().ok();
    stats
        .history
        .iter()
        .chain(&stats.latest_checkpoint)
        .chain(&stats.latest_savepoint)
        .find(|c| Some(c.id) == wanted)
        .cloned()
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                format!("Could not find checkpointing statistics for checkpoint {id}."),
            )
        })
}

/// A vertex's part of checkpoint `c`: `parts` are its subtasks' entries.
fn task_statistics(
    c: &CompletedCheckpoint,
    vertex: String,
    parts: &[&SubtaskCheckpoint],
) -> TaskCheckpointStatistics {
    let latest_ack = parts
        .iter()
        .map(|s| s.acked_ms)
        .max()
        .unwrap_or(c.timestamp_ms);
    TaskCheckpointStatistics {
        id: vertex,
        status: Default::default(),
        latest_ack_timestamp: latest_ack,
        checkpointed_size: parts.iter().map(|s| s.stored_bytes).sum(),
        state_size: parts.iter().map(|s| s.raw_bytes).sum(),
        end_to_end_duration: latest_ack.saturating_sub(c.timestamp_ms),
        num_subtasks: parts.len(),
        num_acknowledged_subtasks: parts.len(),
    }
}

/// Details of a completed checkpoint or savepoint
///
/// Mirrors Flink's `GET /jobs/:jobid/checkpoints/details/:checkpointid`: the checkpoint's
/// statistics as `GET /jobs/{jobid}/checkpoints` reports them, with its number of subtasks
/// and, per vertex of the job graph, its subtasks' totals. Only checkpoints the statistics
/// still hold are found: the latest `web.checkpoints.history` completed checkpoints and
/// savepoints, the latest completed checkpoint and the latest completed savepoint (of any
/// attempt). In-progress and failed checkpoints are not found.
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/checkpoints/details/{checkpointid}",
    tag = "checkpoints",
    operation_id = "checkpointDetails",
    params(JobId, CheckpointId),
    responses(
        (status = 200, description = "The checkpoint, and its subtasks' totals per vertex.", body = CheckpointDetails),
        (status = 401, response = Unauthorized),
        (status = 404, description = "Unknown job id, or the statistics hold no completed checkpoint with this id.", body = ErrorBody, examples(
            ("unknownJob" = (value = json!({"errors": ["Job 00000000000000000000000000000000 not found: this server runs job 3f1c0a9be2d44e6f8a1b2c3d4e5f6a7b"]}))),
            ("unknownCheckpoint" = (value = json!({"errors": ["Could not find checkpointing statistics for checkpoint 3."]}))),
        )),
    )
)]
pub(super) async fn details(
    State(control): State<Arc<JobControl>>,
    Path((id, checkpoint)): Path<(String, String)>,
) -> Reply<CheckpointDetails> {
    let control = job(&control, &id)?;
    let c = find_checkpoint(control, &checkpoint)?;
    let tasks = control
        .snapshot()
        .graph
        .nodes
        .iter()
        .map(|node| {
            let parts: Vec<&SubtaskCheckpoint> = c
                .subtasks
                .iter()
                .filter(|s| s.task.uid == node.uid)
                .collect();
            let vertex = flink_id(&node.uid);
            (vertex.clone(), task_statistics(&c, vertex, &parts))
        })
        .collect();
    Ok(Json(CheckpointDetails {
        checkpoint: completed(&c),
        tasks,
    }))
}

/// A vertex's subtasks in a completed checkpoint or savepoint
///
/// Mirrors Flink's `GET /jobs/:jobid/checkpoints/details/:checkpointid/subtasks/:vertexid`:
/// the vertex's totals in the checkpoint, and each of its subtasks' acknowledgement, sizes
/// and synchronous, asynchronous and alignment durations. The checkpoint is found as by
/// `GET /jobs/{jobid}/checkpoints/details/{checkpointid}`; the vertex is `404` unless the
/// checkpoint has subtasks of it.
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/checkpoints/details/{checkpointid}/subtasks/{vertexid}",
    tag = "checkpoints",
    operation_id = "checkpointSubtaskDetails",
    params(JobId, CheckpointId, VertexId),
    responses(
        (status = 200, description = "The vertex's totals and its subtasks.", body = TaskCheckpointStatisticsWithSubtaskDetails),
        (status = 401, response = Unauthorized),
        (status = 404, description = "Unknown job id, the statistics hold no completed checkpoint with this id, or the checkpoint has no subtask of this vertex.", body = ErrorBody, examples(
            ("unknownJob" = (value = json!({"errors": ["Job 00000000000000000000000000000000 not found: this server runs job 3f1c0a9be2d44e6f8a1b2c3d4e5f6a7b"]}))),
            ("unknownCheckpoint" = (value = json!({"errors": ["Could not find checkpointing statistics for checkpoint 3."]}))),
            ("unknownVertex" = (value = json!({"errors": ["Checkpoint 12 has no vertex 0123456789abcdef0123456789abcdef."]}))),
        )),
    )
)]
pub(super) async fn subtasks(
    State(control): State<Arc<JobControl>>,
    Path((id, checkpoint, vertex)): Path<(String, String, String)>,
) -> Reply<TaskCheckpointStatisticsWithSubtaskDetails> {
    let control = job(&control, &id)?;
    let c = find_checkpoint(control, &checkpoint)?;
    let parts: Vec<&SubtaskCheckpoint> = c
        .subtasks
        .iter()
        .filter(|s| flink_id(&s.task.uid) == vertex)
        .collect();
    if parts.is_empty() {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("Checkpoint {checkpoint} has no vertex {vertex}."),
        ));
    }
    let millis = |ms: f64| ms.round() as u64;
    let subtasks = parts
        .iter()
        .map(|s| SubtaskCheckpointStatistics {
            index: s.task.subtask,
            status: Default::default(),
            ack_timestamp: s.acked_ms,
            end_to_end_duration: s.acked_ms.saturating_sub(c.timestamp_ms),
            state_size: s.raw_bytes,
            checkpointed_size: s.stored_bytes,
            checkpoint: SubtaskCheckpointDurations {
                sync: millis(s.stats.sync_ms),
                asynchronous: millis(s.stats.async_ms),
            },
            alignment: SubtaskAlignment {
                duration: millis(s.stats.alignment_ms),
            },
            unaligned_checkpoint: false,
            aborted: false,
        })
        .collect();
    Ok(Json(TaskCheckpointStatisticsWithSubtaskDetails {
        task: task_statistics(&c, vertex, &parts),
        subtasks,
    }))
}

/// Checkpointing configuration
///
/// Mirrors Flink's `GET /jobs/:jobid/checkpoints/config` (from the
/// `execution.checkpointing.*` keys). `404` when checkpointing is disabled (no interval),
/// as in Flink.
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/checkpoints/config",
    tag = "checkpoints",
    operation_id = "checkpointConfig",
    params(JobId),
    responses(
        (status = 200, description = "The checkpointing configuration.", body = CheckpointConfigInfo),
        (status = 401, response = Unauthorized),
        (status = 404, description = "Unknown job id, or checkpointing is not enabled for this job.", body = ErrorBody, examples(
            ("unknownJob" = (value = json!({"errors": ["Job 00000000000000000000000000000000 not found: this server runs job 3f1c0a9be2d44e6f8a1b2c3d4e5f6a7b"]}))),
            ("disabled" = (value = json!({"errors": ["Checkpointing is not enabled for this job."]}))),
        )),
    )
)]
pub(super) async fn config(
    State(control): State<Arc<JobControl>>,
    Path(id): Path<String>,
) -> Reply<CheckpointConfigInfo> {
    let control = job(&control, &id)?;
    let config = &control.config.checkpoints;
    let Some(interval) = config.interval else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "Checkpointing is not enabled for this job.".into(),
        ));
    };
    Ok(Json(CheckpointConfigInfo {
        mode: match config.mode {
            CheckpointingMode::ExactlyOnce => CheckpointMode::ExactlyOnce,
            CheckpointingMode::AtLeastOnce => CheckpointMode::AtLeastOnce,
        },
        interval: interval.as_millis() as u64,
        timeout: config.timeout.as_millis() as u64,
        min_pause: config.min_pause.as_millis() as u64,
        max_concurrent: config.max_concurrent,
        externalization: Externalization {
            enabled: config.retention != Retention::NoExternalized,
            delete_on_cancellation: config.retention != Retention::RetainOnCancellation,
        },
        state_backend: Default::default(),
        checkpoint_storage: Default::default(),
        unaligned_checkpoints: false,
        tolerable_failed_checkpoints: config.tolerable_failures,
        aligned_checkpoint_timeout: 0,
        checkpoints_after_tasks_finish: true,
        state_changelog_enabled: false,
        num_retained: config.num_retained,
    }))
}
