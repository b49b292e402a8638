//! Running a program on this process's workers: builds the timely
//! configuration from the flags, gives each worker a [`Context`], steps the
//! dataflows to completion, and turns any failure into a process exit.
//!
//! Timely is not fault tolerant: a failed worker fails the computation. So a
//! fatal error (a job error, a failing sink, a panic) prints its message and
//! exits the whole process with a non-zero status; the other processes lose
//! their connection and stop too, and the launcher reports the failure.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tidewater_operators::checkpoint::{Checkpointing, Coordinator, Restored};
use tidewater_operators::Context;
use timely::worker::Worker;

use crate::checkpoint::{load_from, load_newest, DirStore};
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
    let (store, restored) = checkpoints(args)?;
    let interval = args.checkpoint_interval;
    let retain = args.retain_checkpoints as usize;
    let endpoint = match (&args.checkpoint_dir, args.process) {
        (Some(dir), 0) => Some(crate::control::start_endpoint(&args.control_address, dir)?),
        _ => None,
    };
    let endpoint = Arc::new(std::sync::Mutex::new(endpoint));
    let sigterm = if args.savepoint_on_sigterm {
        crate::control::sigterm_flag()?
    } else {
        Arc::new(std::sync::atomic::AtomicBool::new(false))
    };
    let checkpoint_root = args.checkpoint_dir.clone();
    let leader_process = args.process == 0;
    let (process, processes, threads) = (args.process, args.processes, args.workers as usize);
    let guards = timely::execute(config, move |worker| {
        let (index, peers) = (worker.index(), worker.peers());
        let mut ctx = Context::new(max_lag_ms);
        if let Some(store) = &store {
            let start = restored.as_ref().map(|r| r.checkpoint);
            ctx = ctx.with_checkpointing(Checkpointing {
                store: Rc::new(store.for_worker(index)),
                coordinator: Rc::new(RefCell::new(Coordinator::new(index == 0, interval, start))),
                restored: restored.as_deref().cloned(),
                operators: RefCell::default(),
            });
        }
        ctx.install();
        if let Err(e) = build(worker, &ctx) {
            fatal(&format!("worker {index}: {e:#}"));
        }
        let mut last_commit = Instant::now();
        let mut savepoints = checkpoint_root
            .as_ref()
            .filter(|_| index == 0 && leader_process)
            .map(|root| {
                let requests = endpoint.lock().expect("not poisoned").take();
                crate::control::Savepoints::new(root, requests, Arc::clone(&sigterm))
            });
        let mut follower_stop: Option<(Option<String>, Instant)> = None;
        while worker.step_or_park(Some(Duration::from_millis(1))) {
            if let (Some(savepoints), Some(checkpointing)) =
                (savepoints.as_mut(), ctx.checkpointing())
            {
                if savepoints.poll(checkpointing) == crate::control::Next::Stop {
                    crate::control::STOPPING.store(true, std::sync::atomic::Ordering::SeqCst);
                    let root = checkpoint_root
                        .as_deref()
                        .expect("savepoints need --checkpoint-dir");
                    crate::control::await_acknowledgements(root, processes);
                    std::process::exit(0);
                }
            }
            if !leader_process
                && index % threads == 0
                && sigterm.load(std::sync::atomic::Ordering::Relaxed)
            {
                // Process 0 takes the savepoint; stop once it is recorded.
                let root = checkpoint_root
                    .as_deref()
                    .expect("--savepoint-on-sigterm needs --checkpoint-dir");
                let (before, since) = follower_stop.get_or_insert_with(|| {
                    (crate::control::latest_savepoint(root), Instant::now())
                });
                if let Some(latest) =
                    crate::control::latest_savepoint(root).filter(|l| Some(l) != before.as_ref())
                {
                    crate::control::STOPPING.store(true, std::sync::atomic::Ordering::SeqCst);
                    crate::control::acknowledge(root, &latest, process);
                    std::process::exit(0);
                }
                if since.elapsed() > Duration::from_secs(60) {
                    fatal("SIGTERM: no savepoint from process 0 within 60 s");
                }
            }
            if let Some(failure) = ctx.failure() {
                fatal(&format!("worker {index}: {failure}"));
            }
            if let (Some(store), Some(checkpointing)) = (&store, ctx.checkpointing()) {
                if index == 0 && last_commit.elapsed() >= Duration::from_millis(5) {
                    last_commit = Instant::now();
                    if let Err(e) = store.complete_checkpoints(checkpointing, peers, retain) {
                        fatal(&format!("cannot complete a checkpoint: {e:#}"));
                    }
                }
                if let Some(failure) = store.failure() {
                    fatal(&failure);
                }
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

/// The checkpoint store and the checkpoint to restore, from the flags.
type Checkpoints = (Option<DirStore>, Option<Arc<Restored>>);

fn checkpoints(args: &RuntimeArgs) -> anyhow::Result<Checkpoints> {
    let Some(dir) = &args.checkpoint_dir else {
        if args.from_savepoint.is_some() {
            anyhow::bail!(
                "--from-savepoint needs --checkpoint-dir for the checkpoints that follow"
            );
        }
        return Ok((None, None));
    };
    let restored = if let Some(savepoint) = &args.from_savepoint {
        Some(
            load_from(savepoint)
                .with_context(|| format!("cannot restore from {}", savepoint.display()))?,
        )
    } else if args.resume {
        let newest = load_newest(dir)?;
        match &newest {
            Some(r) => tracing::info!(checkpoint = r.checkpoint, "resuming from {}", dir.display()),
            None => tracing::warn!(
                "no complete checkpoint in {}: starting afresh",
                dir.display()
            ),
        }
        newest
    } else {
        None
    };
    if args.process == 0 {
        // A fresh run starts a new history of checkpoints; a restored one
        // drops whatever came after its checkpoint (incomplete or damaged):
        // its own checkpoints may fall at the same times (replay is
        // deterministic) and must never meet an older run's parts there.
        let restored_at = restored.as_ref().map(|r| r.checkpoint);
        for entry in crate::checkpoint::list(dir).unwrap_or_default() {
            if restored_at.is_none_or(|c| entry.checkpoint > c) {
                tracing::info!(
                    checkpoint = entry.checkpoint,
                    "removing {}",
                    entry.dir.display()
                );
                std::fs::remove_dir_all(&entry.dir).with_context(|| {
                    format!("cannot clear old checkpoint {}", entry.dir.display())
                })?;
            }
        }
    }
    Ok((
        Some(DirStore::new(dir, args.checkpoint_inline_max)?),
        restored.map(Arc::new),
    ))
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
            if crate::control::STOPPING.load(std::sync::atomic::Ordering::SeqCst) {
                std::process::exit(0);
            }
            default(info);
            std::process::exit(101);
        }));
    });
}
