//! The seed's fetch → parse → save pipeline: three stages with their own
//! worker counts and bounded buffers, simulated network latency, and one
//! input that fails to parse.
//!
//! The pipeline runs twice: fail-fast (the default), where the bad item
//! cancels everything and is returned; and collecting errors, where the bad
//! item is recorded and the rest are saved.
//!
//! ```text
//! cargo run --release --example pipeline
//! ```

use std::time::{Duration, Instant};

use brigade::{Cancelled, Context, Pipeline, PipelineBuildError, PipelineError};

/// A fetched page.
struct Page {
    url: String,
    body: String,
}

/// A parsed record.
struct Record {
    url: String,
    price_cents: u64,
}

#[derive(Debug)]
enum Error {
    Cancelled(Cancelled),
    Parse { url: String, body: String },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cancelled(reason) => write!(f, "{reason}"),
            Self::Parse { url, body } => write!(f, "{url}: cannot parse price {body:?}"),
        }
    }
}

/// Simulates an HTTP GET: 5–40 ms of latency that wakes early if the
/// pipeline is cancelled.
fn fetch(ctx: &Context, url: String) -> Result<Page, Error> {
    let n: u64 = url
        .rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    ctx.sleep(Duration::from_millis(5 + (n * 7) % 36))
        .map_err(Error::Cancelled)?;
    // Item 13's page is malformed.
    let body = if n == 13 {
        "N/A".to_owned()
    } else {
        format!("{}.{:02}", n * 3, n % 100)
    };
    Ok(Page { url, body })
}

fn parse(_ctx: &Context, page: Page) -> Result<Record, Error> {
    let (units, cents) = page.body.split_once('.').ok_or_else(|| Error::Parse {
        url: page.url.clone(),
        body: page.body.clone(),
    })?;
    let value = |s: &str| {
        s.parse::<u64>().map_err(|_| Error::Parse {
            url: page.url.clone(),
            body: page.body.clone(),
        })
    };
    Ok(Record {
        price_cents: value(units)? * 100 + value(cents)?,
        url: page.url,
    })
}

/// Simulates a database write: 2 ms.
fn save(ctx: &Context, record: Record) -> Result<String, Error> {
    ctx.sleep(Duration::from_millis(2))
        .map_err(Error::Cancelled)?;
    Ok(format!("{} = {}", record.url, record.price_cents))
}

fn pipeline(ctx: &Context) -> Pipeline<String, String, Error> {
    Pipeline::new(ctx)
        .stage("fetch", 8, fetch) // I/O-bound: many workers
        .buffer(16)
        .stage("parse", 2, parse) // CPU-bound: a few
        .stage("save", 2, save)
        .ordered()
}

fn urls() -> impl Iterator<Item = String> {
    (0..40).map(|n| format!("https://shop.example/items/{n}"))
}

fn main() -> Result<(), PipelineBuildError> {
    let ctx = Context::new().with_timeout(Duration::from_secs(30));

    println!("== fail-fast (default)");
    let started = Instant::now();
    match pipeline(&ctx).build()?.run(urls()) {
        Ok(out) => println!("saved {} records", out.outputs.len()),
        Err(PipelineError::Stage(failure)) => {
            println!("stopped after {:.0?}: {failure}", started.elapsed());
        }
        Err(err) => println!("failed: {err}"),
    }

    println!("\n== collecting errors");
    let started = Instant::now();
    match pipeline(&ctx).collect_errors().build()?.run(urls()) {
        Ok(out) => {
            for line in out.outputs.iter().take(3) {
                println!("  {line}");
            }
            println!(
                "  … {} records saved in {:.0?}",
                out.outputs.len(),
                started.elapsed()
            );
            for failure in &out.failures {
                println!("  failed: {failure}");
            }
            println!(
                "\n{:<6} {:>9} {:>6} {:>10}",
                "stage", "completed", "failed", "cancelled"
            );
            for stage in &out.stages {
                println!(
                    "{:<6} {:>9} {:>6} {:>10}",
                    stage.name, stage.stats.completed, stage.stats.failed, stage.stats.cancelled
                );
            }
        }
        Err(err) => println!("failed: {err}"),
    }
    Ok(())
}
