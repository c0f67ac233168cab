//! `Sizing::Adaptive` following a workload whose I/O latency changes
//! mid-run. Requests arrive at a steady rate (`--rate`, default 2,000/s);
//! each waits on a simulated backend call and parses the answer for 50 µs.
//! The backend answers in 1 ms, then slows to 10 ms, then recovers — each
//! phase `--phase-secs` long (default 3). Little's Law says the pool needs
//! λ·W workers: about 2 × 1 = 2 in the fast phases, 2 × 10 = 20 in the
//! slow one. The pool starts at the CPU count and finds its own way.
//!
//! Every 250 ms it prints the worker count, the jobs finished per second
//! and λ·W for the current phase; `--svg FILE` writes both over time.
//!
//! ```text
//! cargo run --release --example adaptive
//! cargo run --release --example adaptive -- --rate 4000 --phase-secs 4 --svg adaptive.svg
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use brigade::{Context, Sizing, ThreadPool};
use plotters::coord::Shift;
use plotters::prelude::*;

struct Args {
    rate: f64,
    phase: Duration,
    svg: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        rate: 2_000.0,
        phase: Duration::from_secs(3),
        svg: None,
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let mut value = || given.next().ok_or(format!("{flag} needs a value"));
        let number = |text: String| {
            text.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .ok_or(format!("{flag} wants a positive number, not {text:?}"))
        };
        match flag.as_str() {
            "--rate" => args.rate = number(value()?)?,
            "--phase-secs" => args.phase = Duration::from_secs_f64(number(value()?)?),
            "--svg" => args.svg = Some(value()?),
            other => {
                return Err(format!(
                    "unknown flag {other:?}; use --rate JOBS_PER_SEC, --phase-secs N, --svg FILE"
                ));
            }
        }
    }
    Ok(args)
}

/// The backend's latency at `elapsed` into the run.
fn latency(elapsed: Duration, phase: Duration) -> Duration {
    if elapsed >= phase && elapsed < phase * 2 {
        Duration::from_millis(10)
    } else {
        Duration::from_millis(1)
    }
}

fn spin(iterations: u64) -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..iterations {
        x = black_box(x.rotate_left(5) ^ i).wrapping_mul(0x2545_F491_4F6C_DD1D);
    }
    x
}

/// Iterations of `spin` that take about 50 µs here.
fn calibrate() -> u64 {
    let start = Instant::now();
    black_box(spin(1_000_000));
    (1_000_000.0 * 50e-6 / start.elapsed().as_secs_f64()).max(1.0) as u64
}

struct Row {
    at: f64,
    workers: usize,
    throughput: f64,
    needed: f64,
}

const BLUE_LINE: RGBColor = RGBColor(70, 130, 180);
const GREEN_LINE: RGBColor = RGBColor(0, 100, 0);
const GRAY_LINE: RGBColor = RGBColor(128, 128, 128);

/// One line on a panel: its legend name, colour, whether dashed, and value.
type Line<'a> = (&'a str, RGBColor, bool, &'a dyn Fn(&Row) -> f64);

