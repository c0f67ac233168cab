//! Per-account event processing: each account's events apply in order,
//! accounts run in parallel, and one slow account holds up no one else.
//!
//! Ten accounts send interleaved events. Account 0's backend is slow (every
//! event takes 20 ms); the others take 200 µs. A pool that hashes each key
//! to one thread (the usual "ordered executor") would stall every account
//! that shares account 0's thread; keyed jobs on a brigade pool only wait
//! for their own key's previous event. A checker proves the order per
//! account, and compares the other accounts' rate with their rate in a run
//! where account 0 is as fast as they are.
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

/// Per account, its events' numbers in the order they applied, each with
/// when it finished (counted from the first submit).
type Ledger = HashMap<u32, Vec<(u32, Duration)>>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let unblocked = run(false)?;
    let with_slow = run(true)?;
    let baseline = fast_accounts_done(&unblocked);
    println!("unblocked: every account finished after {baseline:.1?}");
    let fast_done = fast_accounts_done(&with_slow);
    let slow_done = done_after(&with_slow, SLOW_ACCOUNT);
    println!(
        "account {SLOW_ACCOUNT} slow: the other accounts finished after {fast_done:.1?}, account {SLOW_ACCOUNT} after {slow_done:.1?}"
    );
    // The slow account keeps one worker of four busy, so the others may
    // lose a quarter of their rate, never more than half.
    let rate = baseline.as_secs_f64() / fast_done.as_secs_f64();
    println!(
        "the other accounts kept {:.0}% of their unblocked rate",
        rate * 100.0
    );
    if rate < 0.5 || fast_done * 2 > slow_done {
        return Err("the slow account held up the others".into());
    }
    println!("no account waited for the slow one");
    Ok(())
}

/// One run: every account's events through a keyed pool, account
/// `SLOW_ACCOUNT`'s slow if `slow`.
fn run(slow: bool) -> Result<Ledger, Box<dyn std::error::Error>> {
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
                    let cost = if slow && account == SLOW_ACCOUNT {
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
    let mut per_account = Ledger::new();
    for &(account, seq, at) in applied.lock().iter() {
        per_account
            .entry(account)
            .or_default()
            .push((seq, at - start));
    }
    check_order(&per_account)?;
    Ok(per_account)
}

/// Proves every account's events applied, in order.
fn check_order(per_account: &Ledger) -> Result<(), String> {
    for account in 0..ACCOUNTS {
        let events = per_account.get(&account).map_or(&[][..], Vec::as_slice);
        if !events.iter().map(|e| e.0).eq(0..EVENTS_PER_ACCOUNT) {
            return Err(format!("account {account} applied out of order"));
        }
    }
    Ok(())
}

/// When `account`'s last event finished.
fn done_after(per_account: &Ledger, account: u32) -> Duration {
    per_account[&account].last().map_or(Duration::ZERO, |e| e.1)
}

/// When the last of the accounts other than `SLOW_ACCOUNT` finished.
fn fast_accounts_done(per_account: &Ledger) -> Duration {
    (0..ACCOUNTS)
        .filter(|&account| account != SLOW_ACCOUNT)
        .map(|account| done_after(per_account, account))
        .max()
        .unwrap_or_default()
}
