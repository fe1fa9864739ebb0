#!/usr/bin/env bash
# GPU readiness in one run (under 8 minutes on one GPU), ending with a summary:
#
#   scripts/gpu_check.sh [--data DIR] [--out DIR] [--minutes M]
#
#  1. `pytest -m cuda` (tests/test_cuda.py): every named architecture's training step on cuDNN against the CPU path,
#     incremental decoding against the full forward on the GPU, fairseq-train with --amp and with --fp16.
#  2. benchmarks/bench.py --device cuda: fairseq's lstm (cuDNN) against gru_attn dot/general/concat, one round.
#  3. With --data DIR (or $MULTI30K_DATA): a Multi30k de-en run of M minutes (default 5) through `fairseq-attn-gru
#     run` (as python -m fairseq_attn_gru run): its training tokens/s (fairseq's wps, mean over the epochs) and val
#     sacreBLEU.
#
# Parts run in that order within a budget of $GPU_CHECK_BUDGET_S seconds (default 470): parts 1 and 2 get at most
# 75 s each, part 3 what is left, and it starts only if its minutes and 60 s of preparation and scoring still fit
# (else its summary line says it was left out); a part that runs out of time counts as failed. Where torch sees
# no CUDA device (a CPU-only build, CUDA_VISIBLE_DEVICES=""), every part is skipped with one line saying so, after
# checking that the CUDA tests are collected (exit 1 if none is, else 0). With a GPU it is 1 if a part failed.
# Everything is written under --out (default gpu_check_out): part logs, bench/results.json, multi30k/, summary.txt.
# Environment: PYTHON (default: the checkout's .venv/bin/python).
if [ -z "${BASH_VERSION:-}" ]; then
    echo "error: $0 needs bash: run it as \`bash $0 ...\`" >&2
    exit 2
fi
set -uo pipefail

fail() { echo "error: $*" >&2; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
python_bin=${PYTHON:-$here/.venv/bin/python}
[[ -x $python_bin ]] ||
    fail "PYTHON='$python_bin' is not allowed: an executable Python with this package installed (make install)"
data=${MULTI30K_DATA:-}; out=gpu_check_out; minutes=5
while [[ $# -gt 0 ]]; do
    case $1 in
        --data | --out | --minutes)
            [[ $# -ge 2 && -n $2 && $2 != --* ]] || fail "$1 needs a value"
            case $1 in
                --data) data=$2 ;;
                --out) out=$2 ;;
                --minutes) minutes=$2 ;;
            esac
            shift 2 ;;
        *) fail "'$1' is not allowed: --data DIR, --out DIR, --minutes M" ;;
    esac
done
[[ $minutes =~ ^[0-9]+([.][0-9]+)?$ ]] && [[ ! $minutes =~ ^0+([.]0+)?$ ]] ||
    fail "--minutes='$minutes' is not allowed: a positive number"
[[ -z $data || -d $data ]] || fail "--data='$data' is not allowed: a directory holding Multi30k"
budget=${GPU_CHECK_BUDGET_S:-470}
[[ $budget =~ ^[1-9][0-9]*$ ]] || fail "GPU_CHECK_BUDGET_S='$budget' is not allowed: a positive number of seconds"
mkdir -p "$out" || fail "--out='$out' cannot be created"
out=$(cd "$out" && pwd)
deadline=$((SECONDS + budget))
summary=()
failed=0
note() { summary+=("$*"); echo "gpu_check: $*"; }
why() {  # 124: timeout stopped it; 0: pytest found nothing to run
    case $1 in 124) echo "out of time" ;; 0) echo "no test passed" ;; *) echo "status $1" ;; esac
}
seconds_left() {  # $1: the part's own cap; never 0, which `timeout` reads as no limit
    local left=$((deadline - SECONDS))
    (( left > $1 )) && left=$1
    (( left < 1 )) && left=1
    echo "$left"
}

