#!/usr/bin/env bash
# Profile webhookfast under generated load (wrk, bounded in time) and leave the results in
# profiles/<timestamp>/ (gitignored):
#
#   scripts/profile.sh cpu      CPU flame graph of Python and Rust frames (py-spy record --native),
#                               then perf's view of native frames (perf record -g; if perf works)
#   scripts/profile.sh memory   memray attached to the worker for the duration: allocation flame
#                               graph (HTML) and summary of what allocates
#   scripts/profile.sh tasks    live thread dumps of the worker under load (py-spy dump, with and
#                               without native frames)
#   scripts/profile.sh all      the three in turn, under one load
#
# Options: -d SECONDS (per profile, default 15)  --alerts N (alerts per request, default 1)
#          --workers N (default 1; the first worker is profiled)  -c CONNECTIONS (wrk, default 32)
#          --database-url URL (default: SQLite in a temp dir)  --server-arg ARG (repeatable)
#
# Needs root or ptrace rights (py-spy, memray attach). Installs what is missing: wrk (apt-get),
# py-spy and memray (pip). The server and wrk are always stopped and temp files removed on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=$(python3 -c 'import sys; print(sys.executable)')  # the real interpreter (not a pyenv shim): py-spy needs it

MODE=${1:-}
case $MODE in cpu|memory|tasks|all) shift ;; *) sed -n '2,20p' "$0"; exit 2 ;; esac
DURATION=15
ALERTS=1
WORKERS=1
CONNECTIONS=32
DATABASE_URL=""
SERVER_ARGS=()
while (($#)); do
    case $1 in
        -d) DURATION=$2; shift 2 ;;
        --alerts) ALERTS=$2; shift 2 ;;
        --workers) WORKERS=$2; shift 2 ;;
        -c) CONNECTIONS=$2; shift 2 ;;
        --database-url) DATABASE_URL=$2; shift 2 ;;
        --server-arg) SERVER_ARGS+=("$2"); shift 2 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done

OUT="$ROOT/profiles/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
TMP=$(mktemp -d -t webhookfast-profile-XXXXXX)
SERVER_PID=""
WRK_PID=""
HINTS=()

log() { printf '[profile %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cleanup() {
    local rc=$?
    if [[ -n $WRK_PID ]] && kill -0 "$WRK_PID" 2>/dev/null; then kill "$WRK_PID" 2>/dev/null || true; fi
    if [[ -n $SERVER_PID ]]; then
        kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 40); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.5; done
        kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
    fi
    wait 2>/dev/null || true
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT INT TERM

# -- tools -------------------------------------------------------------------------------------
SUDO=()
[[ $(id -u) == 0 ]] || SUDO=(sudo -n)
if ! command -v wrk >/dev/null; then
    log "installing wrk (apt-get)"
    "${SUDO[@]}" apt-get install -y -qq wrk >/dev/null