/// Draws one panel of the chart: `lines` over the run, against seconds.
fn panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    rows: &[Row],
    y_desc: &str,
    lines: &[Line<'_>],
) -> Result<(), Box<dyn std::error::Error>> {
    let x_max = rows.last().map_or(1.0, |r| r.at);
    let y_max = rows
        .iter()
        .flat_map(|r| lines.iter().map(move |line| (line.3)(r)))
        .fold(1e-9, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc(y_desc)
        .x_label_formatter(&|v| format!("{}", (v * 10.0).round() / 10.0))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    for &(name, colour, dashed, value) in lines {
        let points = rows.iter().map(|r| (r.at, value(r)));
        let style = colour.stroke_width(2);
        let drawn = if dashed {
            chart.draw_series(DashedLineSeries::new(points, 6, 4, style))?
        } else {
            chart.draw_series(LineSeries::new(points, style))?
        };
        drawn
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Writes the worker count and the throughput over the run as an SVG chart
/// of two panels, each beside what Little's Law and the offered rate say.
fn chart(path: &str, rows: &[Row], rate: f64) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (680, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        &format!("Sizing::Adaptive, {rate:.0} jobs/s offered, backend 1 ms → 10 ms → 1 ms"),
        ("sans-serif", 16),
    )?;
    let panels = root.split_evenly((2, 1));
    panel(
        &panels[0],
        rows,
        "workers",
        &[
            ("workers", BLUE_LINE, false, &|r| r.workers as f64),
            ("λ·W (Little's Law)", GRAY_LINE, true, &|r| r.needed),
        ],
    )?;
    panel(
        &panels[1],
        rows,
        "jobs / s",
        &[
            ("finished", GREEN_LINE, false, &|r| r.throughput),
            ("offered", GRAY_LINE, true, &|_| rate),
        ],
    )?;
    root.present()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args().map_err(|e| format!("adaptive: {e}"))?;
    let parse = calibrate();
    let pool = Arc::new(
        ThreadPool::builder()
            .sizing(Sizing::Adaptive { min: 1, max: 64 })
            .build()?,
    );
    let total = args.phase * 3;
    let start = Instant::now();
    let finished = Arc::new(AtomicU64::new(0));

    // The producer: one request every 1/rate seconds, on schedule. When
    // the pool falls behind, `execute` blocks on the full queue and the
    // schedule slips: the arrival rate the pool sees drops, as it would for
    // a client waiting on a saturated server.
    let stop = Context::new();
    let producer = {
        let (pool, finished, stop) = (Arc::clone(&pool), Arc::clone(&finished), stop.clone());
        let (gap, phase) = (Duration::from_secs_f64(1.0 / args.rate), args.phase);
        std::thread::spawn(move || {
            let mut next = start;
            while !stop.is_done() {
                next += gap;
                if let Some(early) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(early);
                }
                let finished = Arc::clone(&finished);
                let wait = latency(start.elapsed(), phase);
                let sent = pool.execute(move || {
                    std::thread::sleep(wait);
                    black_box(spin(parse));
                    finished.fetch_add(1, Ordering::Relaxed);
                });
                if sent.is_err() {
                    break;
                }
            }
        })
    };

    println!(
        "{:>6} {:>8} {:>8} {:>6}",
        "t (s)", "workers", "jobs/s", "λ·W"
    );
    let mut rows = Vec::new();
    let tick = Duration::from_millis(250);
    let mut before = 0;
    let mut at = start;
    while at.duration_since(start) < total {
        at += tick;
        if let Some(early) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(early);
        }
        let done = finished.load(Ordering::Relaxed);
        let elapsed = at.duration_since(start);
        let needed = args.rate * (latency(elapsed - tick / 2, args.phase).as_secs_f64() + 50e-6);
        let row = Row {
            at: elapsed.as_secs_f64(),
            workers: pool.stats().workers,
            throughput: (done - before) as f64 / tick.as_secs_f64(),
            needed,
        };
        before = done;
        println!(
            "{:>6.2} {:>8} {:>8.0} {:>6.1}",
            row.at, row.workers, row.throughput, row.needed
        );
        rows.push(row);
    }
    stop.cancel();
    producer.join().map_err(|_| "the producer panicked")?;
    let stats = pool.stats();
    println!("\n{stats}");
    println!(
        "overall: {:.0} jobs/s against {:.0} offered",
        finished.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64(),
        args.rate
    );

    if let Some(path) = &args.svg {
        chart(path, &rows, args.rate)?;
        println!("wrote {path}");
    }
    match Arc::try_unwrap(pool) {
        Ok(pool) => pool.join(),
        Err(_) => return Err("the pool is still shared".into()),
    }
    Ok(())
}