gpu=$("$python_bin" -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")') ||
    fail "'$python_bin' cannot import torch"
if [[ -z $gpu ]]; then
    note "no GPU: torch sees no CUDA device (a CPU-only build, or none visible); the CUDA parts are skipped"
    collected=$(cd "$here" && "$python_bin" -m pytest -q -m cuda --collect-only -p no:cacheprovider tests 2>&1 |
                sed -n 's|^\([0-9][0-9]*\)/[0-9]* tests collected.*|\1|p')
    note "pytest -m cuda: skipped, no GPU (${collected:-0} CUDA tests collected)"
    [[ ${collected:-0} -gt 0 ]] || failed=1
    note "bench.py --device cuda: skipped, no GPU"
    note "Multi30k ${minutes}-minute run: skipped, no GPU"
else
    note "GPU: $gpu"
    # 1. the CUDA tests
    start=$SECONDS
    (cd "$here" && timeout "$(seconds_left 75)" "$python_bin" -m pytest -q -m cuda -p no:cacheprovider tests) \
        > "$out/pytest_cuda.log" 2>&1
    status=$?
    counts=$(grep -E '^(=+ )?[0-9]+ (passed|failed|skipped|errors?)' "$out/pytest_cuda.log" | tail -1 | tr -d '=')
    if [[ $status -eq 0 && $counts == *passed* ]]; then  # all skipped on a GPU: the tests did not see it
        note "pytest -m cuda: ${counts:-passed} in $((SECONDS - start)) s"
    else
        failed=1
        note "pytest -m cuda: FAILED ($(why $status)${counts:+: $counts}) in $((SECONDS - start)) s;" \
             "see $out/pytest_cuda.log"
    fi
    # 2. the benchmark against fairseq's lstm
    start=$SECONDS
    (cd "$here" && timeout "$(seconds_left 75)" "$python_bin" benchmarks/bench.py --device cuda \
        --models fairseq_lstm,dot,general,concat --repeats 1 --steps 20 --out-dir "$out/bench") > "$out/bench.log" 2>&1
    status=$?
    if [[ $status -eq 0 ]]; then
        bench_lines=$("$python_bin" - "$out/bench/results.json" <<'EOF'
import json, sys
results = json.load(open(sys.argv[1]))
for name, row in results["models"].items():
    print(f"{name}: train {row['train_tok_s']:,.0f} tok/s ({row.get('train_ratio_vs_lstm', 1):.2f}x lstm), beam-5 "
          f"{row['beam5_sent_s']:,.1f} sent/s ({row.get('beam5_ratio_vs_lstm', 1):.2f}x lstm)")
EOF
)
        while IFS= read -r line; do note "bench.py --device cuda: $line"; done <<< "$bench_lines"
    else
        failed=1
        note "bench.py --device cuda: FAILED ($(why $status)) after $((SECONDS - start)) s; see $out/bench.log"
    fi
    # 3. Multi30k through the pipeline
    minutes_s=$("$python_bin" -c "import sys; print(round(float(sys.argv[1]) * 60))" "$minutes")
    if [[ -z $data ]]; then
        note "Multi30k ${minutes}-minute run: skipped, no data (give --data DIR or MULTI30K_DATA)"
    elif (( deadline - SECONDS < minutes_s + 60 )); then
        note "Multi30k ${minutes}-minute run: left out, $((deadline - SECONDS)) s of the ${budget} s budget left"
    else
        start=$SECONDS
        timeout "$(seconds_left "$budget")" "$python_bin" -m fairseq_attn_gru run --data "$data" --source-lang de \
            --target-lang en --work "$out/multi30k" --minutes "$minutes" --results "$out/multi30k/results.json" \
            > "$out/multi30k.log" 2>&1
        status=$?
        if [[ $status -eq 0 ]]; then
            note "Multi30k ${minutes}-minute run: $("$python_bin" - "$out/multi30k" <<'EOF'
import json, re, sys
from pathlib import Path

work = Path(sys.argv[1])
log = "".join(path.read_text() for path in work.glob("main/**/train.log"))
wps = [float(value) for value in re.findall(r"\| train \|.*?\| wps ([0-9.]+) \|", log)]  # fairseq's epoch lines
speed = f"{sum(wps) / len(wps):,.0f} tok/s (fairseq wps, mean of {len(wps)} epochs)" if wps else "no wps logged"


def val_scores(node):
    """The chosen checkpoint's val sacreBLEU wherever the results file has one: "val_sacrebleu" is a number, or
    {candidate: score} beside "chosen" (the pipeline's checkpoint selection), or {"ensemble": score}."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "val_sacrebleu":
                yield from val_scores(value)
            elif not isinstance(value, dict):
                yield value
            elif node.get("chosen") in value:
                yield value[node["chosen"]]
            elif len(value) == 1:
                yield from value.values()
    elif isinstance(node, list):
        for item in node:
            yield from val_scores(item)


scores = list(val_scores(json.loads((work / "results.json").read_text())))
print(f"{speed}; val sacreBLEU {scores[0] if scores else 'not found in results.json'}")
EOF
) in $((SECONDS - start)) s"
        else
            failed=1
            note "Multi30k ${minutes}-minute run: FAILED ($(why $status)) after $((SECONDS - start)) s;" \
                 "see $out/multi30k.log"
        fi
    fi
fi

{
    echo "gpu_check summary ($(date -u +%Y-%m-%dT%H:%M:%SZ), $SECONDS s):"
    for line in "${summary[@]}"; do echo "  $line"; done
} | tee "$out/summary.txt"
exit $failed
