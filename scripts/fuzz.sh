#!/usr/bin/env bash
# Fuzz the Rust core with cargo-fuzz / libFuzzer: the decoder (webhookfast_core::decode) or, with
# FUZZ_TARGET=promregex, the label-matcher regex parser and its PostgreSQL translation.
#
#   ./scripts/fuzz.sh [seconds]        default 60; extra libFuzzer flags after the seconds
#   FUZZ_TARGET=promregex ./scripts/fuzz.sh 300
#   FUZZ_TARGET=rows ./scripts/fuzz.sh decode → RowEncoder (rows never panic nor over-allocate)
#   FUZZ_SANITIZER=address ./scripts/fuzz.sh 300
#                                      AddressSanitizer build (needs nightly features: enabled on a
#                                      stable toolchain through RUSTC_BOOTSTRAP=1)
#   FUZZ_JOBS=4 ./scripts/fuzz.sh 600  several fuzzing processes sharing the corpus
#
# The corpus (rust/fuzz/corpus/<target>) is seeded (decode: from tests/fixtures/payloads) and grows
# between runs; crashes land in rust/fuzz/artifacts/<target> (replay one: ./scripts/fuzz.sh 0 <file>).
# Not part of scripts/test.sh: it takes minutes to be useful.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_TO_RUN=${1:-60}
shift || true
SANITIZER=${FUZZ_SANITIZER:-none}
JOBS=${FUZZ_JOBS:-1}
FUZZ_DIR=rust/fuzz
TARGET=${FUZZ_TARGET:-decode}
CORPUS=$FUZZ_DIR/corpus/$TARGET
ARTIFACTS=$FUZZ_DIR/artifacts/$TARGET

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

mkdir -p "$CORPUS" "$ARTIFACTS"
if [[ $TARGET == promregex ]]; then
    # First byte: where the pattern ends and the value to match begins.
    printf '\x0a%s' '(.*.*)*#aaaa' >"$CORPUS/seed-catastrophic"
    printf '\x14%s' '(?i)[[:alpha:]]{2,300}\bxKK' >"$CORPUS/seed-classes"
    printf '\x0c%s' 'a{,3}|\pL+$a{,3}' >"$CORPUS/seed-braces"
fi
# decode and rows both start from request bodies: the same seeds and dictionary.
BODIES=0
[[ $TARGET == decode || $TARGET == rows ]] && BODIES=1
# Seed the corpus with the captured payloads (and a few hand-made edge cases) on every run.
for f in tests/fixtures/payloads/*.json; do
    ((BODIES)) || break
    case $f in *.headers.json) continue ;; esac
    cp -f "$f" "$CORPUS/seed-$(basename "$f")"
done
((BODIES)) && printf '%s' '{"labels":{"alertname":"x"}}' >"$CORPUS/seed-generic"
((BODIES)) && printf '%s' '[{"labels":{"a":"b"},"startsAt":"2026-01-01T00:00:00.123456789+05:30","endsAt":"0001-01-01T00:00:00Z"}]' >"$CORPUS/seed-prom"
((BODIES)) && printf '%s' '{"version":"4","alerts":[{"status":"resolved","labels":{"a":"\u0000"},"startsAt":"2026-01-01T00:00:00Z","fingerprint":"0123456789abcdef"}]}' >"$CORPUS/seed-nul"

# A dictionary of the tokens the decoder cares about speeds up the search a lot.
DICT=$FUZZ_DIR/$TARGET.dict
((BODIES)) && DICT=$FUZZ_DIR/decode.dict

build_env=()
if [[ $SANITIZER != none ]]; then
    # Sanitizers need -Z flags: allowed on the stable toolchain with RUSTC_BOOTSTRAP=1.
    build_env=(env RUSTC_BOOTSTRAP=1)
fi

args=(-max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=512 -malloc_limit_mb=256 -timeout=10
      -dict="$DICT" -artifact_prefix="$ARTIFACTS/" -print_final_stats=1)
if ((JOBS > 1)); then
    args+=(-jobs="$JOBS" -workers="$JOBS")
fi

if [[ ${1:-} != "" && -f ${1:-} ]]; then
    # Replay one input (a crash from $ARTIFACTS): no fuzzing.
    exec "${build_env[@]}" cargo fuzz run --fuzz-dir "$FUZZ_DIR" --sanitizer "$SANITIZER" -O "$TARGET" "$1"
fi

"${build_env[@]}" cargo fuzz run --fuzz-dir "$FUZZ_DIR" --sanitizer "$SANITIZER" -O "$TARGET" "$CORPUS" \
    -- "${args[@]}" "$@"
