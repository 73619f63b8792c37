//! The commands that act on running jobs through their REST API — `list`, `savepoint`,
//! `cancel`, `stop`, `swap` — printing what Flink's CLI prints for the same commands.

use std::process::ExitCode;

use crate::registry;
use anyhow::{Context as _, bail};
use cairn_api::{
    Empty, JobDetailsInfo, SavepointTriggerRequestBody, StopWithSavepointRequestBody,
    TriggerResponse,
};
use reqwest::Method;

use crate::cli::{CancelArgs, RescaleArgs, SavepointArgs, StopArgs, SwapArgs};
use crate::client::{Body, Client};

fn block_on<F: Future>(future: F) -> anyhow::Result<F::Output> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")?
        .block_on(future))
}

/// A savepoint folder as the job should see it: local relative paths made absolute, since
/// the job may run elsewhere in the file system.
fn absolute(dir: &str) -> String {
    if dir.contains("://") || std::path::Path::new(dir).is_absolute() {
        return dir.to_owned();
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(dir).display().to_string())
        .unwrap_or_else(|_| dir.to_owned())
}

pub fn list() -> anyhow::Result<ExitCode> {
    let entries = registry::list();
    if entries.is_empty() {
        println!("No running jobs.");
        return Ok(ExitCode::SUCCESS);
    }
    println!("------------------ Running/Restarting Jobs -------------------");
    block_on(async {
        for entry in &entries {
            let state = match Client::connect(&entry.id, None).await {
                Ok(client) => client
                    .get::<JobDetailsInfo>(&client.job_path(""))
                    .await
                    .ok()
                    .map(|d| d.state.as_str()),
                Err(_) => None,
            };
            let started = std::time::UNIX_EPOCH + std::time::Duration::from_millis(entry.start_ms);
            println!(
                "{} : {} : {} ({}) http://{}",
                humantime::format_rfc3339_seconds(started),
                entry.id,
                entry.name,
                state.unwrap_or("UNKNOWN"),
                entry.address
            );
        }
    })?;
    println!("--------------------------------------------------------------");
    Ok(ExitCode::SUCCESS)
}

pub fn savepoint(args: SavepointArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.dispose {
        return dispose(path, &args);
    }
    let Some(job) = &args.job else {
        bail!("give the JOB_ID to take a savepoint of (or --dispose PATH)");
    };
    block_on(async {
        let client = Client::connect(job, args.address.jobmanager.as_deref()).await?;
        println!("Triggering savepoint for job {}.", client.job());
        println!("Waiting for response...");
        let location = trigger(&client, args.target_dir.as_deref(), false).await?;
        println!("Savepoint completed. Path: {location}");
        println!("You can resume your program from this savepoint with the run command.");
        Ok(ExitCode::SUCCESS)
    })?
}

/// Triggers a savepoint (Flink's `POST /jobs/:id/savepoints`) and waits for its path.
async fn trigger(client: &Client, dir: Option<&str>, cancel: bool) -> anyhow::Result<String> {
    let body = Body::json(&SavepointTriggerRequestBody {
        target_directory: dir.map(absolute),
        cancel_job: cancel,
    })?;
    savepoint_operation(client, "/savepoints", body)
        .await
        .context("the savepoint failed")
}

/// Posts `body` to the job's savepoint-taking endpoint `endpoint` and waits for the
/// savepoint's path.
async fn savepoint_operation(
    client: &Client,
    endpoint: &str,
    body: Body,
) -> anyhow::Result<String> {
    let triggered: TriggerResponse = client
        .request(Method::POST, &client.job_path(endpoint), Some(body))
        .await?;
    client
        .wait_for(&client.job_path(&format!("/savepoints/{}", triggered.request_id)))
        .await?
        .context("the savepoint completed without a location")
}

fn dispose(path: &str, args: &SavepointArgs) -> anyhow::Result<ExitCode> {
    let config = crate::cli::store_config(args.config.as_ref(), &args.definitions)?;
    println!("Disposing savepoint '{path}'.");
    let location = block_on(cairn_core::savepoint::dispose(path, &config.s3))??;
    println!("Savepoint '{location}' disposed.");
    Ok(ExitCode::SUCCESS)
}

