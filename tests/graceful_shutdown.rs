//! A real SIGINT, handled by the `ctrlc` crate, drives a graceful
//! shutdown whose report names exactly the jobs that never ran (#18).
//!
//! A signal handler is process-wide, so the server runs in a process of its
//! own: [`sigint_reports_the_jobs_that_never_ran`] re-runs this test binary
//! with a filter that selects only [`server_role`] and an environment
//! variable that tells it to play the server. The server has one worker, so
//! which jobs ran is known exactly: jobs 0–2 are released and finish, job 3
//! blocks until it is cancelled, and jobs 4–9 wait in the queue. It prints
//! a `READY` line once job 3 is running; the parent then sends SIGINT, and
//! the server closes intake, shuts down with a short grace period and
//! prints a `REPORT` line that the parent checks.
//!
//! Every wait is bounded: a child that does not answer in time is killed
//! and the test fails.
#![cfg(unix)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use brigade::{Cancelled, Context, JobError, JobHandle, SubmitError, ThreadPool, select};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};

use common::LONG;

/// Set (to anything) in the child's environment: play the server.
const ROLE: &str = "BRIGADE_TEST_GRACEFUL_SERVER";
/// Marks the child's machine-readable lines, wherever libtest's own output
/// puts them on a line.
const MARK: &str = "graceful-shutdown:";
/// Jobs the server submits.
const JOBS: u64 = 10;
/// Jobs released before the signal; the next one blocks until cancelled.
const RELEASED: u64 = 3;
/// How long the server lets its queue drain after the signal. Job
/// `RELEASED` never finishes by itself, so the shutdown always reaches it.
const GRACE: Duration = Duration::from_millis(50);

#[test]
fn sigint_reports_the_jobs_that_never_ran() {
    // SIGINT to a server blocked in a job: intake closes, the grace period
    // passes, the running job is cancelled, and the report lists exactly
    // the queued jobs as never run; the process exits cleanly.
    let mut child = Server::start();
    let ready = child.line("READY", Instant::now() + LONG);
    assert_eq!(ready, format!("pid={}", child.id()));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -INT: {status}");
    let report = child.line("REPORT", Instant::now() + LONG);
    let status = child.exit(Instant::now() + LONG);
    assert!(
        status.success(),
        "the server failed ({status}):\n{}",
        child.stderr()
    );

    let fields: BTreeMap<&str, &str> = report
        .split_whitespace()
        .filter_map(|field| field.split_once('='))
        .collect();
    let count = |key: &str| -> u64 { fields[key].parse().expect("a count") };
    assert_eq!(count("submitted"), JOBS, "{report}");
    assert_eq!(count("ran") + count("never_ran"), count("submitted"));
    assert_eq!((count("ran"), count("completed")), (RELEASED + 1, RELEASED));
    assert_eq!(
        fields["drained"], "false",
        "job {RELEASED} only ends when cancelled"
    );
    assert_eq!(fields["finished_ids"], "0,1,2");
    assert_eq!(fields["interrupted_ids"], "3");
    assert_eq!(fields["never_ran_ids"], "4,5,6,7,8,9");
}

#[test]
#[ignore = "the server half of sigint_reports_the_jobs_that_never_ran, which runs it"]
fn server_role() {
    // Not a test of its own: without ROLE set it does nothing.
    if std::env::var_os(ROLE).is_some() {
        serve_until_signalled();
    }
}

