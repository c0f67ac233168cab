//! One connection per worker, opened once and reused for every job.
//!
//! A small line-echo server runs on loopback (started here; it uppercases
//! each line and counts connections). A `WorkerPool` built with
//! `build_with_state` opens one connection per worker, on the worker's own
//! thread, and every job that worker runs talks over it. One job panics
//! half-way through its exchange: its worker is replaced and the
//! replacement opens a fresh connection rather than reuse one that may be
//! mid-message. At the end the program prints how many connections were
//! opened against how many jobs ran.
//!
//! ```text
//! cargo run --release --example per_worker_state
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use brigade::WorkerPool;

const WORKERS: usize = 4;
const JOBS: u32 = 2_000;
/// This job panics after sending its line, leaving its connection with an
/// answer nobody read.
const POISONED: u32 = 777;

/// One worker's connection to the server.
struct Connection {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Connection {
    fn open(addr: std::net::SocketAddr) -> std::io::Result<Self> {
        let writer = TcpStream::connect(addr)?;
        let reader = BufReader::new(writer.try_clone()?);
        Ok(Self { writer, reader })
    }

    fn send(&mut self, line: &str) -> std::io::Result<()> {
        writeln!(self.writer, "{line}")
    }

    fn receive(&mut self) -> std::io::Result<String> {
        let mut answer = String::new();
        self.reader.read_line(&mut answer)?;
        Ok(answer.trim_end().to_owned())
    }
}

/// Starts the echo server; returns its address and its connection count.
fn start_server() -> std::io::Result<(std::net::SocketAddr, Arc<AtomicUsize>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&accepted);
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            counted.fetch_add(1, Ordering::Relaxed);
            thread::spawn(move || echo_upper(stream));
        }
    });
    Ok((addr, accepted))
}

/// Answers each line with the line in upper case, until the client leaves.
fn echo_upper(stream: TcpStream) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        if writeln!(writer, "{}", line.to_uppercase()).is_err() {
            return;
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (addr, accepted) = start_server()?;
    let opened = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&opened);
    let pool = WorkerPool::builder()
        .workers(WORKERS)
        .thread_name("conn")
        .build_with_state(
            move |_index| {
                counted.fetch_add(1, Ordering::Relaxed);
                Connection::open(addr)
            },
            |_ctx, conn: &mut Connection, n: u32| -> std::io::Result<String> {
                conn.send(&format!("item {n}"))?;
                assert!(n != POISONED, "item {n}: lost its answer half-way");
                conn.receive()
            },
        )?;
    // Results are read on another thread while this one submits: both
    // channels are bounded, and a full one slows the other side down.
    let results = pool.results().clone();
    let reader = thread::spawn(move || {
        let (mut answered, mut failed) = (0, 0);
        for output in results.iter() {
            match output.result {
                Ok(Ok(answer)) if answer == format!("ITEM {}", output.index) => answered += 1,
                _ => failed += 1,
            }
        }
        (answered, failed)
    });
    for n in 0..JOBS {
        pool.submit(n)?;
    }
    pool.close();
    let (answered, failed) = reader.join().map_err(|_| "the result reader panicked")?;
    let stats = pool.stats();
    let _ = pool.join();
    println!("{JOBS} jobs on {WORKERS} workers: {answered} answered correctly, {failed} failed");
    println!(
        "connections opened: {} ({WORKERS} workers + {} replacement after a panic); the server accepted {}",
        opened.load(Ordering::Relaxed),
        stats.respawned,
        accepted.load(Ordering::Relaxed),
    );
    Ok(())
}
