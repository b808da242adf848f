#!/usr/bin/env bash
# Scores the simulator (or the test suite) against the mutation catalogue in this directory.
#
# usage: rafttest/mutants/run.sh [--only NN[,NN...]] [--mode sim|tests] [--timeout SECS]
#                                [--keep-going] [--dir DIR] [-- RAFT-SIM ARGS...]
#
#   --only NN,...   run only these mutants (by number: 03,17 or 3,17)
#   --dir DIR       take the NN-name.patch files from DIR instead of this directory (another
#                   catalogue: a holdout, or cargo-mutants' mutants exported by export-cargo-mutants.sh)
#   --mode sim      (default) build raft-sim in release and run it with the RAFT-SIM ARGS
#                   (default: --seeds 1000); caught = exit status 1 with a FAILED line
#   --mode tests    run `cargo test -p raft-core -p rafttest -q` (debug); caught = nonzero exit
#   --timeout SECS  wall-clock limit of one run (default: 3x the baseline run, at least 300 s;
#                   tests mode: at least 1800 s); a run killed by it is reported as "timeout"
#   --keep-going    do not abort when the unmutated baseline is not clean
#
# Environment: MUTANTS_SCRATCH (default /tmp/raft-mutants) is the scratch copy of the repository,
# refreshed from the working tree before every run (so it tests the simulator as it is now), with
# its own CARGO_TARGET_DIR=$MUTANTS_SCRATCH/target reused between mutants. Logs go to
# $MUTANTS_SCRATCH/mutant-logs/, the final table to $MUTANTS_SCRATCH/report.md (and stdout).
# Progress goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
scratch="${MUTANTS_SCRATCH:-/tmp/raft-mutants}"
target="$scratch/target"
logs="$scratch/mutant-logs"

only=""
mode="sim"
timeout_secs=""
keep_going=0
dir="$here"
sim_args=(--seeds 1000)

usage() { sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --only) only="${2:?--only needs a list}"; shift 2 ;;
        --only=*) only="${1#--only=}"; shift ;;
        --mode) mode="${2:?--mode needs sim or tests}"; shift 2 ;;
        --mode=*) mode="${1#--mode=}"; shift ;;
        --timeout) timeout_secs="${2:?--timeout needs seconds}"; shift 2 ;;
        --timeout=*) timeout_secs="${1#--timeout=}"; shift ;;
        --keep-going) keep_going=1; shift ;;
        --dir) dir="$(cd "${2:?--dir needs a directory}" && pwd)"; shift 2 ;;
        --dir=*) dir="$(cd "${1#--dir=}" && pwd)"; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; if [[ $# -gt 0 ]]; then sim_args=("$@"); fi; break ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
case "$mode" in sim|tests) ;; *) echo "--mode must be sim or tests" >&2; exit 2 ;; esac
for tool in rsync patch cargo timeout; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done

