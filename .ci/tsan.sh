#!/usr/bin/env bash
# ThreadSanitizer pass over the concurrency-heavy tests (issue 6).
#
# Builds the tests (and std) with `-Zsanitizer=thread` on the nightly
# toolchain and
# runs them with the suppressions in .ci/tsan.supp (only proven false
# positives). Any other TSan report fails the run. Where no nightly
# toolchain is installed, says so loudly and skips rather than failing CI.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "!!! no nightly toolchain installed: SKIPPING the ThreadSanitizer pass !!!"
  exit 0
fi

# std is rebuilt with the sanitizer (-Zbuild-std): an uninstrumented std
# hides synchronisation TSan must see (Arc's release/acquire pair on drop
# uses a fence that only an instrumented std replaces with a load), which
# would otherwise show up as false races. That needs the rust-src component.
if ! rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
  timeout 300 rustup component add rust-src --toolchain nightly >/dev/null 2>&1 || true
fi
if ! rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
  echo "!!! nightly rust-src is not available: SKIPPING the ThreadSanitizer pass !!!"
  exit 0
fi

target="x86_64-unknown-linux-gnu"
export RUSTFLAGS="-Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer"
export RUSTDOCFLAGS="$RUSTFLAGS"
export TSAN_OPTIONS="suppressions=$(pwd)/.ci/tsan.supp halt_on_error=1 exitcode=66 second_deadlock_stack=1"
# A separate target directory: sanitizer builds must not mix with normal ones.
export CARGO_TARGET_DIR="target/tsan"
# No backtraces: the first one symbolises the whole instrumented binary,
# which under TSan takes longer than a test's 30 s limit (a test whose
# task panics on purpose, errgroup's group_tasks_show_in_stats, then
# fails as a hang whenever the caller's environment sets RUST_BACKTRACE=1).
export RUST_BACKTRACE=0

# The tests whose point is threads meeting: pools, shutdown, cancellation,
# the coordination primitives and the stress test. One test thread at a
# time keeps TSan's memory and time in bounds on a 2-core machine.
tests=(pool backpressure shutdown supervision timeouts context worker_pool map scope pipeline
       semaphore errgroup rate_limited_pools chaos keyed lanes run_here schedule)
args=()
for t in "${tests[@]}"; do
  # A test is a file, tests/$t.rs, or a folder with tests/$t/main.rs (chaos).
  if [ -f "tests/$t.rs" ] || [ -f "tests/$t/main.rs" ]; then args+=(--test "$t"); fi
done

# The chaos suite runs half its rounds here: under TSan each round takes
# several times as long, and the full count runs in the plain `cargo test`.
export BRIGADE_CHAOS_PERCENT=50

# Skipped here: a test of map's chunk growth, which depends on trivial
# items running in well under 100 µs — not so under TSan's instrumentation.
# It has no threads meeting that the rest of tests/map.rs lacks.
cargo +nightly test -Zbuild-std --target "$target" --lib "${args[@]}" -- --test-threads=2 \
  --skip automatic_chunks_grow_for_trivial_items_only
echo "ThreadSanitizer: no reports"
