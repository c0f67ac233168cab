//! A tokio service that hands its CPU work to brigade.
//!
//! The server derives a key from each request (SHA-256 iterated many
//! times, as password hashing does) on a [`ThreadPool`] of two workers
//! with room for four queued jobs, while one tokio thread serves every
//! socket. The same program starts the clients: tokio tasks on loopback,
//! a quarter of whose requests give up after 2 to 41 ms and hang up. It
//! shows two things:
//!
//! 1. **Backpressure without blocking.** `submit_async(..).await` stays
//!    `Pending` while the queue is full, so a burst of requests slows the
//!    intake instead of growing a queue, and the executor thread is never
//!    blocked (a blocking `submit` here would freeze every socket).
//! 2. **Cancellation on disconnect.** Each handler waits for its job and,
//!    at the same time, for its client to hang up. When the client wins,
//!    the job's [`CancelOnDrop`] handle is dropped: a job still queued
//!    never runs, and a running job sees `ctx.check()` fail and stops.
//!
//! ```text
//! cargo run --release --example async_offload
//! ```

use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use brigade::{CancelOnDrop, Cancelled, Context, JobOutcome, ThreadPool};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::timeout;

const WORKERS: usize = 2;
const QUEUE_CAPACITY: usize = 4;
const CLIENTS: usize = 16;
const REQUESTS_PER_CLIENT: usize = 12;
/// Every fourth request is from a client that hangs up after `patience`.
const IMPATIENT_EVERY: usize = 4;
/// SHA-256 rounds per key: a few milliseconds of CPU, in a release build
/// and (with fewer rounds, as unoptimised hashing is much slower) in a
/// debug build.
const ROUNDS: u32 = if cfg!(debug_assertions) {
    1_000
} else {
    20_000
};
/// Rounds between two looks at the job's context: 40 looks per job.
const CHUNK: u32 = ROUNDS / 40;
/// The bound on every other wait: nothing here should come near it.
const LONG: Duration = Duration::from_secs(30);

/// What the server saw; the pool's hook and the jobs write here too.
#[derive(Debug, Default)]
struct Tally {
    requests: AtomicU64,
    answered: AtomicU64,
    /// Submits that found the queue full at least once.
    slowed: AtomicU64,
    /// Time those submits spent waiting for room, in microseconds.
    waited_us: AtomicU64,
    longest_wait_us: AtomicU64,
    /// The most jobs seen queued right after a submit got in.
    peak_queued: AtomicUsize,
    /// Clients that hung up while their submit waited for room: their
    /// jobs were dropped before they were ever queued.
    gone_before_queued: AtomicU64,
    /// Clients that hung up once their job was queued or running.
    gone_with_job: AtomicU64,
    /// Jobs cancelled in the queue, so never started (the pool's hook).
    never_started: AtomicU64,
    /// Jobs that saw their context cancelled between chunks and stopped.
    stopped_mid_work: AtomicU64,
}

/// The CPU work: `ROUNDS` chained SHA-256 hashes of the request, with a
/// look at the context every `CHUNK` rounds so a cancelled job stops.
fn derive_key(ctx: &Context, tally: &Tally, request: &[u8]) -> Result<[u8; 32], Cancelled> {
    let mut key: [u8; 32] = Sha256::digest(request).into();
    for round in 0..ROUNDS {
        if round % CHUNK == 0 {
            if let Err(reason) = ctx.check() {
                tally.stopped_mid_work.fetch_add(1, Ordering::Relaxed);
                return Err(reason);
            }
        }
        key = Sha256::new()
            .chain_update(key)
            .chain_update(request)
            .finalize()
            .into();
    }
    Ok(key)
}

