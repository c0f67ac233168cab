//! Per-account event processing: each account's events apply in order,
//! accounts run in parallel, and one slow account holds up no one else.
//!
//! Ten accounts send interleaved events. Account 0's backend is slow (every
//! event takes 20 ms); the others take 200 µs. A pool that hashes each key
//! to one thread (the usual "ordered executor") would stall every account
//! that shares account 0's thread; keyed jobs on a brigade pool only wait
//! for their own key's previous event. A checker then proves the order per
//! account and compares each account's rate with the slow one's.
//!
//! ```text
//! cargo run --release --example keyed
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brigade::ThreadPool;
use parking_lot::Mutex;

const ACCOUNTS: u32 = 10;
const EVENTS_PER_ACCOUNT: u32 = 40;
const SLOW_ACCOUNT: u32 = 0;

/// One applied event: its account, its number within the account, and
/// when it finished.
type Applied = (u32, u32, Instant);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = ThreadPool::builder()
        .workers(4)
        .thread_name("ledger")
        .build()?;
    let applied: Arc<Mutex<Vec<Applied>>> = Arc::default();
    let start = Instant::now();
    // Interleaved, as events arrive from a log: a0 a1 … a9 a0 a1 …
    for seq in 0..EVENTS_PER_ACCOUNT {
        for account in 0..ACCOUNTS {
            let applied = Arc::clone(&applied);
            pool.keyed(account)
                .execute(move || {
                    let cost = if account == SLOW_ACCOUNT {
                        Duration::from_millis(20)
                    } else {
                        Duration::from_micros(200)
                    };
                    std::thread::sleep(cost);
                    applied.lock().push((account, seq, Instant::now()));
                })
                .map_err(|e| e.kind())?;
        }
    }
    pool.join();
    check(&applied.lock(), start)
}

/// Proves every account's events applied in order, and that the fast
/// accounts finished long before the slow one.
fn check(applied: &[Applied], start: Instant) -> Result<(), Box<dyn std::error::Error>> {
    let mut per_account: HashMap<u32, Vec<(u32, Instant)>> = HashMap::new();
    for &(account, seq, at) in applied {
        per_account.entry(account).or_default().push((seq, at));
    }
    let mut fast_done = Duration::ZERO;
    for account in 0..ACCOUNTS {
        let events = &per_account[&account];
        let in_order = events.iter().map(|e| e.0).eq(0..EVENTS_PER_ACCOUNT);
        if !in_order {
            return Err(format!("account {account} applied out of order").into());
        }
        let done = events.last().map_or(Duration::ZERO, |e| e.1 - start);
        if account != SLOW_ACCOUNT {
            fast_done = fast_done.max(done);
        }
        println!(
            "account {account}: {EVENTS_PER_ACCOUNT} events in order, done after {done:>8.1?}"
        );
    }
    let slow_done = per_account[&SLOW_ACCOUNT]
        .last()
        .map_or(Duration::ZERO, |e| e.1 - start);
    println!(
        "every fast account finished after {fast_done:.1?}; the slow one after {slow_done:.1?}"
    );
    if fast_done * 2 > slow_done {
        return Err("the slow account held up the others".into());
    }
    println!("no account waited for the slow one");
    Ok(())
}
