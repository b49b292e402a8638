//! Running a program on this process's workers: builds the timely
//! configuration from the flags, gives each worker a [`Context`], steps the
//! dataflows to completion, and turns any failure into a process exit.
//!
//! Timely is not fault tolerant: a failed worker fails the computation. So a
//! fatal error (a job error, a failing sink, a panic) prints its message and
//! exits the whole process with a non-zero status; the other processes lose
//! their connection and stop too, and the launcher reports the failure.

use std::sync::Once;
use std::time::Duration;

use anyhow::Context as _;
use tidewater_operators::Context;
use timely::worker::Worker;

use crate::flags::RuntimeArgs;

/// Runs `build` on every worker of this process, then steps its dataflows
/// until they complete.
///
/// `build` constructs dataflows with `worker.dataflow(..)`, using the worker's
/// [`Context`] for sources and sinks. Returns once all workers are done.
pub fn execute<F>(args: &RuntimeArgs, build: F) -> anyhow::Result<()>
where
    F: Fn(&mut Worker, &Context) -> anyhow::Result<()> + Send + Sync + 'static,
{
    init_logging();
    exit_on_panic();
    let config = args.timely_config()?;
    let max_lag_ms = args.max_lag_ms;
    let guards = timely::execute(config, move |worker| {
        let ctx = Context::new(max_lag_ms);
        if let Err(e) = build(worker, &ctx) {
            fatal(&format!("worker {}: {e:#}", worker.index()));
        }
        while worker.step_or_park(Some(Duration::from_millis(1))) {
            if let Some(failure) = ctx.failure() {
                fatal(&format!("worker {}: {failure}", worker.index()));
            }
        }
        if let Some(failure) = ctx.failure() {
            fatal(&format!("worker {}: {failure}", worker.index()));
        }
        report(worker.index(), &ctx);
    })
    .map_err(|e| anyhow::anyhow!("cannot start the workers: {e}"))?;
    for result in guards.join() {
        result
            .map_err(|e| anyhow::anyhow!(e))
            .context("a worker failed")?;
    }
    Ok(())
}

fn report(index: usize, ctx: &Context) {
    let metrics = ctx.metrics();
    if metrics.malformed.get() > 0 || metrics.late_dropped.get() > 0 {
        tracing::warn!(worker = index, "done: {metrics}");
    } else {
        tracing::info!(worker = index, "done: {metrics}");
    }
}

fn fatal(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}

/// Logs to stderr, filtered by `RUST_LOG` (default: warnings).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A panicking worker would leave its peers waiting forever: end the process.
fn exit_on_panic() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default(info);
            std::process::exit(101);
        }));
    });
}
