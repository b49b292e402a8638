//! Command-line flags every Tidewater program gets: timely's `-w/-n/-p/-h`,
//! flow control, and the source settings, parsed with clap and validated
//! before anything starts.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser};
use tidewater_connectors::source::SourceConfig;
use tidewater_operators::{LatePolicy, WatermarkStrategy};
use timely::worker::ProgressMode;

/// A program's command line: the runtime flags plus the job's own flags `J`.
///
/// `-h` is timely's hostfile flag, so help is `--help` only.
#[derive(Parser, Debug, Clone)]
#[command(disable_help_flag = true, about = "A Tidewater program", long_about = None)]
pub struct Cli<J: clap::Args> {
    /// Worker, process and flow-control flags.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// The job's own flags.
    #[command(flatten)]
    pub job: J,
}

impl<J: clap::Args> Cli<J> {
    /// Parses the command line, with `about` as the program's description
    /// in `--help`; exits with clap's message on a bad flag.
    pub fn parse_about(about: &'static str) -> Self {
        let matches = <Self as clap::CommandFactory>::command()
            .about(about)
            .get_matches();
        <Self as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// How the computation is laid out over threads and processes.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
#[command(next_help_heading = "Workers and processes (timely)")]
pub struct RuntimeArgs {
    /// Worker threads per process.
    #[arg(short = 'w', long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub workers: u64,
    /// Number of processes in the computation.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub processes: u64,
    /// Index of this process, from 0 to processes - 1.
    #[arg(short = 'p', long, value_name = "I", default_value_t = 0)]
    pub process: u64,
    /// File with one `host:port` per line, one line per process (default for
    /// several processes: localhost ports 2101, 2102, ...).
    #[arg(short = 'h', long, value_name = "FILE")]
    pub hostfile: Option<PathBuf>,
    /// Flow control: how far (event-time ms) a source may run ahead of the
    /// sinks.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub max_lag_ms: u64,
    /// How workers tell each other of their progress: `demand` holds an
    /// update back until it could move the frontier (fewer messages, for
    /// many workers), `eager` sends it at once (a source waiting on flow
    /// control sees the other workers catch up sooner: fewer idle waits
    /// with a few workers).
    #[arg(long, value_name = "MODE", default_value = "demand", value_parser = parse_progress_mode)]
    pub progress_mode: ProgressMode,
    /// Microseconds an idle worker polls for messages before it parks its
    /// thread (waking a parked thread costs more, on a virtual machine
    /// tens of microseconds; the polling burns at most this much CPU each
    /// time a worker runs out of work).
    #[arg(long, value_name = "MICROS", default_value_t = timely::WorkerConfig::DEFAULT_IDLE_SPIN_MICROS)]
    pub idle_spin: u64,
    /// Take checkpoints into this directory (shared by all hosts).
    #[arg(long, value_name = "DIR", help_heading = "Checkpoints")]
    pub checkpoint_dir: Option<PathBuf>,
    /// Wall-clock time between checkpoints (`200ms`, `5s`, `1m`).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration, help_heading = "Checkpoints")]
    pub checkpoint_interval: Duration,
    /// Key groups larger than this (bytes) are stored once by content and
    /// shared between checkpoints (incremental checkpoints).
    #[arg(long, value_name = "BYTES", default_value_t = crate::checkpoint::blobs::INLINE_MAX, help_heading = "Checkpoints")]
    pub checkpoint_inline_max: usize,
    /// Complete checkpoints to keep.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..), help_heading = "Checkpoints")]
    pub retain_checkpoints: u64,
    /// Restart from the newest complete checkpoint in --checkpoint-dir (a
    /// fresh start if there is none).
    #[arg(long, requires = "checkpoint_dir", help_heading = "Checkpoints")]
    pub resume: bool,
    /// Where process 0 listens for `tidewater savepoint` (its address is
    /// written to DIR/CONTROL).
    #[arg(
        long,
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:0",
        help_heading = "Checkpoints"
    )]
    pub control_address: String,
    /// On SIGTERM, take a savepoint, then stop.
    #[arg(long, requires = "checkpoint_dir", help_heading = "Checkpoints")]
    pub savepoint_on_sigterm: bool,
    /// Restart from this checkpoint or savepoint directory.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "resume",
        help_heading = "Checkpoints"
    )]
    pub from_savepoint: Option<PathBuf>,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
}