/// The server: one worker, `JOBS` jobs, a report after SIGINT.
fn serve_until_signalled() {
    let (signal_tx, signals) = bounded(1);
    ctrlc::set_handler(move || {
        let _ = signal_tx.try_send(());
    })
    .expect("install the signal handler");
    let pool = Arc::new(
        ThreadPool::builder()
            .workers(1)
            .build()
            .expect("build the pool"),
    );
    let (started_tx, started) = unbounded();
    let (release, released) = bounded(JOBS as usize);
    let jobs: Vec<_> = (0..JOBS)
        .map(|id| submit_job(&pool, id, &started_tx, &released))
        .collect();
    for _ in 0..RELEASED {
        release.send(()).expect("room for every release");
    }
    let mut ran = BTreeSet::new();
    while !ran.contains(&RELEASED) {
        let id = started.recv_timeout(LONG).expect("the next job starts");
        ran.insert(id);
    }
    println!("{MARK} READY pid={}", std::process::id());

    signals.recv_timeout(LONG).expect("SIGINT arrives");
    pool.close();
    assert!(matches!(
        pool.submit(|_ctx| ()),
        Err(SubmitError::Closed(_))
    ));
    let pool = Arc::into_inner(pool).expect("the only owner");
    let report = pool.shutdown_timeout(GRACE);
    ran.extend(started.try_iter());
    let (finished, interrupted, never_ran) = sort_out(jobs, &ran);
    println!(
        "{MARK} REPORT submitted={} ran={} completed={} never_ran={} drained={} \
         finished_ids={finished} interrupted_ids={interrupted} never_ran_ids={never_ran}",
        report.submitted, report.ran, report.completed, report.never_ran, report.drained,
    );
}

/// Submits job `id`: it records that it started, then returns when a
/// release arrives or its context is cancelled, whichever comes first.
fn submit_job(
    pool: &ThreadPool,
    id: u64,
    started: &Sender<u64>,
    released: &Receiver<()>,
) -> (u64, JobHandle<Result<(), Cancelled>>) {
    let (started, released) = (started.clone(), released.clone());
    let job = move |ctx: &Context| {
        started.send(id).expect("the server listens");
        select! {
            recv(released) -> _ => Ok(()),
            recv(ctx.done()) -> _ => ctx.check(),
        }
    };
    (id, pool.submit(job).expect("room in the queue"))
}

/// The ids, comma-separated, of the jobs that finished, were interrupted
/// (started, then cancelled) and never ran.
fn sort_out(
    jobs: Vec<(u64, JobHandle<Result<(), Cancelled>>)>,
    ran: &BTreeSet<u64>,
) -> (String, String, String) {
    let (mut finished, mut interrupted, mut never_ran) = (Vec::new(), Vec::new(), Vec::new());
    for (id, handle) in jobs {
        let list = match handle.join() {
            Ok(Ok(())) => &mut finished,
            Err(JobError::Cancelled(_)) if ran.contains(&id) => &mut interrupted,
            Err(JobError::Cancelled(_)) => &mut never_ran,
            other => panic!("job {id}: {other:?}"),
        };
        list.push(id.to_string());
    }
    (
        finished.join(","),
        interrupted.join(","),
        never_ran.join(","),
    )
}

/// The child process playing the server, killed and reaped if the test
/// fails before it exits.
struct Server {
    child: std::process::Child,
    /// The child's stdout, a line at a time; disconnects at end of file.
    lines: Receiver<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Server {
    /// Re-runs this test binary with only `server_role` selected.
    fn start() -> Self {
        let mut child = Command::new(std::env::current_exe().expect("the test binary"))
            .args(["server_role", "--exact", "--ignored", "--nocapture"])
            .env(ROLE, "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server");
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let (line_tx, lines) = unbounded();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Self {
            child,
            lines,
            stderr: Some(stderr),
        }
    }

    fn id(&self) -> u32 {
        self.child.id()
    }

    /// What follows `MARK` and `kind` on the child's next such line;
    /// panics if none comes before `deadline`.
    fn line(&mut self, kind: &str, deadline: Instant) -> String {
        let want = format!("{MARK} {kind}");
        loop {
            match self.lines.recv_deadline(deadline) {
                Ok(line) => {
                    if let Some((_, rest)) = line.split_once(&want) {
                        return rest.trim().to_owned();
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!("no {kind} line in time"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "the server closed its output before {kind}:\n{}",
                        self.stderr()
                    )
                }
            }
        }
    }

    /// Waits for the end of the child's output, bounded by `deadline`,
    /// then for the child, which is exiting once its output has ended.
    fn exit(&mut self, deadline: Instant) -> ExitStatus {
        loop {
            match self.lines.recv_deadline(deadline) {
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("the server did not exit in time"),
            }
        }
        self.child.wait().expect("wait for the server")
    }

    /// Everything the child wrote to stderr. Only once its stdout has
    /// ended: it waits for the child to exit.
    fn stderr(&mut self) -> String {
        let _ = self.child.wait();
        self.stderr
            .take()
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