fi
need_pip=()
if [[ $MODE == cpu || $MODE == tasks || $MODE == all ]] && ! command -v py-spy >/dev/null; then need_pip+=(py-spy); fi
if [[ $MODE == memory || $MODE == all ]] && ! "$PY" -c 'import memray' 2>/dev/null; then need_pip+=(memray); fi
if ((${#need_pip[@]})); then
    log "installing ${need_pip[*]} (pip)"
    "$PY" -m pip install -q "${need_pip[@]}"
fi
PYSPY=$(command -v py-spy || echo "$(dirname "$PY")/py-spy")
MEMRAY=(env PYTHONPATH= "$PY" -m memray)

# -- payload and wrk script --------------------------------------------------------------------
"$PY" - "$ROOT/benches" "$ALERTS" "$TMP/body.json" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
import payloads
open(sys.argv[3], "wb").write(payloads.body(int(sys.argv[2])))
EOF
cat >"$TMP/post.lua" <<EOF
local f = io.open("$TMP/body.json", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
EOF

# -- server ------------------------------------------------------------------------------------
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATABASE_URL=${DATABASE_URL:-sqlite:///$TMP/webhookfast.db}
log "starting webhookfast serve on 127.0.0.1:$PORT (workers=$WORKERS, $DATABASE_URL)"
# setsid: the server leads its own process group, so that cleanup reaches Granian's workers too.
env $(env | grep -o '^WEBHOOKFAST_[A-Z_]*' | grep -v '^WEBHOOKFAST_TEST_' | sed 's/^/-u /') \
    setsid "$PY" -m webhookfast serve --host 127.0.0.1 --port "$PORT" --workers "$WORKERS" \
    --database-url "$DATABASE_URL" "${SERVER_ARGS[@]}" >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 120); do
    if "$PY" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/healthz', timeout=1)" 2>/dev/null; then
        break
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { log "server exited:"; tail -20 "$OUT/server.log" >&2; exit 1; }
    sleep 0.25
done
WORKER=""
for _ in $(seq 1 40); do
    WORKER=$(pgrep -P "$SERVER_PID" | head -1 || true)
    [[ -n $WORKER ]] && break
    sleep 0.25
done
WORKER=${WORKER:-$SERVER_PID}
log "profiling worker process $WORKER"

# -- load --------------------------------------------------------------------------------------
phases=1
[[ $MODE == all ]] && phases=4  # cpu (py-spy), cpu (perf), memory, tasks
LOAD_S=$((DURATION * phases + 10))
wrk -t 1 -c "$CONNECTIONS" -d "${LOAD_S}s" --latency -s "$TMP/post.lua" "http://127.0.0.1:$PORT/webhook" \
    >"$OUT/wrk.txt" 2>&1 &
WRK_PID=$!
sleep 3  # warm-up

# -- profiles ----------------------------------------------------------------------------------
profile_cpu() {
    log "cpu: py-spy record --native for ${DURATION}s"
    "$PYSPY" record --native --pid "$WORKER" --duration "$DURATION" --rate 100 \
        --output "$OUT/cpu-flame.svg" >"$OUT/py-spy-record.log" 2>&1 || log "py-spy record failed: see $OUT/py-spy-record.log"
    HINTS+=("cpu-flame.svg       CPU flame graph, Python + Rust/C frames (py-spy --native): open in a browser")
    if command -v perf >/dev/null; then
        log "cpu: perf record -g for ${DURATION}s"
        if perf record -F 499 -g -p "$WORKER" -o "$OUT/perf.data" -- sleep "$DURATION" >"$OUT/perf-record.log" 2>&1; then
            perf report -i "$OUT/perf.data" --stdio --no-children -g none --percent-limit 0.5 --sort dso,symbol 2>/dev/null | head -120 >"$OUT/perf-top.txt" || true
            HINTS+=("perf-top.txt        hottest native symbols (perf report); perf.data for perf report -i / flame graphs")
        else
            log "perf record failed (perf_event_paranoid or no PMU in this container): see $OUT/perf-record.log"
        fi
    fi
}

profile_memory() {
    log "memory: memray attach for ${DURATION}s"
    if "${MEMRAY[@]}" attach --trace-python-allocators --duration "$DURATION" -o "$OUT/memory.bin" "$WORKER" >"$OUT/memray-attach.log" 2>&1; then
        sleep $((DURATION + 2))  # attach returns at once; tracking ends after --duration
        "${MEMRAY[@]}" flamegraph -f -o "$OUT/memory-flame.html" "$OUT/memory.bin" >>"$OUT/memray-attach.log" 2>&1 || true
        COLUMNS=200 "${MEMRAY[@]}" stats "$OUT/memory.bin" >"$OUT/memory-stats.txt" 2>&1 || true
        HINTS+=("memory-flame.html   memray flame graph (memory held at the peak) of the worker under load: open in a browser")
        HINTS+=("memory-stats.txt    memray stats: allocation count and bytes, top locations by size and by count")
    else
        log "memray attach failed: see $OUT/memray-attach.log"
    fi
}

profile_tasks() {
    log "tasks: py-spy dump x3"
    {
        for i in 1 2 3; do
            echo "=== dump $i at $(date +%H:%M:%S.%N)"
            "$PYSPY" dump --pid "$WORKER" || true
            sleep 1
        done
        echo "=== with native frames"
        "$PYSPY" dump --native --pid "$WORKER" || true
    } >"$OUT/threads.txt" 2>&1
    HINTS+=("threads.txt         live thread dumps of the worker under load (py-spy dump, 3x + native)")
}

case $MODE in
    cpu) profile_cpu ;;
    memory) profile_memory ;;
    tasks) profile_tasks ;;
    all) profile_cpu; profile_memory; profile_tasks ;;
esac

kill -INT "$WRK_PID" 2>/dev/null || true  # wrk prints its summary on SIGINT
wait "$WRK_PID" 2>/dev/null || true
WRK_PID=""
HINTS+=("wrk.txt             the load during profiling (wrk, not CO-corrected); server.log: the server's log")

echo
echo "profiles in $OUT:"
for h in "${HINTS[@]}"; do echo "  $h"; done
