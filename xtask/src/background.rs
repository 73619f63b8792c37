//! Work that runs beside the native build: the guest jobs, the test tools' installs. The
//! native build keeps both cores busy, but most of this work waits on downloads or runs on
//! one core, so side by side they end sooner than one after the other.
//!
//! The foreground (cargo's own output) keeps the terminal: a background step prints its
//! one-line heading there, and the output of its commands goes to a log file, shown in full
//! when the background work fails.

use std::cell::RefCell;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;

use anyhow::Context;

thread_local! {
    /// The log of the background work running on this thread, if it is one.
    static LOG: RefCell<Option<File>> = const { RefCell::new(None) };
}

/// Background work under way.
pub(crate) struct Background {
    name: &'static str,
    log: PathBuf,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl Background {
    /// Starts `work` on its own thread, its commands' output going to
    /// `target/xtask/<file name>.log`.
    pub(crate) fn spawn(
        name: &'static str,
        work: impl FnOnce() -> anyhow::Result<()> + Send + 'static,
    ) -> anyhow::Result<Background> {
        let dir = crate::target_dir().join("xtask");
        std::fs::create_dir_all(&dir)?;
        let file_name: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let log = dir.join(format!("{file_name}.log"));
        let file =
            File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        eprintln!(
            "\n==> {name}, beside the build (its output: {})",
            log.display()
        );
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                LOG.with(|slot| *slot.borrow_mut() = Some(file));
                work()
            })
            .context("cannot start a thread")?;
        Ok(Background { name, log, handle })
    }

    /// Waits for the work to end; when it failed, shows its log and says so.
    pub(crate) fn join(self) -> anyhow::Result<()> {
        let result = match self.handle.join() {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!("it panicked")),
        };
        result.or_else(|error| {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("\n==> the output of {}:\n{log}", self.name);
            Err(error).with_context(|| {
                format!(
                    "{} (beside the build) failed; its output is in {}",
                    self.name,
                    self.log.display()
                )
            })
        })
    }
}

/// Sends `command`'s output to the log when it runs in background work.
pub(crate) fn redirect(command: &mut Command) -> anyhow::Result<()> {
    LOG.with(|slot| {
        if let Some(log) = slot.borrow().as_ref() {
            command
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log.try_clone()?));
        }
        Ok(())
    })
}

/// Where a step's heading goes: the terminal, and the log too in background work, marked
/// as the background's.
pub(crate) fn heading(message: &str) {
    let background = LOG.with(|slot| {
        slot.borrow().as_ref().map(|mut log| {
            use std::io::Write as _;
            // The log is for reading after a failure: losing a heading there loses nothing
            // the terminal did not show.
            let _ = writeln!(log, "\n==> {message}");
        })
    });
    match background {
        Some(()) => eprintln!("==> (beside the build) {message}"),
        None => eprintln!("\n==> {message}"),
    }
}
