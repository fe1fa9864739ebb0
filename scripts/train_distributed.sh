#!/usr/bin/env bash
# Multi-process (and multi-node) fairseq-train through torch.distributed, one process per rank.
#
#   scripts/train_distributed.sh NPROC [--nnodes N --node-rank R --master ADDR:PORT] <fairseq-train arguments...>
#
# NPROC ranks start on this machine; every argument after the launcher's own options goes to each rank's
# fairseq-train unchanged. On CPU the ranks use gloo with --ddp-backend legacy_ddp (the combination that works
# in fairseq on CPU); with NPROC visible GPUs they use NCCL, one device per rank.
#
# Multi-node: run the same command on every node with the same --nnodes and --master (node 0's address and a
# free port) and that node's --node-rank. Rank r of node n is global rank n*NPROC + r, the world size is
# NNODES*NPROC, and every rank gets --distributed-init-method tcp://ADDR:PORT, where global rank 0 listens.
#
# The launcher waits for all ranks. If any rank exits non-zero it stops the others (TERM, then KILL after
# $KILL_GRACE_SECONDS, default 10) instead of letting them hang in a collective, and exits with that status.
# Environment: FAIRSEQ_TRAIN overrides the per-rank command (default: fairseq-train beside this Python);
# OMP_NUM_THREADS defaults to cores / NPROC on CPU.
set -uo pipefail

usage() { echo "usage: $0 NPROC [--nnodes N --node-rank R --master ADDR:PORT] <fairseq-train arguments...>" >&2; exit 2; }
fail() { echo "error: $*" >&2; exit 2; }

[[ $# -ge 1 ]] || usage
here=$(cd "$(dirname "$0")/.." && pwd)
python_bin=${PYTHON:-$here/.venv/bin/python}
[[ -x $python_bin ]] || python_bin=$(command -v python3)
nproc_per_node=$1; shift
[[ $nproc_per_node =~ ^[1-9][0-9]*$ ]] || fail "NPROC='$nproc_per_node' is not allowed: a positive integer"
nnodes=1; node_rank=0; master=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --nnodes) nnodes=${2:-}; shift 2 ;;
        --node-rank) node_rank=${2:-}; shift 2 ;;
        --master) master=${2:-}; shift 2 ;;
        *) break ;;
    esac
done
[[ $nnodes =~ ^[1-9][0-9]*$ ]] || fail "--nnodes='$nnodes' is not allowed: a positive integer"
[[ $node_rank =~ ^[0-9]+$ && $node_rank -lt $nnodes ]] || fail "--node-rank='$node_rank' is not allowed: 0..$((nnodes - 1))"
if [[ -z $master ]]; then
    [[ $nnodes -eq 1 ]] || fail "--master is required with --nnodes $nnodes (ADDR:PORT of node 0)"
    master="127.0.0.1:$("$python_bin" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
fi
[[ $master =~ ^[^:]+:[0-9]+$ ]] || fail "--master='$master' is not allowed: ADDR:PORT"

read -r -a train_cmd <<< "${FAIRSEQ_TRAIN:-$(dirname "$python_bin")/fairseq-train}"

world_size=$((nnodes * nproc_per_node))
gpus=$("$python_bin" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)
if [[ $gpus -ge $nproc_per_node ]]; then
    device_flags=(--distributed-backend nccl)
    echo "train_distributed: $world_size rank(s), $nproc_per_node per node on GPUs (NCCL), master $master" >&2
else
    device_flags=(--cpu --distributed-backend gloo --ddp-backend legacy_ddp)
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( $(nproc) / nproc_per_node > 0 ? $(nproc) / nproc_per_node : 1 ))}
    echo "train_distributed: $world_size rank(s), $nproc_per_node per node on CPU (gloo, $OMP_NUM_THREADS thread(s) each), master $master" >&2
fi

pids=()
stop_all() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    local deadline=$((SECONDS + ${KILL_GRACE_SECONDS:-10}))
    for pid in "${pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null && [[ $SECONDS -lt $deadline ]]; do sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null
    done
}
trap 'stop_all; exit 130' INT TERM

for ((local_rank = 0; local_rank < nproc_per_node; local_rank++)); do
    rank=$((node_rank * nproc_per_node + local_rank))
    "${train_cmd[@]}" "$@" "${device_flags[@]}" \
        --distributed-world-size "$world_size" --distributed-rank "$rank" --device-id "$local_rank" \
        --distributed-init-method "tcp://$master" --distributed-no-spawn &
    pids+=($!)
done

running=("${pids[@]}")
while [[ ${#running[@]} -gt 0 ]]; do
    finished=""
    wait -n -p finished "${running[@]}"
    status=$?
    [[ -n $finished ]] || continue
    still=()
    for pid in "${running[@]}"; do [[ $pid == "$finished" ]] || still+=("$pid"); done
    running=("${still[@]}")
    if [[ $status -ne 0 ]]; then
        echo "error: a rank (pid $finished) exited with status $status; stopping the other ranks" >&2
        stop_all
        exit "$status"
    fi
done
echo "train_distributed: all $nproc_per_node rank(s) finished" >&2
