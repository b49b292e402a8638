//! The local multi-process launcher and supervisor:
//! `tidewater launch -n N -w W -- PROGRAM ARGS` starts N processes of a
//! Tidewater program on this machine, wired together with a generated
//! hostfile on free ports, forwards their output with a `[pI]` prefix, and
//! as soon as one process fails stops the rest. With `--max-restarts K` it
//! then starts them all again with `--resume` (the program must take
//! checkpoints), after a fixed or exponentially growing delay, up to K times.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context};

/// Flags of `tidewater launch`.
#[derive(clap::Args, Debug, Clone)]
pub struct LaunchArgs {
    /// Number of processes to start.
    #[arg(short = 'n', long, default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(1..=256))]
    pub processes: u64,
    /// Worker threads per process.
    #[arg(short = 'w', long, default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub workers: u64,
    /// Do not prefix each output line with the process index.
    #[arg(long)]
    pub no_prefix: bool,
    /// Restart all processes with `--resume` when one fails, up to this many
    /// times (0: fail at once).
    #[arg(long, default_value_t = 0)]
    pub max_restarts: u32,
    /// Delay before the first restart.
    #[arg(long, default_value = "500ms", value_parser = crate::flags::parse_duration)]
    pub restart_delay: Duration,
    /// `fixed` delay, or `exponential` (doubling after each restart, at most 30 s).
    #[arg(long, value_enum, default_value_t = Backoff::Fixed)]
    pub restart_backoff: Backoff,
    /// The program, then its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// How the delay between restarts grows.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backoff {
    /// The same delay every time.
    Fixed,
    /// Twice the previous delay, at most 30 s.
    Exponential,
}

/// Runs the processes, restarting them as configured; returns an error if
/// they failed more often than allowed.
pub fn launch(args: &LaunchArgs) -> anyhow::Result<()> {
    // SIGTERM is passed on to the processes (for stop-with-savepoint), and
    // ends supervision.
    let sigterm = crate::control::sigterm_flag()?;
    let mut delay = args.restart_delay;
    let mut attempt = 0;
    loop {
        match run_once(args, attempt > 0, &sigterm) {
            Ok(()) => return Ok(()),
            Err(e) if attempt < args.max_restarts && !sigterm.load(Ordering::Relaxed) => {
                attempt += 1;
                eprintln!(
                    "tidewater launch: {e:#}; restart {attempt} of {} in {delay:?}",
                    args.max_restarts
                );
                std::thread::sleep(delay);
                if args.restart_backoff == Backoff::Exponential {
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// One generation of processes.
fn run_once(args: &LaunchArgs, resume: bool, sigterm: &AtomicBool) -> anyhow::Result<()> {
    let (program, program_args) = args.command.split_first().context("no program to launch")?;
    let mut program_args = program_args.to_vec();
    if resume && !program_args.iter().any(|a| a == "--resume") {
        program_args.push("--resume".into());
    }
    let dir = tempfile::Builder::new()
        .prefix("tidewater-launch-")
        .tempdir()
        .context("cannot create a directory for the hostfile")?;
    let hostfile = dir.path().join("hosts");
    let hosts = free_addresses(args.processes as usize)?;
    std::fs::write(&hostfile, hosts.join("\n") + "\n")
        .with_context(|| format!("cannot write {}", hostfile.display()))?;
    tracing::info!(?hosts, "launching {} processes", args.processes);

    let mut children: Vec<Child> = Vec::new();
    let mut forwarders: Vec<JoinHandle<()>> = Vec::new();
    for index in 0..args.processes {
        let spawned = spawn(program, &program_args, args, index, &hostfile);
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                stop(&mut children);
                return Err(e);
            }
        };
        let prefix = if args.no_prefix {
            String::new()
        } else {
            format!("[p{index}] ")
        };
        if let Some(out) = child.stdout.take() {
            forwarders.push(forward(out, prefix.clone(), false));
        }
        if let Some(err) = child.stderr.take() {
            forwarders.push(forward(err, prefix, true));
        }
        children.push(child);
    }

    let result = supervise(&mut children, sigterm);
    for forwarder in forwarders {
        let _ = forwarder.join();
    }
    result
}

/// Starts process `index` in a process group of its own (so that stopping it
/// stops anything it started), set to die with the launcher.
fn spawn(
    program: &str,
    program_args: &[String],
    args: &LaunchArgs,
    index: u64,
    hostfile: &PathBuf,
) -> anyhow::Result<Child> {
    let mut command = Command::new(program);
    command.process_group(0);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
        .args(program_args)
        .args(["-w", &args.workers.to_string()])
        .args(["-n", &args.processes.to_string()])
        .args(["-p", &index.to_string()])
        .arg("-h")
        .arg(hostfile)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start process {index}: {program}"))
}

/// Waits for every child; on the first failure stops the rest. Passes
/// SIGTERM on to every child once.
fn supervise(children: &mut [Child], sigterm: &AtomicBool) -> anyhow::Result<()> {
    let mut done = vec![false; children.len()];
    let mut forwarded = false;
    while done.iter().any(|d| !d) {
        if !forwarded && sigterm.load(Ordering::Relaxed) {
            forwarded = true;
            for child in children.iter() {
                if let Ok(pid) = i32::try_from(child.id()) {
                    // SAFETY: signals a process we started.
                    unsafe {
                        libc::kill(pid, libc::SIGTERM);
                    }
                }
            }
        }
        for (index, child) in children.iter_mut().enumerate() {
            if done[index] {
                continue;
            }
            let status: Option<ExitStatus> = child
                .try_wait()
                .with_context(|| format!("cannot wait for process {index}"))?;
            if let Some(status) = status {
                done[index] = true;
                if !status.success() {
                    stop(children);
                    bail!("process {index} failed ({status}); stopped the others");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Kills each child's process group, then reaps the children.
fn stop(children: &mut [Child]) {
    for child in children.iter_mut() {
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: signals the process group we created for this child.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = child.wait();
    }
}

fn forward(stream: impl Read + Send + 'static, prefix: String, to_stderr: bool) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            if !line.ends_with(b"\n") {
                line.push(b'\n');
            }
            let written = if to_stderr {
                let mut err = std::io::stderr().lock();
                err.write_all(prefix.as_bytes())
                    .and_then(|()| err.write_all(&line))
            } else {
                let mut out = std::io::stdout().lock();
                out.write_all(prefix.as_bytes())
                    .and_then(|()| out.write_all(&line))
            };
            if written.is_err() {
                break;
            }
            line.clear();
        }
    })
}

/// `n` distinct `127.0.0.1:PORT` addresses on ports free right now.
fn free_addresses(n: usize) -> anyhow::Result<Vec<String>> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .context("cannot find a free port")?;
    listeners
        .iter()
        .map(|l| Ok(format!("127.0.0.1:{}", l.local_addr()?.port())))
        .collect()
}
