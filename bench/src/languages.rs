//! Word count in every guest language, the same job and output: component size, compile
//! time (cache cold), instantiate time, throughput through the runtime, and the real
//! binary's peak memory on the same text.

use std::path::Path;
use std::time::{Duration, Instant};

use cairn_tests::{Scratch, job, word_counts, write_text};
use cairn_wasm::{Engine, JobComponent, Limits};

use crate::process::{cairn, peak_memory};
use crate::{Checkpointing, Code, measure, path, remove_dir, strings};

/// (language, job) in the order of the table; Rust first, the baseline.
const JOBS: [(&str, &str); 6] = [
    ("Rust", "word-count"),
    ("Python", "word-count-py"),
    ("JavaScript", "word-count-js"),
    ("C", "word-count-c"),
    ("Zig", "word-count-zig"),
    ("Go", "word-count-go"),
];

/// Instantiations averaged for the instantiate time.
const INSTANTIATIONS: u32 = 20;

pub fn languages(
    engine: &Engine,
    checkpoints: &Checkpointing,
    text_mb: u64,
    runs: u32,
) -> anyhow::Result<()> {
    let scratch = Scratch::new("bench-languages");
    let text = scratch.join("input.txt");
    let bytes = write_text(&text, text_mb << 20, 100_000, 11)?;
    let words: u64 = word_counts(&text)?.values().sum();
    let output = scratch.join("out");
    let clear_output = || remove_dir(&output);
    let args = strings(&["--input", path(&text), "--output", path(&output)]);
    let limits = Limits {
        memory: 4 << 30,
        call_timeout: Duration::from_secs(60),
    };

    println!();
    println!(
        "| word-count, {:.0} MB text ({words} words), p=1 | component | compile (cache cold) | instantiate | seconds | words/s | vs Rust | peak RSS (process) |",
        bytes as f64 / 1e6
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut rust_rate = None;
    for (language, name) in JOBS {
        let wasm = job(name);
        let size = std::fs::metadata(&wasm)?.len();

        let started = Instant::now();
        JobComponent::load(engine, &wasm, false, limits)?;
        let compile = started.elapsed();

        let component = JobComponent::load(engine, &wasm, true, limits)?;
        let started = Instant::now();
        for i in 0..INSTANTIATIONS {
            drop(component.instantiate(format!("bench-{i}"))?);
        }
        let instantiate = started.elapsed() / INSTANTIATIONS;

        let m = measure(
            engine,
            &Code::Wasm(wasm.clone()),
            &args,
            1,
            runs,
            &clear_output,
            checkpoints,
        )?;
        let rate = words as f64 / m.seconds;
        let baseline = *rust_rate.get_or_insert(rate);

        clear_output()?;
        let process = cairn(&scratch, "cache", &process_args(&wasm, &text, &output))
            .stdout(std::process::Stdio::null())
            .spawn()?;
        let peak = peak_memory(process)?;

        println!(
            "| {language} | {:.2} MB | {:.2} s | {:.2} ms | {:.2} | {:.2} M | {:.2} | {:.0} MB |",
            size as f64 / 1e6,
            compile.as_secs_f64(),
            instantiate.as_secs_f64() * 1e3,
            m.seconds,
            rate / 1e6,
            rate / baseline,
            peak as f64 / 1e6
        );
    }
    Ok(())
}

fn process_args<'a>(wasm: &'a Path, text: &'a Path, output: &'a Path) -> [&'a str; 7] {
    [
        "run",
        path(wasm),
        "--",
        "--input",
        path(text),
        "--output",
        path(output),
    ]
}
