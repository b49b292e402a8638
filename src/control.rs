//! The control endpoint of a running job, and savepoints.
//!
//! With `--checkpoint-dir DIR`, process 0 listens on `--control-address`
//! (default: a free port on 127.0.0.1) and writes the address to
//! `DIR/CONTROL`. `tidewater savepoint DIR` connects and asks for a
//! savepoint: the job takes a checkpoint at once and, when it is complete,
//! copies it to `DIR/savepoints/sp-<C>`, out of reach of retention, and
//! answers with that path. With `--savepoint-on-sigterm`, SIGTERM does the
//! same and then stops the job (every process exits 0).

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use tidewater_operators::checkpoint::Checkpointing;
use tidewater_operators::EventTime;

use crate::checkpoint::checkpoint_dir;

/// Where the answer to a savepoint request goes: its path, or why not.
type Reply = Sender<Result<PathBuf, String>>;

/// A request for a savepoint; the path (or an error) goes back on `reply`.
pub struct SavepointRequest {
    reply: Reply,
}

/// Starts the endpoint; requests arrive on the returned channel.
pub fn start_endpoint(address: &str, dir: &Path) -> anyhow::Result<Receiver<SavepointRequest>> {
    let listener =
        TcpListener::bind(address).with_context(|| format!("cannot listen on {address}"))?;
    let local = listener.local_addr()?;
    fs::write(dir.join("CONTROL"), format!("{local}\n"))
        .with_context(|| format!("cannot write {}", dir.join("CONTROL").display()))?;
    tracing::info!("control endpoint on {local}");
    let (requests, incoming) = channel();
    std::thread::Builder::new()
        .name("control-endpoint".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = serve(stream, &requests) {
                    tracing::warn!("control request failed: {e:#}");
                }
            }
        })?;
    Ok(incoming)
}

fn serve(stream: TcpStream, requests: &Sender<SavepointRequest>) -> anyhow::Result<()> {
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let mut out = &stream;
    if line.trim() != "savepoint" {
        writeln!(out, "error unknown request {:?}", line.trim())?;
        return Ok(());
    }
    let (reply, answer) = channel();
    requests.send(SavepointRequest { reply })?;
    match answer.recv_timeout(Duration::from_secs(600)) {
        Ok(Ok(path)) => writeln!(out, "ok {}", path.display())?,
        Ok(Err(e)) => writeln!(out, "error {e}")?,
        Err(RecvTimeoutError::Disconnected) => {
            writeln!(out, "error the job ended before the savepoint was complete")?
        }
        Err(RecvTimeoutError::Timeout) => writeln!(
            out,
            "error the job did not complete a savepoint in 10 minutes"
        )?,
    }
    Ok(())
}

/// Asks the job checkpointing into `dir` for a savepoint; returns its path.
pub fn request_savepoint(dir: &Path) -> anyhow::Result<PathBuf> {
    let control = dir.join("CONTROL");
    let address = fs::read_to_string(&control).with_context(|| {
        format!(
            "no running job writes checkpoints to {} ({} is missing)",
            dir.display(),
            control.display()
        )
    })?;
    let stream = TcpStream::connect(address.trim())
        .with_context(|| format!("cannot reach the job at {}", address.trim()))?;
    let mut out = &stream;
    writeln!(out, "savepoint")?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer)?;
    match answer.trim().split_once(' ') {
        Some(("ok", path)) => Ok(PathBuf::from(path)),
        Some(("error", e)) => bail!("the job refused: {e}"),
        _ => bail!("unexpected answer {answer:?}"),
    }
}

/// Worker 0's side: turns requests (and SIGTERM) into checkpoints and
/// copies them to savepoints once complete.
pub struct Savepoints {
    root: PathBuf,
    requests: Option<Receiver<SavepointRequest>>,
    /// Requests waiting for the checkpoint announced at this index.
    waiting: Vec<(usize, Option<Reply>)>,
    sigterm: Arc<AtomicBool>,
    stopping: bool,
}

/// Set once this process is stopping with a savepoint: peers going away is
/// then expected, not a failure (the panic hook exits 0).
pub static STOPPING: AtomicBool = AtomicBool::new(false);

/// Installed once per process: SIGTERM sets the flag.
static SIGTERM: Mutex<Option<Arc<AtomicBool>>> = Mutex::new(None);

/// The process's SIGTERM flag (registered on first use).
pub fn sigterm_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let mut slot = SIGTERM.lock().expect("not poisoned");
    if let Some(flag) = slot.as_ref() {
        return Ok(Arc::clone(flag));
    }
    let flag = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&flag))?;
    *slot = Some(Arc::clone(&flag));
    Ok(flag)
}

/// What the driver should do after [`Savepoints::poll`].
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Keep running.
    Continue,
    /// A stop-with-savepoint finished: exit.
    Stop,
}

impl Savepoints {
    /// Savepoints under `root/savepoints`.
    pub fn new(
        root: &Path,
        requests: Option<Receiver<SavepointRequest>>,
        sigterm: Arc<AtomicBool>,
    ) -> Self {
        Savepoints {
            root: root.to_owned(),
            requests,
            waiting: Vec::new(),
            sigterm,
            stopping: false,
        }
    }