/// Awaits `submit`, recording whether it was slowed by backpressure.
///
/// A submit counts as slowed when its future returned `Pending` at least
/// once. That is an honest test of a full queue: `SubmitAsync` returns
/// `Pending` only after it tried to queue the job, found no room, left
/// its waker, and found no room on a second try either; a submit that
/// finds room resolves on its first poll. The time from that first
/// `Pending` to the job being queued is the time backpressure cost.
async fn await_room<S: Future>(submit: S, tally: &Tally) -> S::Output {
    let mut submit = pin!(submit);
    let mut first_pending: Option<Instant> = None;
    let output = poll_fn(|cx| match submit.as_mut().poll(cx) {
        Poll::Pending => {
            first_pending.get_or_insert_with(Instant::now);
            Poll::Pending
        }
        ready => ready,
    })
    .await;
    if let Some(since) = first_pending {
        let waited = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
        tally.slowed.fetch_add(1, Ordering::Relaxed);
        tally.waited_us.fetch_add(waited, Ordering::Relaxed);
        tally.longest_wait_us.fetch_max(waited, Ordering::Relaxed);
    }
    output
}

/// Queues the key derivation (waiting for room as long as it takes) and
/// awaits its result. Dropped early, it cancels whatever stage it is in:
/// a submit still waiting drops the job unqueued, and the `CancelOnDrop`
/// handle cancels a queued or running job. `queued` records the stage.
async fn compute(
    pool: &ThreadPool,
    tally: &Arc<Tally>,
    request: Vec<u8>,
    queued: &AtomicBool,
) -> io::Result<[u8; 32]> {
    let job_tally = Arc::clone(tally);
    let submit = pool.submit_async(move |ctx| derive_key(ctx, &job_tally, &request));
    let handle: CancelOnDrop<_> = await_room(submit, tally)
        .await
        .map_err(|refused| io::Error::other(refused.kind()))?
        .cancel_on_drop();
    queued.store(true, Ordering::Relaxed);
    tally
        .peak_queued
        .fetch_max(pool.stats().queued, Ordering::Relaxed);
    match handle.await {
        Ok(Ok(key)) => Ok(key),
        Ok(Err(cancelled)) => Err(io::Error::other(cancelled)),
        Err(job_error) => Err(io::Error::other(job_error)),
    }
}

/// Resolves when the client hangs up: a read that returns 0 bytes (end of
/// stream) or fails (reset). A client sends nothing after its request.
async fn client_gone(mut reader: impl AsyncRead + Unpin) {
    let mut byte = [0u8; 1];
    while let Ok(1..) = reader.read(&mut byte).await {}
}

/// One connection: a 32-byte request in, a 32-byte key out, unless the
/// client hangs up first.
async fn handle(mut stream: TcpStream, pool: Arc<ThreadPool>, tally: Arc<Tally>) -> io::Result<()> {
    let mut request = vec![0u8; 32];
    stream.read_exact(&mut request).await?;
    tally.requests.fetch_add(1, Ordering::Relaxed);
    let (reader, mut writer) = stream.split();
    let queued = AtomicBool::new(false);
    tokio::select! {
        key = compute(&pool, &tally, request, &queued) => {
            writer.write_all(&key?).await?;
            tally.answered.fetch_add(1, Ordering::Relaxed);
        }
        () = client_gone(reader) => {
            // `compute` has just been dropped, and with it the job.
            let stage = if queued.load(Ordering::Relaxed) {
                &tally.gone_with_job
            } else {
                &tally.gone_before_queued
            };
            stage.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Accepts connections until `stop` changes, then waits (bounded) for
/// the handlers still running.
async fn serve(
    listener: TcpListener,
    pool: Arc<ThreadPool>,
    tally: Arc<Tally>,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut handlers = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                handlers.spawn(handle(stream, Arc::clone(&pool), Arc::clone(&tally)));
            }
            _ = stop.changed() => break,
        }
    }
    while let Some(done) = timeout(LONG, handlers.join_next())
        .await
        .map_err(|_| io::Error::other("a handler did not finish"))?
    {
        if let Err(err) = done? {
            eprintln!("handler: {err}");
        }
    }
    Ok(())
}

/// What the clients saw.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    answered: u64,
    gave_up: u64,
}

/// How long an impatient request waits for its answer: 2 to 41 ms, so
/// that some clients leave while their submit waits for room, some while
/// their job is queued, and some while it runs.
fn patience(number: usize) -> Duration {
    Duration::from_millis(2 + (number as u64 * 7) % 40)
}

