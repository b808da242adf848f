#!/usr/bin/env bash
# Exports cargo-mutants' operator-level mutants of raft-core as patches that run.sh can score
# (`run.sh --dir OUT`), so they are judged by raft-sim like the hand-written catalogue.
#
# usage: rafttest/mutants/export-cargo-mutants.sh OUT [--sample N] [--seed S] [FILE-GLOB...]
#
#   OUT          directory to write NNN-file-line.patch into (emptied of earlier *.patch first)
#   --sample N   keep N mutants drawn at random (deterministically from --seed, default 1),
#                spread over the files in proportion to their mutant counts; default: all
#   FILE-GLOB    source files to mutate (default: the quorum and raft modules, the ones the issue
#                names, without describe.rs, which only formats configurations for logs)
#
# Needs cargo-mutants (`cargo install cargo-mutants`) and python3.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:?usage: export-cargo-mutants.sh OUT [--sample N] [--seed S] [FILE-GLOB...]}"
shift
sample=0
seed=1
globs=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --sample) sample="${2:?--sample needs a number}"; shift 2 ;;
        --seed) seed="${2:?--seed needs a number}"; shift 2 ;;
        *) globs+=("$1"); shift ;;
    esac
done
if [[ ${#globs[@]} -eq 0 ]]; then
    globs=('raft-core/src/quorum/majority.rs' 'raft-core/src/quorum/joint.rs'
        'raft-core/src/quorum/mod.rs' 'raft-core/src/raft/*.rs')
fi
command -v cargo-mutants >/dev/null || {
    echo "cargo-mutants is missing: cargo install cargo-mutants" >&2
    exit 2
}
args=()
for g in "${globs[@]}"; do args+=(-f "$g"); done
mkdir -p "$out"
rm -f "$out"/*.patch
list="$(mktemp)"
trap 'rm -f "$list"' EXIT
(cd "$repo" && cargo mutants --list --json --diff "${args[@]}") >"$list"
python3 - "$out" "$sample" "$seed" "$list" <<'EOF'
import json, os, random, re, sys

out, sample, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(sys.argv[4]) as f:
    mutants = json.load(f)
if sample and sample < len(mutants):
    rng = random.Random(seed)
    by_file = {}
    for m in mutants:
        by_file.setdefault(m["file"], []).append(m)
    # Largest-remainder apportionment of the sample over the files, then a random draw in each.
    quotas = {f: sample * len(ms) / len(mutants) for f, ms in by_file.items()}
    take = {f: int(q) for f, q in quotas.items()}
    rest = sample - sum(take.values())
    for f in sorted(quotas, key=lambda f: quotas[f] - take[f], reverse=True)[:rest]:
        take[f] += 1
    chosen = []
    for f in sorted(by_file):
        chosen += rng.sample(by_file[f], take[f])
    mutants = chosen
mutants.sort(key=lambda m: (m["file"], m["span"]["start"]["line"], m["name"]))
for n, m in enumerate(mutants, 1):
    path = m["file"]
    # cargo-mutants' diff names the mutation where a patch wants the file; give it a/ and b/.
    body = re.sub(r"\A--- [^\n]*\n\+\+\+ [^\n]*\n", f"--- a/{path}\n+++ b/{path}\n", m["diff"])
    stem = os.path.splitext(os.path.basename(path))[0]
    line = m["span"]["start"]["line"]
    name = f"{n:03d}-{os.path.basename(os.path.dirname(path))}-{stem}-{line}.patch"
    with open(os.path.join(out, name), "w") as f:
        f.write(f"Class: cargo-mutants {m['genre']}\n")
        f.write(f"Bug: {m['name']}\n\n")
        f.write(body)
print(f"wrote {len(mutants)} patches to {out}", file=sys.stderr)
EOF