pub fn cancel(args: CancelArgs) -> anyhow::Result<ExitCode> {
    // `cancel -s [DIR] JOB_ID`: with -s, a first of two arguments is the folder.
    let (dir, job) = match (args.with_savepoint, args.args.as_slice()) {
        (_, [job]) => (None, job),
        (true, [dir, job]) => (Some(dir.as_str()), job),
        (false, [_, _]) => bail!("cancel takes one JOB_ID (a savepoint folder needs -s)"),
        _ => bail!("cancel takes [-s [TARGET_DIR]] JOB_ID"),
    };
    block_on(async {
        let client = Client::connect(job, args.address.jobmanager.as_deref()).await?;
        let id = client.job();
        if args.with_savepoint {
            println!(
                "Cancelling job {id} with savepoint to {}.",
                dir.map_or_else(|| "the default savepoint folder".to_owned(), absolute)
            );
            let location = trigger(&client, dir, true).await?;
            client.wait_until_ended().await;
            println!("Cancelled job {id}. Savepoint stored in {location}.");
        } else {
            println!("Cancelling job {id}.");
            client
                .request::<Empty>(Method::PATCH, &client.job_path("?mode=cancel"), None)
                .await?;
            client.wait_until_ended().await;
            println!("Cancelled job {id}.");
        }
        Ok(ExitCode::SUCCESS)
    })?
}

pub fn stop(args: StopArgs) -> anyhow::Result<ExitCode> {
    block_on(async {
        let client = Client::connect(&args.job, args.address.jobmanager.as_deref()).await?;
        println!("Suspending job \"{}\" with a savepoint.", client.job());
        let body = Body::json(&StopWithSavepointRequestBody {
            target_directory: args.savepoint_path.as_deref().map(absolute),
            drain: args.drain,
        })?;
        let location = savepoint_operation(&client, "/stop", body)
            .await
            .context("stop with savepoint failed")?;
        println!("Savepoint completed. Path: {location}");
        Ok(ExitCode::SUCCESS)
    })?
}

pub fn rescale(args: RescaleArgs) -> anyhow::Result<ExitCode> {
    block_on(async {
        let client = Client::connect(&args.job, args.address.jobmanager.as_deref()).await?;
        let (id, parallelism) = (client.job().to_owned(), args.parallelism);
        println!("Rescaling job {id} to parallelism {parallelism} through a savepoint.");
        let mut path = format!(
            "{}?parallelism={parallelism}",
            client.job_path("/rescaling")
        );
        if let Some(dir) = args.savepoint_path.as_deref().map(absolute) {
            let dir: String = url::form_urlencoded::byte_serialize(dir.as_bytes()).collect();
            path.push_str(&format!("&target-directory={dir}"));
        }
        let triggered: TriggerResponse = client.request(Method::PATCH, &path, None).await?;
        let location = client
            .wait_for(&client.job_path(&format!("/rescaling/{}", triggered.request_id)))
            .await
            .context("rescale failed")?;
        let location = location.unwrap_or_default();
        println!(
            "Rescaled: job {id} runs at parallelism {parallelism} now (savepoint {location})."
        );
        Ok(ExitCode::SUCCESS)
    })?
}

pub fn swap(args: SwapArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.component)
        .with_context(|| format!("cannot read {}", args.component.display()))?;
    let name = args.component.display().to_string();
    block_on(async {
        let client = Client::connect(&args.job, args.address.jobmanager.as_deref()).await?;
        let id = client.job().to_owned();
        println!("Swapping the operators of job {id} to {name}.");
        let query: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
        let path = format!("{}?name={query}", client.job_path("/swap"));
        let triggered: TriggerResponse = client
            .request(Method::POST, &path, Some(Body::Bytes(bytes)))
            .await?;
        client
            .wait_for(&client.job_path(&format!("/swap/{}", triggered.request_id)))
            .await
            .with_context(|| format!("swap refused; job {id} keeps running its current code"))?;
        println!("Swapped: job {id} runs {name} now.");
        Ok(ExitCode::SUCCESS)
    })?
}