    /// Takes new requests, and answers those whose checkpoint completed.
    pub fn poll(&mut self, checkpointing: &Checkpointing) -> Next {
        let announced = checkpointing.coordinator.borrow().announced().len();
        let mut asked = false;
        if let Some(requests) = &self.requests {
            while let Ok(request) = requests.try_recv() {
                self.waiting.push((announced, Some(request.reply)));
                asked = true;
            }
        }
        if self.sigterm.load(Ordering::Relaxed) && !self.stopping {
            tracing::warn!("SIGTERM: stopping with a savepoint");
            self.stopping = true;
            self.waiting.push((announced, None));
            asked = true;
        }
        if asked {
            checkpointing.coordinator.borrow_mut().request();
        }
        let mut stop = false;
        let checkpoints: Vec<EventTime> = checkpointing.coordinator.borrow().announced().to_vec();
        self.waiting.retain_mut(|(index, reply)| {
            let Some(&c) = checkpoints.get(*index) else {
                return true;
            };
            if !checkpointing.store.is_complete(c) {
                return true;
            }
            if reply.is_none() {
                // Before LATEST appears: peers that see it will go away.
                STOPPING.store(true, Ordering::SeqCst);
            }
            let result = copy_savepoint(&self.root, c).map_err(|e| format!("{e:#}"));
            match (reply.take(), &result) {
                (Some(reply), _) => {
                    let _ = reply.send(result.clone());
                }
                (None, Ok(path)) => {
                    // Said before LATEST appears: once peers see it they go.
                    eprintln!("stopped with savepoint {}", path.display());
                    stop = true;
                }
                (None, Err(e)) => {
                    eprintln!("error: stop-with-savepoint failed: {e}");
                    stop = true;
                }
            }
            if let Ok(path) = &result {
                if let Err(e) = record_latest(&self.root, path) {
                    tracing::error!("cannot record the savepoint: {e:#}");
                }
            }
            false
        });
        if stop {
            Next::Stop
        } else {
            Next::Continue
        }
    }
}

/// Copies complete checkpoint `c` to `root/savepoints/sp-<c>`.
fn copy_savepoint(root: &Path, c: EventTime) -> anyhow::Result<PathBuf> {
    let from = checkpoint_dir(root, c);
    let to = root.join("savepoints").join(format!("sp-{c:020}"));
    let tmp = to.with_extension("tmp");
    fs::create_dir_all(tmp.join("blobs"))?;
    for entry in fs::read_dir(&from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry?;
        if entry.file_name() != "MANIFEST" {
            fs::copy(entry.path(), tmp.join(entry.file_name()))?;
        }
        // A savepoint carries the key-group blobs its parts refer to.
        if entry.path().extension().is_some_and(|e| e == "refs") {
            for name in fs::read_to_string(entry.path())?
                .lines()
                .filter(|l| !l.starts_with('#'))
            {
                fs::copy(
                    crate::checkpoint::blobs::blob_dir(root).join(name),
                    tmp.join("blobs").join(name),
                )?;
            }
        }
    }
    // The manifest last, as in a checkpoint.
    fs::copy(from.join("MANIFEST"), tmp.join("MANIFEST"))?;
    fs::rename(&tmp, &to)?;
    Ok(to)
}

/// Records `path` as the newest savepoint in `root/savepoints/LATEST`.
fn record_latest(root: &Path, path: &Path) -> anyhow::Result<()> {
    let latest = root.join("savepoints").join("LATEST");
    let tmp = latest.with_extension("tmp");
    fs::write(
        &tmp,
        format!(
            "{}
",
            path.display()
        ),
    )?;
    fs::rename(&tmp, &latest)?;
    Ok(())
}

/// For processes other than 0 stopping on SIGTERM: the savepoint recorded
/// in `root/savepoints/LATEST`, if any.
pub fn latest_savepoint(root: &Path) -> Option<String> {
    fs::read_to_string(root.join("savepoints").join("LATEST")).ok()
}

/// A process other than 0 confirms that it saw savepoint `latest` and stops.
pub fn acknowledge(root: &Path, latest: &str, process: u64) {
    let name = Path::new(latest.trim())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let _ = fs::write(
        root.join("savepoints")
            .join(format!("ACK-{name}-p{process}")),
        b"",
    );
}

/// Process 0 waits (at most 10 s) until every other process has seen the
/// savepoint, so that none of them mistakes process 0's exit for a failure.
pub fn await_acknowledgements(root: &Path, processes: u64) {
    let Some(latest) = latest_savepoint(root) else {
        return;
    };
    let name = Path::new(latest.trim())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let acked = |p: u64| {
        root.join("savepoints")
            .join(format!("ACK-{name}-p{p}"))
            .exists()
    };
    while std::time::Instant::now() < deadline && !(1..processes).all(acked) {
        std::thread::sleep(Duration::from_millis(10));
    }
}
