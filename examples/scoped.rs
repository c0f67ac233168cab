//! Scoped jobs: jobs that borrow from the caller's stack, run on the pool,
//! and are all joined before `scope` returns — the seed's "index in job,
//! slot in slice" ordering strategy, without `Arc` or copies.
//!
//! ```text
//! cargo run --release --example scoped
//! ```

use brigade::ThreadPool;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = ThreadPool::builder().workers(4).build()?;

    // Borrowed input, and one output slot per chunk that each job writes.
    let text = "the quick brown fox jumps over the lazy dog ".repeat(10_000);
    let lines: Vec<&str> = text.split_inclusive(' ').collect();
    let mut counts = vec![0usize; 8];
    let chunk = lines.len().div_ceil(counts.len());

    pool.scope(|s| {
        for (part, count) in lines.chunks(chunk).zip(counts.iter_mut()) {
            s.spawn(move |_ctx| {
                *count = part.iter().filter(|word| word.contains('o')).count();
            });
        }
        // The scope joins every job before returning, so `counts` is ours
        // again afterwards.
    });
    let total: usize = counts.iter().sum();
    println!("words containing 'o': {total} (per chunk: {counts:?})");
    assert_eq!(total, 40_000);

    // A handle returns the job's value; a panic comes back as an error.
    let longest = pool.scope(|s| {
        let handle = s.spawn(|_ctx| lines.iter().map(|w| w.len()).max().unwrap_or(0));
        handle.join()
    })?;
    println!("longest word: {longest} bytes");
    Ok(())
}
