//! How many workers? Runs one workload — each job computes for `--cpu-us`
//! and then waits for `--io-ms` — over a sweep of worker counts N, and
//! prints the measured throughput beside Little's Law's prediction and the
//! CPU utilisation, then a recommended N. With `--svg FILE` it also writes
//! a chart of throughput against N.
//!
//! ```text
//! cargo run --release --example sizing -- --cpu-us 50 --io-ms 2 --jobs 2000
//! cargo run --release --example sizing -- --cpu-us 50 --io-ms 2 --jobs 2000 --svg sizing.svg
//! ```
//!
//! The prediction: a job occupies a worker for W = cpu + io, so N workers
//! finish at most N / W jobs a second (Little's Law); and the CPUs finish at
//! most C / cpu a second. Throughput is the smaller of the two, so it grows
//! linearly with N until N = C × W / cpu, then stays flat.

use std::hint::black_box;
use std::time::{Duration, Instant};

use brigade::{ThreadPool, sizing};
use plotters::prelude::*;

struct Args {
    cpu: Duration,
    io: Duration,
    jobs: usize,
    svg: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        cpu: Duration::from_micros(50),
        io: Duration::from_millis(2),
        jobs: 2000,
        svg: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--cpu-us" => args.cpu = Duration::from_micros(number(&value()?)?),
            "--io-ms" => args.io = Duration::from_millis(number(&value()?)?),
            "--jobs" => args.jobs = number(&value()?)?.max(1) as usize,
            "--svg" => args.svg = Some(value()?),
            other => {
                return Err(format!(
                    "unknown flag {other:?}; use --cpu-us N, --io-ms N, --jobs N, --svg FILE"
                ));
            }
        }
    }
    if args.cpu.is_zero() && args.io.is_zero() {
        return Err("a job must take some time: give --cpu-us or --io-ms above 0".to_owned());
    }
    Ok(args)
}

fn number(text: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|_| format!("expected a whole number, got {text:?}"))
}

/// A fixed amount of arithmetic, calibrated to take about `target`.
fn calibrate(target: Duration) -> u64 {
    let mut iterations = 1_000u64;
    loop {
        let start = Instant::now();
        black_box(spin(iterations));
        let took = start.elapsed();
        if took >= Duration::from_millis(20) {
            return (iterations as f64 * target.as_secs_f64() / took.as_secs_f64()) as u64;
        }
        iterations *= 2;
    }
}

fn spin(iterations: u64) -> u64 {
    let mut x = 1u64;
    for i in 0..iterations {
        x = black_box(x.rotate_left(7) ^ i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    x
}

/// CPU time this process has used, from /proc (Linux); `None` elsewhere.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every mainstream Linux.
    Some(Duration::from_millis(ticks * 10))
}

struct Row {
    n: usize,
    throughput: f64,
    predicted: f64,
    utilisation: Option<f64>,
}

fn run(n: usize, args: &Args, iterations: u64) -> Result<Row, Box<dyn std::error::Error>> {
    let pool = ThreadPool::builder().workers(n).build()?;
    let (cpu_before, start) = (cpu_time(), Instant::now());
    let io = args.io;
    for _ in 0..args.jobs {
        pool.execute(move || {
            black_box(spin(iterations));
            std::thread::sleep(io);
        })
        .map_err(|e| e.kind())?;
    }
    pool.join();
    let wall = start.elapsed();
    let cpus = sizing::cpu_bound() as f64;
    let w = (args.cpu + args.io).as_secs_f64();
    let by_workers = n as f64 / w;
    let by_cpus = if args.cpu.is_zero() {
        f64::INFINITY
    } else {
        cpus / args.cpu.as_secs_f64()
    };
    let utilisation = cpu_time().zip(cpu_before).map(|(after, before)| {
        (after.saturating_sub(before)).as_secs_f64() / (wall.as_secs_f64() * cpus)
    });
    Ok(Row {
        n,
        throughput: args.jobs as f64 / wall.as_secs_f64(),
        predicted: by_workers.min(by_cpus),
        utilisation,
    })
}

const MEASURED: RGBColor = RGBColor(70, 130, 180);
const PREDICTED: RGBColor = RGBColor(128, 128, 128);

/// Writes throughput against N, measured and predicted, as an SVG chart.
fn chart(path: &str, rows: &[Row], args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    // x is log2(N), so the doubling sweep is evenly spaced.
    let x = |r: &Row| (r.n as f64).log2();
    let x_max = rows.last().map_or(1.0, x);
    let y_max = rows
        .iter()
        .flat_map(|r| [r.throughput, r.predicted])
        .fold(1e-9, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (680, 360)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Throughput vs workers: {} µs CPU + {} ms wait per job",
                args.cpu.as_micros(),
                args.io.as_millis()
            ),
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("workers (N)")
        .y_desc("jobs / s")
        .x_labels(rows.len())
        .x_label_formatter(&|v| format!("{:.0}", v.exp2()))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            rows.iter().map(|r| (x(r), r.throughput)),
            MEASURED.stroke_width(2),
        ))?
        .label("measured")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], MEASURED.stroke_width(2)));
    chart
        .draw_series(DashedLineSeries::new(
            rows.iter().map(|r| (x(r), r.predicted)),
            6,
            4,
            PREDICTED.stroke_width(2),
        ))?
        .label("Little's Law")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], PREDICTED.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args().map_err(|e| format!("sizing: {e}"))?;
    let iterations = calibrate(args.cpu);
    let cpus = sizing::cpu_bound();
    println!(
        "{} jobs of {} µs CPU + {} ms wait on {cpus} CPUs",
        args.jobs,
        args.cpu.as_micros(),
        args.io.as_millis()
    );
    println!(
        "{:>5} {:>12} {:>12} {:>8}",
        "N", "jobs/s", "predicted", "CPU use"
    );
    let mut rows = Vec::new();
    let mut n = 1;
    while n <= 256 {
        let row = run(n, &args, iterations)?;
        let use_text = row
            .utilisation
            .map_or("n/a".to_owned(), |u| format!("{:.0}%", u * 100.0));
        println!(
            "{:>5} {:>12.0} {:>12.0} {:>8}",
            row.n, row.throughput, row.predicted, use_text
        );
        rows.push(row);
        n *= 2;
    }
    let best = rows.iter().map(|r| r.throughput).fold(0.0, f64::max);
    let recommended = rows
        .iter()
        .find(|r| r.throughput >= 0.95 * best)
        .map_or(1, |r| r.n);
    // The knee of the prediction: CPUs × (wait + compute) / compute.
    let knee = if args.cpu.is_zero() {
        None
    } else {
        Some(
            (cpus as f64 * (args.cpu + args.io).as_secs_f64() / args.cpu.as_secs_f64()).ceil()
                as usize,
        )
    };
    println!(
        "\nrecommended N: {recommended} (smallest N within 5% of the best measured throughput)"
    );
    if let Some(knee) = knee {
        println!("Little's Law knee: N = CPUs x (compute + wait) / compute = {knee}");
    }
    if let Some(path) = &args.svg {
        chart(path, &rows, &args)?;
        println!("wrote {path}");
    }
    Ok(())
}
