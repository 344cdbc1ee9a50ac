#!/usr/bin/env bash
# The one test command of webhookfast: installs what the tests need (only when missing), builds the
# extension, runs the linters and every suite. Safe to run twice; works from any directory; CI=true
# runs it non-interactively (.ci/run calls it).
#
#   ./scripts/test.sh                 everything
#   WEBHOOKFAST_SKIP_INSTALL=1 ...    skip apt-get, pip and rustup (use what is there)
#   WEBHOOKFAST_SKIP_BENCH=1 ...      skip the codspeed benchmarks
#   extra arguments are passed to `pytest tests` (e.g. ./scripts/test.sh -k e2e -x)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

PYTHON=${PYTHON:-python}
export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# Tests that need Debian's PostgreSQL / Alertmanager fail (instead of skipping) when they are absent.
export WEBHOOKFAST_TEST_REQUIRE_SERVICES=1
# Every process started below inherits this marker; the exit trap ends any that are still alive.
WEBHOOKFAST_TEST_RUN_ID="wf-$$-$(date +%s%N)"
export WEBHOOKFAST_TEST_RUN_ID

START=$(date +%s)
section() {
    printf '\n=== %s  [+%ss]\n' "$*" "$(( $(date +%s) - START ))"
}

# Processes carrying our marker in their environment (started by this run, directly or not).
leftover_pids() {
    local env_file pid
    for env_file in /proc/[0-9]*/environ; do
        pid=${env_file#/proc/}
        pid=${pid%/environ}
        [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
        if grep -qzxF "WEBHOOKFAST_TEST_RUN_ID=$WEBHOOKFAST_TEST_RUN_ID" "$env_file" 2>/dev/null; then
            echo "$pid"
        fi
    done
}

cleanup() {
    local rc=$? pids pid
    pids=$(leftover_pids || true)
    if [[ -n $pids ]]; then
        echo "test.sh: ending processes left behind by the tests:" >&2
        for pid in $pids; do
            ps -o pid=,args= -p "$pid" >&2 || true
            kill -TERM "$pid" 2>/dev/null || true
        done
        sleep 2
        for pid in $pids; do
            kill -KILL "$pid" 2>/dev/null || true
        done
    fi
    exit "$rc"
}
trap cleanup EXIT

# --------------------------------------------------------------------------------------------------
section "System packages (Debian)"
need_pkgs=()
# chromium + chromium-driver: the web page's tests run in a real headless browser (Selenium).
# valgrind: benches/test_allocations.py counts allocations under callgrind (no profiler inside).
for pkg in postgresql prometheus-alertmanager prometheus wrk chromium chromium-driver valgrind; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ $status != "install ok installed" ]]; then
        need_pkgs+=("$pkg")
    fi
done
if [[ ${WEBHOOKFAST_SKIP_INSTALL:-} == 1 ]]; then
    echo "skipped (WEBHOOKFAST_SKIP_INSTALL=1); missing: ${need_pkgs[*]:-none}"
elif ((${#need_pkgs[@]})); then
    SUDO=()
    if [[ $(id -u) != 0 ]]; then SUDO=(sudo -n); fi
    echo "installing: ${need_pkgs[*]}"
    "${SUDO[@]}" apt-get update -qq
    # --no-install-recommends keeps it small; policy-rc.d stops Debian from starting the services
    # (the tests run their own PostgreSQL and Alertmanager; the machine has no init system anyway).
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
        "${SUDO[@]}" chmod +x "$policy"
        created_policy=1
    fi
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}"
    if ((created_policy)); then "${SUDO[@]}" rm -f "$policy"; fi
else
    echo "all present: postgresql prometheus-alertmanager prometheus wrk chromium chromium-driver valgrind"
fi

# --------------------------------------------------------------------------------------------------
section "Python package (pip install -e '.[test]'; maturin builds the extension in release mode)"
if [[ ${WEBHOOKFAST_SKIP_INSTALL:-} == 1 ]]; then
    echo "skipped (WEBHOOKFAST_SKIP_INSTALL=1)"
else
    pip_args=(-q)
    # With maturin already installed, skip pip's isolated build environment (saves a download and
    # ~10 s per run); cargo's own cache makes an unchanged rebuild quick.
    if "$PYTHON" -c 'import maturin' 2>/dev/null; then
        pip_args+=(--no-build-isolation)
    fi
    "$PYTHON" -m pip install "${pip_args[@]}" -e '.[test]'
fi
"$PYTHON" -c 'import webhookfast._core as c; print("webhookfast._core", c.__version__, "from", c.__file__)'

# --------------------------------------------------------------------------------------------------
section "Lint (ruff check, ruff format --check, mypy, cargo fmt --check, cargo clippy -D warnings)"
# Configured in pyproject.toml ([tool.ruff], [tool.mypy]: strict, with the pydantic plugin); ruff and
# mypy come with the test extra. All five run, then any failure fails the script.
rust_lints_present() { cargo clippy --version >/dev/null 2>&1 && cargo fmt --version >/dev/null 2>&1; }
if ! rust_lints_present; then
    if [[ ${WEBHOOKFAST_SKIP_INSTALL:-} != 1 ]] && command -v rustup >/dev/null 2>&1; then
        echo "installing: rustup component add clippy rustfmt"
        rustup component add clippy rustfmt || true # the check below says what is still missing
    fi
    if ! rust_lints_present; then
        echo "test.sh: the lint step needs cargo clippy and cargo fmt, and they are missing." \
            "Install them with 'rustup component add clippy rustfmt' (without rustup: the packages" \
            "of cargo's toolchain, e.g. Debian's rust-clippy and rustfmt)." >&2
        exit 1
    fi
fi
lint_failed=()
lint() {
    echo "+ $*"
    if ! "$@"; then
        lint_failed+=("$*")
    fi
}
lint "$PYTHON" -m ruff check .
lint "$PYTHON" -m ruff format --check .
lint "$PYTHON" -m mypy
lint cargo fmt --check
lint cargo clippy --workspace --all-targets --quiet -- -D warnings
if ((${#lint_failed[@]})); then
    printf 'test.sh: lint failed: %s\n' "${lint_failed[@]}" >&2
    exit 1
fi

# --------------------------------------------------------------------------------------------------
section "Rust unit tests (cargo test -p webhookfast-core)"
# The binding crate (webhookfast-py) is a cdylib that links against libpython: it is tested from
# Python below; the pure core crate is tested here.
cargo test -p webhookfast-core --quiet

# --------------------------------------------------------------------------------------------------
section "Type stubs (mypy.stubtest webhookfast._core)"
"$PYTHON" -m mypy.stubtest webhookfast._core --allowlist scripts/stubtest-allowlist.txt

# --------------------------------------------------------------------------------------------------
section "Python tests (pytest tests)"
"$PYTHON" -m pytest tests -q -ra "$@"

# --------------------------------------------------------------------------------------------------
section "Benchmarks (pytest benches --codspeed)"
if [[ ${WEBHOOKFAST_SKIP_BENCH:-} == 1 ]]; then
    echo "skipped (WEBHOOKFAST_SKIP_BENCH=1)"
elif [[ -d benches ]] && find benches -name '*.py' -print -quit | grep -q .; then
    set +e
    "$PYTHON" -m pytest benches --codspeed -q
    rc=$?
    set -e
    if [[ $rc == 5 ]]; then
        echo "no benchmarks collected (pytest exit 5): nothing to run"
    elif [[ $rc != 0 ]]; then
        exit "$rc"
    fi
else
    echo "no benchmarks in benches/"
fi

section "All tests passed (${ROOT})"