# The catalogue, in order, filtered by --only.
declare -a patches=()
for p in "$dir"/[0-9][0-9]-*.patch "$dir"/[0-9][0-9][0-9]-*.patch; do
    [[ -e "$p" ]] || continue
    num="$(basename "$p" | cut -d- -f1)"
    if [[ -n "$only" ]]; then
        keep=0
        IFS=',' read -r -a wanted <<< "$only"
        for w in "${wanted[@]}"; do
            [[ $((10#$w)) -eq $((10#$num)) ]] && keep=1
        done
        [[ $keep -eq 1 ]] || continue
    fi
    patches+=("$p")
done
[[ ${#patches[@]} -gt 0 ]] || { echo "no mutant selected" >&2; exit 2; }

mkdir -p "$scratch" "$logs"
export CARGO_TARGET_DIR="$target"
# Faster release builds; every mutant rebuilds raft-core and what depends on it.
export CARGO_PROFILE_RELEASE_LTO=false
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
export CARGO_PROFILE_RELEASE_DEBUG=0
export CARGO_TERM_COLOR=never

say() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# Copies the working tree into the scratch copy (no target, no .git). rsync keeps modification
# times, so a file restored to its unmutated content gets back an old time and cargo would keep
# the mutated build: touch the core's sources so it is always rebuilt.
refresh() {
    rsync -a --delete --exclude target --exclude .git \
        --exclude /mutant-logs --exclude /report.md "$repo/" "$scratch/"
    find "$scratch/raft-core/src" -name '*.rs' -exec touch {} +
}

header_field() { # file field
    sed -n "s/^$2: //p" "$1" | head -n 1
}

build() { # log
    if [[ "$mode" == sim ]]; then
        (cd "$scratch" && cargo build --release -p rafttest --bin raft-sim) >"$1" 2>&1
    else
        (cd "$scratch" && cargo test -p raft-core -p rafttest --no-run -q) >"$1" 2>&1
    fi
}

# Runs the check; sets run_rc, run_secs.
run_check() { # log limit
    local start end
    start=$(date +%s.%N)
    set +e
    if [[ "$mode" == sim ]]; then
        (cd "$scratch" && timeout -k 10 "$2" "$target/release/raft-sim" "${sim_args[@]}") >"$1" 2>&1
    else
        (cd "$scratch" && timeout -k 10 "$2" cargo test -p raft-core -p rafttest -q) >"$1" 2>&1
    fi
    run_rc=$?
    set -e
    end=$(date +%s.%N)
    run_secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", b - a }')
}

# Classifies a finished run; sets outcome, seed, reason.
classify() { # log
    seed="-"
    reason="-"
    if [[ $run_rc -eq 124 || $run_rc -eq 137 ]]; then
        outcome="timeout"
        return
    fi
    if [[ "$mode" == sim ]]; then
        if [[ $run_rc -eq 0 ]]; then
            outcome="missed"
        elif [[ $run_rc -eq 1 ]] && grep -q 'FAILED' "$1"; then
            outcome="caught"
            seed="$(sed -n 's/^seed *\([0-9][0-9]*\): FAILED.*/\1/p' "$1" | head -n 1)"
            [[ -n "$seed" ]] || seed="?"
            reason="$(sed -n 's/^VIOLATION at event [0-9]*: //p' "$1" | head -n 1)"
            # The property's name (before the first colon), else the first words; a leading
            # "node N: " (an error of one node's driver) is skipped.
            if [[ "$reason" =~ ^node\ [0-9]+:\ (.*)$ ]]; then
                reason="${BASH_REMATCH[1]}"
            fi
            if [[ "$reason" == *:* ]]; then
                reason="${reason%%:*}"
            else
                reason="$(echo "$reason" | awk '{ for (i = 1; i <= NF && i <= 8; i++) printf "%s%s", $i, (i < NF && i < 8 ? " " : "") }')"
            fi
            [[ -n "$reason" ]] || reason="?"
        elif grep -q "panicked at" "$1"; then
            outcome="panic"
            reason="$(grep -m1 -A1 'panicked at' "$1" | tail -n 1 | cut -c1-60)"
        else
            outcome="error (exit $run_rc)"
            reason="$(grep -v '^\s*$' "$1" | tail -n 1 | cut -c1-60)"
        fi
    else
        if [[ $run_rc -eq 0 ]]; then
            outcome="missed"
        else
            outcome="caught"
            reason="$(sed -n 's/^---- \(.*\) stdout ----$/\1/p' "$1" | head -n 1)"
            if [[ -z "$reason" ]]; then
                reason="$(grep -m1 -E 'error(\[|:)' "$1" | cut -c1-60 || true)"
            fi
            local n
            n="$(grep -c '^---- .* stdout ----$' "$1" || true)"
            [[ "$n" -gt 1 ]] && reason="$reason (+$((n - 1)) more)"
            [[ -n "$reason" ]] || reason="?"
        fi
    fi
}

commit="$(git -C "$repo" log -1 --format=%h 2>/dev/null || echo unknown)"
dirty=""
if [[ -n "$(git -C "$repo" status --porcelain 2>/dev/null | head -n 1)" ]]; then
    dirty=" + uncommitted changes"
fi
started_at="$(date '+%Y-%m-%d %H:%M:%S %Z')"
if [[ "$mode" == sim ]]; then
    what="raft-sim ${sim_args[*]}"
else
    what="cargo test -p raft-core -p rafttest -q"
fi

# ---- baseline: the unmutated tree must be clean with the same budget.
say "baseline: refreshing $scratch from $repo (commit $commit$dirty)"
refresh
say "baseline: building"
if ! build "$logs/baseline-build.log"; then
    echo "baseline build failed; see $logs/baseline-build.log" >&2
    tail -n 20 "$logs/baseline-build.log" >&2
    exit 1
fi
baseline_limit="${timeout_secs:-7200}"
say "baseline: running $what"
run_check "$logs/baseline-run.log" "$baseline_limit"
if [[ $run_rc -ne 0 ]]; then
    echo "baseline is not clean (exit $run_rc after ${run_secs}s); see $logs/baseline-run.log" >&2
    tail -n 20 "$logs/baseline-run.log" >&2
    [[ $keep_going -eq 1 ]] || exit 1
fi
baseline_secs=$run_secs
say "baseline: clean in ${baseline_secs}s"
if [[ -z "$timeout_secs" ]]; then
    floor=300
    [[ "$mode" == tests ]] && floor=1800
    timeout_secs=$((baseline_secs * 3))
    [[ $timeout_secs -ge $floor ]] || timeout_secs=$floor
fi
say "per-mutant timeout: ${timeout_secs}s"

# ---- the mutants
results="$logs/results.tsv"
: > "$results"
for p in "${patches[@]}"; do
    name="$(basename "$p" .patch)"
    class="$(header_field "$p" Class)"
    equivalent="$(header_field "$p" Equivalent)"
    refresh
    build_secs=0
    if ! (cd "$scratch" && patch -p1 --batch --forward --fuzz=0 -s) < "$p" >"$logs/$name.patch.log" 2>&1; then
        outcome="BROKEN"; seed="-"; reason="does not apply"; run_secs=0
    else
        find "$scratch/raft-core/src" -name '*.rs' -exec touch {} +
        b0=$(date +%s)
        say "$name: building"
        built=1
        if ! build "$logs/$name.build.log"; then
            # The patch, or the working tree (being edited meanwhile)? Build the tree unmutated,
            # and if that works, the mutant once more from a fresh copy.
            built=0
            refresh
            if ! build "$logs/$name.unmutated-build.log"; then
                outcome="SKIPPED"; reason="the working tree does not build"
            elif (cd "$scratch" && patch -p1 --batch --forward --fuzz=0 -s) < "$p" \
                    >"$logs/$name.patch.log" 2>&1 \
                && find "$scratch/raft-core/src" -name '*.rs' -exec touch {} + \
                && build "$logs/$name.build.log"; then
                built=1
            else
                outcome="BROKEN"; reason="does not build"
            fi
            seed="-"; run_secs=0
        fi
        if [[ $built -eq 1 ]]; then
            build_secs=$(( $(date +%s) - b0 ))
            say "$name: running"
            run_check "$logs/$name.run.log" "$timeout_secs"
            classify "$logs/$name.run.log"
        fi
    fi
    [[ -n "$equivalent" ]] && outcome="$outcome (equivalent)"
    say "$name: $outcome, seed $seed, $reason, ${run_secs}s (+${build_secs}s build)"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$class" "$outcome" "$seed" "$reason" \
        "$run_secs" "$build_secs" >> "$results"
done
# Leave the scratch copy unmutated.
refresh

# ---- the report
report="$(mktemp)"
{
    echo "# Mutation score"
    echo
    echo "- run: $started_at to $(date '+%Y-%m-%d %H:%M:%S %Z')"
    echo "- tree: commit $commit$dirty"
    echo "- mode: $mode ($what); baseline clean in ${baseline_secs}s; timeout ${timeout_secs}s per mutant"
    echo
    echo "| mutant | class | caught | first failing seed | violation | time |"
    echo "|---|---|---|---|---|---:|"
    while IFS=$'\t' read -r name class outcome seed reason secs bsecs; do
        reason="${reason//|/\\|}"
        echo "| $name | $class | $outcome | $seed | $reason | ${secs}s |"
    done < "$results"
    echo
    awk -F'\t' '
        $3 ~ /\(equivalent\)/ { eq = eq (eq ? ", " : "") $1; next }
        $3 ~ /^BROKEN/ { br = br (br ? ", " : "") $1; next }
        $3 ~ /^SKIPPED/ { sk = sk (sk ? ", " : "") $1; next }
        { y++ }
        $3 == "caught" { x++ }
        $3 == "timeout" { to = to (to ? ", " : "") $1 }
        $3 == "panic" { pa = pa (pa ? ", " : "") $1 }
        $3 == "missed" { mi = mi (mi ? ", " : "") $1 }
        END {
            pct = y ? 100 * x / y : 0
            printf "score: %d/%d caught (%.0f%%)\n", x, y, pct
            printf "\n- missed: %s\n", mi ? mi : "none"
            printf "- timeouts (not counted as caught): %s\n", to ? to : "none"
            printf "- panics (not counted as caught): %s\n", pa ? pa : "none"
            printf "- equivalent (excluded from the score): %s\n", eq ? eq : "none"
            printf "- BROKEN (excluded from the score): %s\n", br ? br : "none"
            if (sk) printf "- SKIPPED, the working tree did not build (excluded): %s\n", sk
        }' "$results"
} > "$report"
cp "$report" "$scratch/report.md"
rm -f "$report"
cat "$scratch/report.md"
