#!/usr/bin/env bash
# Prove that a change changes no output: run the sample pipeline and 50 training steps at two
# commits, each from a fresh clone, and compare their fingerprints (tools/fingerprint.py).
#
#   tools/same_outputs.sh OLD [NEW]      # NEW defaults to HEAD; exit 1 on any difference
#
# Both runs use this checkout's .venv (run `make venv` first) with the clone first on PYTHONPATH,
# so each runs its own code; the entry point is `python -m gristmill`, or `python -m pipeline` for
# commits from before the one-package layout. Work happens under ${WORK:-/tmp/same-outputs}.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY="$ROOT/.venv/bin/python"
WORK=${WORK:-/tmp/same-outputs}
[[ $# -ge 1 && $# -le 2 ]] || { echo "usage: tools/same_outputs.sh OLD [NEW]" >&2; exit 2; }
[[ -x "$PY" ]] || { echo "same_outputs: no $PY (run make venv)" >&2; exit 2; }
[[ -d "$ROOT/../shared/data" ]] || { echo "same_outputs: ../shared/data is missing" >&2; exit 2; }

fingerprint() {  # commit, name
  local tree="$WORK/$2"
  rm -rf "$tree" && git clone -q "$ROOT" "$tree" && git -C "$tree" checkout -q "$1"
  ln -sfn "$ROOT/../shared" "$WORK/shared"  # the configs read ../../shared/data from configs/
  local module=gristmill
  [[ -f "$tree/gristmill/__main__.py" ]] || module=pipeline
  (cd "$tree" && export PYTHONPATH="$tree" \
    && "$PY" -m $module run configs/sample.yaml --no-progress \
    && "$PY" -m $module mix configs/sample-mix.yaml \
    && "$PY" -m $module report configs/sample.yaml configs/sample-mix.yaml \
    && "$PY" -m $module train configs/train-sample.yaml --set schedule.steps=50) > "$WORK/$2.log" 2>&1 \
    || { echo "same_outputs: the run at $1 failed: $WORK/$2.log" >&2; exit 2; }
  "$PY" "$ROOT/tools/fingerprint.py" "$tree/out" > "$WORK/$2.json"
}

mkdir -p "$WORK"
fingerprint "$1" old
fingerprint "${2:-HEAD}" new
"$PY" "$ROOT/tools/fingerprint.py" --compare "$WORK/old.json" "$WORK/new.json"