impl Default for RuntimeArgs {
    fn default() -> Self {
        RuntimeArgs {
            workers: 1,
            processes: 1,
            process: 0,
            hostfile: None,
            max_lag_ms: 10_000,
            progress_mode: ProgressMode::Demand,
            idle_spin: timely::WorkerConfig::DEFAULT_IDLE_SPIN_MICROS,
            checkpoint_dir: None,
            checkpoint_interval: Duration::from_secs(5),
            retain_checkpoints: 3,
            checkpoint_inline_max: crate::checkpoint::blobs::INLINE_MAX,
            resume: false,
            control_address: "127.0.0.1:0".into(),
            savepoint_on_sigterm: false,
            from_savepoint: None,
            help: None,
        }
    }
}

/// A flag combination that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    /// `-p` out of range.
    #[error("--process {process} is out of range: with --processes {processes} it must be 0..={}", processes - 1)]
    ProcessOutOfRange {
        /// The index given.
        process: u64,
        /// The number of processes.
        processes: u64,
    },
    /// The hostfile could not be read.
    #[error("cannot read hostfile {path}: {source}")]
    Hostfile {
        /// Its path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The hostfile names fewer hosts than processes.
    #[error("hostfile {path} lists {found} hosts but --processes is {processes}")]
    HostfileTooShort {
        /// Its path.
        path: PathBuf,
        /// Hosts listed.
        found: usize,
        /// Processes wanted.
        processes: u64,
    },
    /// A hostfile line is not `host:port`.
    #[error("hostfile {path}, line {line}: {text:?} is not host:port")]
    HostfileLine {
        /// Its path.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
}

impl RuntimeArgs {
    /// The addresses of all processes (empty for one process).
    pub fn addresses(&self) -> Result<Vec<String>, FlagError> {
        if self.process >= self.processes {
            return Err(FlagError::ProcessOutOfRange {
                process: self.process,
                processes: self.processes,
            });
        }
        let Some(path) = &self.hostfile else {
            if self.processes == 1 {
                return Ok(Vec::new());
            }
            return Ok((0..self.processes)
                .map(|i| format!("localhost:{}", 2101 + i))
                .collect());
        };
        let text = std::fs::read_to_string(path).map_err(|source| FlagError::Hostfile {
            path: path.clone(),
            source,
        })?;
        let mut hosts = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let valid = line
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !valid {
                return Err(FlagError::HostfileLine {
                    path: path.clone(),
                    line: i + 1,
                    text: line.to_owned(),
                });
            }
            hosts.push(line.to_owned());
        }
        if (hosts.len() as u64) < self.processes {
            return Err(FlagError::HostfileTooShort {
                path: path.clone(),
                found: hosts.len(),
                processes: self.processes,
            });
        }
        hosts.truncate(self.processes as usize);
        Ok(hosts)
    }

    /// The timely configuration these flags describe.
    pub fn timely_config(&self) -> Result<timely::Config, FlagError> {
        let addresses = self.addresses()?;
        let threads = self.workers as usize;
        let communication = if addresses.is_empty() {
            if threads == 1 {
                timely::CommunicationConfig::Thread
            } else {
                timely::CommunicationConfig::Process(threads)
            }
        } else {
            timely::CommunicationConfig::Cluster {
                threads,
                process: self.process as usize,
                addresses,
                report: false,
                zerocopy: false,
            }
        };
        Ok(timely::Config {
            communication,
            worker: timely::WorkerConfig::default()
                .progress_mode(self.progress_mode)
                .idle_spin(Duration::from_micros(self.idle_spin)),
        })
    }

    /// Total workers over all processes.
    pub fn peers(&self) -> u64 {
        self.workers * self.processes
    }
}

