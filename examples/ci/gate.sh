#!/usr/bin/env bash
# Evaluate a new checkpoint and gate it against a stored baseline run (see docs/leaderboard.md).
#
#   examples/ci/gate.sh CHECKPOINT BASELINE_RUN [TASKS]
#
# CHECKPOINT    what `evalkit run --model` takes: a local folder, a hub id, a family alias, `reference`
# BASELINE_RUN  a run folder written by `evalkit run` (run.json + samples/), e.g. results/baselines/reference
# TASKS         comma list; default: the baseline's tasks. The baseline's --limit is reused, so both runs
#               score the same samples and the paired tests have something to pair.
#
# Environment (all optional):
#   EVALKIT              command that runs evalkit (default: evalkit), e.g. "python -m evalkit.cli"
#   EVALKIT_OUT          folder for the candidate run and the reports (default: eval-out)
#   EVALKIT_TOLERANCE    allowed drop of a primary metric, in points (default: 1)
#   EVALKIT_ALPHA        significance level of the paired tests (default: 0.05)
#   EVALKIT_BATCH_SIZE   batch size (default: 8)
#   EVALKIT_BACKEND      hf or vllm (default: hf)
#   EVALKIT_DATA_DIR     local mirror of the hub datasets (default: none)
#   EVALKIT_MAX_ERROR_RATE  share of failed samples allowed per task (default: 0)
#
# Exit status: 0 pass; 1 a primary metric regressed significantly beyond the tolerance, or too many
# samples failed; 2 bad input (missing baseline, no task in common, dataset changed).
# Writes $EVALKIT_OUT/candidate/<run_id>/ (the run), $EVALKIT_OUT/compare.json and compare.txt.
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
  sed -n '2,10p' "$0" >&2
  exit 2
fi
checkpoint=$1
baseline=$2
read -r -a evalkit <<< "${EVALKIT:-evalkit}"
out=${EVALKIT_OUT:-eval-out}

if [[ ! -f "$baseline/run.json" ]]; then
  echo "gate: no run.json in $baseline; pass a run folder written by 'evalkit run'" >&2
  exit 2
fi
# The baseline's tasks and --limit, read with the same Python that runs evalkit.
read_baseline() {
  python3 - "$baseline/run.json" "$1" <<'PY'
import json, sys
config = json.load(open(sys.argv[1], encoding="utf-8"))["config"]
value = config.get(sys.argv[2])
print(",".join(value) if isinstance(value, list) else ("" if value is None else value))
PY
}
tasks=${3:-$(read_baseline tasks)}
limit=$(read_baseline limit)

rm -rf "$out/candidate"
mkdir -p "$out/candidate"
run_args=(run --model "$checkpoint" --tasks "$tasks" --output "$out/candidate" --no-progress
          --batch-size "${EVALKIT_BATCH_SIZE:-8}" --backend "${EVALKIT_BACKEND:-hf}"
          --max-error-rate "${EVALKIT_MAX_ERROR_RATE:-0}")
[[ -n "$limit" ]] && run_args+=(--limit "$limit")
[[ -n "${EVALKIT_DATA_DIR:-}" ]] && run_args+=(--data-dir "$EVALKIT_DATA_DIR")

echo "gate: evaluating $checkpoint on $tasks${limit:+ (limit $limit)}"
run_status=0
"${evalkit[@]}" "${run_args[@]}" || run_status=$?
if [[ $run_status -ne 0 && $run_status -ne 1 ]]; then
  echo "gate: evalkit run failed (exit $run_status)" >&2
  exit "$run_status"
fi
candidate=$(find "$out/candidate" -mindepth 2 -maxdepth 2 -name run.json -printf '%h\n' | head -n 1)
if [[ -z "$candidate" ]]; then
  echo "gate: evalkit run wrote no run.json under $out/candidate" >&2
  exit 2
fi

compare_args=(compare "$baseline" "$candidate" --fail-on-regression
              --tolerance "${EVALKIT_TOLERANCE:-1}" --alpha "${EVALKIT_ALPHA:-0.05}")
gate_status=0
"${evalkit[@]}" "${compare_args[@]}" | tee "$out/compare.txt" || gate_status=${PIPESTATUS[0]}
"${evalkit[@]}" "${compare_args[@]}" --json > "$out/compare.json" || true

if [[ $gate_status -ne 0 ]]; then
  echo "gate: FAILED (evalkit compare exit $gate_status); report in $out/compare.json" >&2
  exit "$gate_status"
fi
if [[ $run_status -ne 0 ]]; then
  echo "gate: FAILED: error rate above ${EVALKIT_MAX_ERROR_RATE:-0} (see $candidate/samples/*.jsonl)" >&2
  exit 1
fi
echo "gate: passed; report in $out/compare.json"