/// One client: `REQUESTS_PER_CLIENT` requests, one connection each.
/// An impatient request waits [`patience`] for its answer, then hangs up.
async fn client(addr: SocketAddr, id: usize) -> io::Result<Seen> {
    let mut seen = Seen::default();
    for n in 0..REQUESTS_PER_CLIENT {
        let number = id * REQUESTS_PER_CLIENT + n;
        let impatient = number % IMPATIENT_EVERY == 0;
        let mut stream = TcpStream::connect(addr).await?;
        let mut request = [0u8; 32];
        request[..8].copy_from_slice(&(number as u64).to_le_bytes());
        stream.write_all(&request).await?;
        let mut key = [0u8; 32];
        let wait = if impatient { patience(number) } else { LONG };
        match timeout(wait, stream.read_exact(&mut key)).await {
            Ok(read) => {
                read?;
                seen.answered += 1;
            }
            // Dropping `stream` at the end of this turn hangs up.
            Err(_) if impatient => seen.gave_up += 1,
            Err(_) => return Err(io::Error::other("no answer within 30 s")),
        }
    }
    Ok(seen)
}

/// Starts the server and the clients, and waits for both.
async fn run(pool: Arc<ThreadPool>, tally: Arc<Tally>) -> io::Result<Seen> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(serve(listener, pool, tally, stop_rx));
    let mut clients = JoinSet::new();
    for id in 0..CLIENTS {
        clients.spawn(client(addr, id));
    }
    let mut seen = Seen::default();
    while let Some(done) = clients.join_next().await {
        let one = done??;
        seen.answered += one.answered;
        seen.gave_up += one.gave_up;
    }
    let _ = stop_tx.send(true);
    server.await??;
    Ok(seen)
}

fn report(seen: Seen, tally: &Tally, elapsed: Duration) {
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let (requests, slowed) = (get(&tally.requests), get(&tally.slowed));
    println!("{requests} requests in {elapsed:.2?}");
    println!(
        "  clients: {} answered, {} hung up before their answer",
        seen.answered, seen.gave_up
    );
    println!(
        "backpressure: {slowed} of {requests} submits found the queue full and waited \
         for room (average {} ms, longest {} ms) as Pending futures, not blocked threads",
        get(&tally.waited_us) / slowed.max(1) / 1000,
        get(&tally.longest_wait_us) / 1000,
    );
    println!(
        "  queue capacity {QUEUE_CAPACITY}: the most jobs seen queued was {}",
        tally.peak_queued.load(Ordering::Relaxed)
    );
    println!(
        "disconnects: {} while waiting for room (job dropped unqueued), \
         {} with the job queued or running",
        get(&tally.gone_before_queued),
        get(&tally.gone_with_job)
    );
    println!(
        "  jobs cancelled by disconnects: {} before they started, {} stopped mid-work",
        get(&tally.never_started),
        get(&tally.stopped_mid_work)
    );
    // A client can give up just as its answer is written: the write still
    // lands in the socket's buffer, so the server counts it as answered.
    println!(
        "  answered by the server: {} ({} just after their client gave up)",
        get(&tally.answered),
        get(&tally.answered).saturating_sub(seen.answered)
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tally = Arc::new(Tally::default());
    let hook_tally = Arc::clone(&tally);
    let pool = Arc::new(
        ThreadPool::builder()
            .workers(WORKERS)
            .queue_capacity(QUEUE_CAPACITY)
            .thread_name("keys")
            .on_job_done(move |event| {
                if event.outcome == JobOutcome::Cancelled {
                    hook_tally.never_started.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build()?,
    );
    // One executor thread for every socket: the CPU work runs on the pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let seen = runtime.block_on(async {
        timeout(LONG, run(Arc::clone(&pool), Arc::clone(&tally)))
            .await
            .map_err(|_| io::Error::other("the run did not finish within 30 s"))?
    })?;
    let elapsed = started.elapsed();
    drop(runtime);
    // Every handler has finished, so this is the last reference. Joining
    // lets the workers skip the cancelled jobs still queued, which the
    // hook counts.
    Arc::into_inner(pool)
        .ok_or("a handler still holds the pool")?
        .join();
    report(seen, &tally, elapsed);
    Ok(())
}
