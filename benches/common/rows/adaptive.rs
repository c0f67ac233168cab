//! The `adaptive` rows: a burst of blocking requests to a loopback TCP
//! server the row starts, which answers each request line 2 ms after it
//! arrives, on a thread per connection. Each run builds a fresh pool, so
//! `Sizing::Adaptive` pays its ramp-up from the CPU count every time; its
//! time is compared with fixed pools of 8 to 64 workers on the same burst
//! (brigade ÷ fastest: adaptive ÷ the best fixed N of the round).

use std::cell::RefCell;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use brigade::{Sizing, ThreadPool};

use crate::common::Latch;
use crate::common::interleave::Row;

/// How long the server takes to answer a request.
const SERVICE: Duration = Duration::from_millis(2);
/// The fixed pool sizes compared.
const FIXED: [usize; 4] = [8, 16, 32, 64];
/// The adaptive pool's bounds.
const ADAPTIVE: Sizing = Sizing::Adaptive { min: 2, max: 64 };
/// A request that takes this long has failed: the bench stops rather
/// than hang.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// `adaptive-1000`.
pub(super) fn burst_1000() -> Row {
    burst(1_000)
}

/// `adaptive-4000`.
pub(super) fn burst_4000() -> Row {
    burst(4_000)
}

fn burst(requests: usize) -> Row {
    let server = Server::start().expect("start the loopback server");
    let addr = server.addr();
    // The brigade entrant owns the server, which stops when the row is dropped.
    let mut row = Row::brigade(move || run(server.addr(), ADAPTIVE, requests));
    for n in FIXED {
        row = row.peer(format!("fixed-{n}"), move || {
            run(addr, Sizing::Fixed(n), requests)
        });
    }
    row
}

/// Builds a pool sized by `sizing` and sends it `requests` requests to
/// `addr`: the time from the build until the last answer.
///
/// The answers are awaited on a latch, not by `join`: `join` stops the
/// adaptive controller before it drains, so a burst that fits in the
/// queue would drain at the starting size and never show the ramp-up.
/// The pool is joined after the clock stops.
fn run(addr: SocketAddr, sizing: Sizing, requests: usize) -> Duration {
    let failures = Arc::new(AtomicUsize::new(0));
    let answered = Latch::new(requests);
    let start = Instant::now();
    let pool = ThreadPool::builder()
        .sizing(sizing)
        .build()
        .expect("pool settings");
    for _ in 0..requests {
        let (failures, answered) = (Arc::clone(&failures), Arc::clone(&answered));
        let job = move || {
            if request(addr).is_err() {
                // ORDERING: Relaxed; read after `join`.
                failures.fetch_add(1, Ordering::Relaxed);
            }
            answered.count_down();
        };
        pool.execute(job).expect("pool open");
    }
    answered.wait();
    let took = start.elapsed();
    pool.join();
    // ORDERING: Relaxed; `join` joined every thread that counted.
    let failed = failures.load(Ordering::Relaxed);
    assert_eq!(failed, 0, "requests to the loopback server failed");
    took
}

thread_local! {
    /// This thread's connection, kept for its next request; closed when
    /// the thread exits (a pool's workers exit at its `join`).
    static CONNECTION: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

/// One request on this thread's connection to `addr`, opened on first use.
fn request(addr: SocketAddr) -> io::Result<()> {
    CONNECTION.with_borrow_mut(|slot| {
        // Taken out while in use: a connection that fails is dropped.
        let mut connection = match slot.take() {
            Some(connection) if connection.to == addr => connection,
            _ => Connection::open(addr)?,
        };
        connection.exchange()?;
        *slot = Some(connection);
        Ok(())
    })
}

/// A client connection: a line out, a line back.
struct Connection {
    to: SocketAddr,
    reader: BufReader<TcpStream>,
    line: String,
}

impl Connection {
    fn open(to: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(to)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        Ok(Self {
            to,
            reader: BufReader::new(stream),
            line: String::new(),
        })
    }

    fn exchange(&mut self) -> io::Result<()> {
        self.reader.get_mut().write_all(b"ping\n")?;
        self.line.clear();
        match self.reader.read_line(&mut self.line)? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            _ => Ok(()),
        }
    }
}

/// The loopback server: an accepting thread, and a thread per connection
/// that answers each line after [`SERVICE`]. Dropping it stops the
/// accepting thread; a connection's thread ends when its client closes.
struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Server {
    fn start() -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let acceptor = thread::Builder::new()
            .name("bench-server".to_owned())
            .spawn(move || accept(&listener, &stopping))?;
        Ok(Self {
            addr,
            stop,
            acceptor: Some(acceptor),
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which then sees `stop`.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept(listener: &TcpListener, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(stream) = stream {
            let _ = thread::Builder::new()
                .name("bench-conn".to_owned())
                .spawn(move || serve(stream));
        }
    }
}

fn serve(stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 {
        thread::sleep(SERVICE);
        writer.write_all(b"pong\n")?;
        line.clear();
    }
    Ok(())
}