/// Settings of a program's sources.
#[derive(clap::Args, Debug, Clone, PartialEq)]
#[command(next_help_heading = "Sources")]
pub struct SourceArgs {
    /// Bounded out-of-orderness: per partition, watermark = max event time - bound.
    #[arg(long, value_name = "MS", default_value_t = 2_000)]
    pub watermark_bound_ms: u64,
    /// A partition silent this long stops holding the watermark (0: never).
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    pub idle_timeout_ms: u64,
    /// What happens to records below the watermark: drop, side-output, retime.
    #[arg(long, value_name = "POLICY", default_value = "drop")]
    pub late_policy: LatePolicy,
    /// Throttle the sources to this many records per second in total.
    #[arg(long, value_name = "EVENTS_PER_S", value_parser = positive_rate)]
    pub rate: Option<f64>,
    /// Stop the job at the first malformed record instead of routing it to
    /// the dead-letter output.
    #[arg(long)]
    pub fail_on_malformed: bool,
    /// Records a source reads per activation at most: one batch, sent under
    /// one capability.
    #[arg(long, value_name = "RECORDS", default_value_t = 8192,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub source_batch: u32,
}

impl Default for SourceArgs {
    fn default() -> Self {
        SourceArgs {
            watermark_bound_ms: 2_000,
            idle_timeout_ms: 5_000,
            late_policy: LatePolicy::Drop,
            rate: None,
            fail_on_malformed: false,
            source_batch: 8192,
        }
    }
}

impl SourceArgs {
    /// The source configuration these flags describe.
    pub fn config(&self) -> SourceConfig {
        SourceConfig {
            watermarks: WatermarkStrategy {
                bound_ms: self.watermark_bound_ms,
                idle_timeout: (self.idle_timeout_ms > 0)
                    .then(|| Duration::from_millis(self.idle_timeout_ms)),
                late_policy: self.late_policy,
            },
            rate: self.rate,
            fail_on_malformed: self.fail_on_malformed,
            batch: self.source_batch as usize,
        }
    }
}

/// `eager` or `demand` (see `--progress-mode`).
fn parse_progress_mode(s: &str) -> Result<ProgressMode, String> {
    s.parse()
        .map_err(|_| format!("'{s}' is not a progress mode: expected 'demand' or 'eager'"))
}

/// Parses `250ms`, `5s`, `2m` or a bare number of milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "ms"), |i| s.split_at(i));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 200ms, 5s or 1m"))?;
    let ms = match unit {
        "ms" => value,
        "s" => value * 1e3,
        "m" => value * 60e3,
        "h" => value * 3600e3,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    if ms <= 0.0 || !ms.is_finite() {
        return Err(format!("{s:?} is not a positive duration"));
    }
    Ok(Duration::from_secs_f64(ms / 1e3))
}

fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate.is_finite() => Ok(rate),
        Ok(_) => Err(format!("{s} is not a positive rate")),
        Err(e) => Err(format!("{s:?} is not a number: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[derive(clap::Args, Debug, Clone)]
    struct NoJob {}

    fn parse(args: &[&str]) -> Result<Cli<NoJob>, String> {
        Cli::<NoJob>::try_parse_from(std::iter::once("prog").chain(args.iter().copied()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_one_thread() {
        let cli = parse(&[]).unwrap();
        assert_eq!(cli.runtime, RuntimeArgs::default());
        assert!(matches!(
            cli.runtime.timely_config().unwrap().communication,
            timely::CommunicationConfig::Thread
        ));
    }

    #[test]
    fn short_and_long_flags() {
        let cli = parse(&["-w", "3", "-n", "2", "-p", "1"]).unwrap();
        assert_eq!(
            (
                cli.runtime.workers,
                cli.runtime.processes,
                cli.runtime.process
            ),
            (3, 2, 1)
        );
        match cli.runtime.timely_config().unwrap().communication {
            timely::CommunicationConfig::Cluster {
                threads,
                process,
                addresses,
                ..
            } => {
                assert_eq!((threads, process), (3, 1));
                assert_eq!(addresses, vec!["localhost:2101", "localhost:2102"]);
            }
            other => panic!("expected a cluster, got {other:?}"),
        }
        let cli = parse(&["--workers", "4"]).unwrap();
        assert!(matches!(
            cli.runtime.timely_config().unwrap().communication,
            timely::CommunicationConfig::Process(4)
        ));
    }

    #[test]
    fn zero_workers_is_refused() {
        let err = parse(&["-w", "0"]).unwrap_err();
        assert!(err.contains("--workers") && err.contains("0"), "{err}");
        let err = parse(&["-n", "0"]).unwrap_err();
        assert!(err.contains("--processes"), "{err}");
        let err = parse(&["-w", "many"]).unwrap_err();
        assert!(err.contains("many"), "{err}");
    }

    #[test]
    fn worker_settings() {
        let cli = parse(&["--progress-mode", "eager", "--idle-spin", "200"]).unwrap();
        assert_eq!(cli.runtime.progress_mode, ProgressMode::Eager);
        assert_eq!(cli.runtime.idle_spin, 200);
        let err = parse(&["--progress-mode", "fast"]).unwrap_err();
        assert!(err.contains("'fast' is not a progress mode"), "{err}");
    }

    #[test]
    fn process_index_must_be_below_processes() {
        let cli = parse(&["-n", "2", "-p", "2"]).unwrap();
        let err = cli.runtime.timely_config().unwrap_err().to_string();
        assert_eq!(
            err,
            "--process 2 is out of range: with --processes 2 it must be 0..=1"
        );
    }

    #[test]
    fn hostfile_problems_are_named() {
        let cli = parse(&["-n", "2", "-h", "/no/such/hosts"]).unwrap();
        let err = cli.runtime.timely_config().unwrap_err().to_string();
        assert!(
            err.starts_with("cannot read hostfile /no/such/hosts"),
            "{err}"
        );

        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "127.0.0.1:4000").unwrap();
        let path = file.path().to_str().unwrap().to_owned();
        let cli = parse(&["-n", "2", "-h", &path]).unwrap();
        let err = cli.runtime.timely_config().unwrap_err().to_string();
        assert_eq!(
            err,
            format!("hostfile {path} lists 1 hosts but --processes is 2")
        );

        writeln!(file, "no-port-here").unwrap();
        let err = cli.runtime.timely_config().unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains("no-port-here"),
            "{err}"
        );
    }

    #[test]
    fn hostfile_gives_the_addresses() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            file,
            "# two hosts\n10.0.0.1:2101\n\n10.0.0.2:2101\n10.0.0.3:2101"
        )
        .unwrap();
        let path = file.path().to_str().unwrap().to_owned();
        let cli = parse(&["-n", "2", "-p", "0", "--hostfile", &path]).unwrap();
        assert_eq!(
            cli.runtime.addresses().unwrap(),
            vec!["10.0.0.1:2101", "10.0.0.2:2101"]
        );
    }

    #[test]
    fn checkpoint_flags() {
        let cli = parse(&[
            "--checkpoint-dir",
            "/tmp/c",
            "--checkpoint-interval",
            "200ms",
            "--resume",
        ])
        .unwrap();
        assert_eq!(cli.runtime.checkpoint_interval, Duration::from_millis(200));
        assert!(cli.runtime.resume);
        let err = parse(&["--resume"]).unwrap_err();
        assert!(err.contains("--checkpoint-dir"), "{err}");
        let err = parse(&["--checkpoint-interval", "5 parsecs"]).unwrap_err();
        assert!(err.contains("unknown unit"), "{err}");
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    }

    #[test]
    fn help_is_long_only() {
        let err = parse(&["--help"]).unwrap_err();
        assert!(
            err.contains("--hostfile") && err.contains("--workers"),
            "{err}"
        );
    }

    #[test]
    fn source_flags() {
        #[derive(clap::Parser, Debug)]
        struct P {
            #[command(flatten)]
            source: SourceArgs,
        }
        let p = P::try_parse_from([
            "p",
            "--late-policy",
            "retime",
            "--rate",
            "5000",
            "--idle-timeout-ms",
            "0",
            "--source-batch",
            "1024",
        ])
        .unwrap();
        let config = p.source.config();
        assert_eq!(config.batch, 1024);
        assert_eq!(
            P::try_parse_from(["p"]).unwrap().source.config().batch,
            8192
        );
        let err = P::try_parse_from(["p", "--source-batch", "0"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--source-batch"), "{err}");
        assert_eq!(config.watermarks.late_policy, LatePolicy::Retime);
        assert_eq!(config.watermarks.idle_timeout, None);
        assert_eq!(config.rate, Some(5000.0));
        let err = P::try_parse_from(["p", "--rate=0"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a positive rate"), "{err}");
        let err = P::try_parse_from(["p", "--late-policy", "keep"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown late policy 'keep'"), "{err}");
    }
}
