#!/usr/bin/env bash
# The HTTP benchmark of docs/benchmarks.md ("HTTP API and worker protocol"), one store per
# call: the in-process `quern bench` figures, then single-job and batch enqueue over HTTP
# with wrk (16 and 4 keep-alive connections), drain through the worker protocol (batch lease
# + batch complete) and enqueue→lease latency through long polls (crates/quern-server/
# examples/http_load.rs), all against one `quern serve` on this machine's loopback.
#
#   cargo build --release -p quern-cli && cargo build --release -p quern-server --example http_load
#   bench/http/run.sh sqlite            # a fresh SQLite file in a temp dir
#   bench/http/run.sh redis://127.0.0.1:6379   # a random ?prefix=, deleted afterwards
#
# Needs wrk (Debian: apt-get install -y wrk). DURATION (default 10s) is each wrk run's length.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
BIN="$ROOT/target/release/quern"
LOAD="$ROOT/target/release/examples/http_load"
DURATION="${DURATION:-10s}"
STORE_ARG="${1:-sqlite}"
DIR="$(mktemp -d)"
PORT="${PORT:-18080}"
SERVER=""
PREFIX=""
cleanup() {
    if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
    if [ -n "$PREFIX" ]; then
        redis-cli -u "$STORE_BASE" --scan --pattern "$PREFIX*" | xargs -r -n 1000 redis-cli -u "$STORE_BASE" del >/dev/null
    fi
    rm -rf "$DIR"
}
trap cleanup EXIT

if [ "$STORE_ARG" = sqlite ]; then
    STORE="sqlite://$DIR/quern.db"
else
    STORE_BASE="$STORE_ARG"
    PREFIX="bench-http-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
    STORE="$STORE_ARG?prefix=$PREFIX"
fi
export QUERN_LOG=warn

echo "== $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD) store ${STORE_ARG} load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== in-process: quern bench"
(cd "$DIR" && "$BIN" --json bench --store "$STORE") | tee "$DIR/inproc.json"

(cd "$DIR" && QUERN_STORE="$STORE" exec "$BIN" serve --addr "127.0.0.1:$PORT" 2>"$DIR/serve.log") &
SERVER=$!
for _ in $(seq 1 100); do
    grep -q "listening on" "$DIR/serve.log" 2>/dev/null && break
    sleep 0.1
done
URL="http://127.0.0.1:$PORT"

echo "== single-job enqueue over HTTP, 16 keep-alive connections (wrk)"
QUEUE=http-single wrk -t2 -c16 -d"$DURATION" --latency -s bench/http/enqueue.lua "$URL" | tail -1
echo "== batch enqueue over HTTP, 1000 jobs per request, 4 connections (wrk)"
QUEUE=http-batch BATCH=1000 wrk -t2 -c4 -d"$DURATION" -s bench/http/batch.lua "$URL" | tail -1
echo "== drain through the worker protocol (16 HTTP workers, lease max 100, batch complete)"
"$LOAD" drain --addr "127.0.0.1:$PORT" --jobs 50000 --workers 16 --batch 100
echo "== enqueue→lease through long polls at 1000 jobs/s"
"$LOAD" latency --addr "127.0.0.1:$PORT" --jobs 5000 --rate 1000 --workers 4
echo "== done $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
