#!/usr/bin/env bash
# Multi-process (and multi-node) fairseq-train through torch.distributed, one process per rank.
#
#   scripts/train_distributed.sh NPROC [--nnodes N --node-rank R --master ADDR:PORT] <fairseq-train arguments...>
#
# Needs bash >= 5.1 (`wait -n -p`; checked at start) and, to stop the ranks when the launcher itself is killed,
# Linux (prctl PR_SET_PDEATHSIG; elsewhere the ranks of a killed launcher keep running).
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
# SIGINT / SIGTERM / SIGHUP to the launcher stop the ranks the same way and it exits with 130 / 143 / 129; if the
# launcher is killed outright (SIGKILL), the kernel sends each rank SIGTERM (no orphaned ranks go on training).
# Environment: FAIRSEQ_TRAIN overrides the per-rank command (a command line, split at spaces; default:
# fairseq-train beside this Python, any path); PYTHON the Python; OMP_NUM_THREADS defaults to cores / NPROC on CPU.
if [ -z "${BASH_VERSION:-}" ]; then
    echo "error: $0 needs bash >= 5.1: run it as \`bash $0 ...\`" >&2
    exit 2
fi
if (( BASH_VERSINFO[0] < 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] < 1) )); then
    echo "error: $0 needs bash >= 5.1 (for \`wait -n -p\`); this is bash $BASH_VERSION" >&2
    exit 2
fi
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
        --nnodes | --node-rank | --master)
            [[ $# -ge 2 && -n $2 && $2 != --* ]] || fail "$1 needs a value"
            case $1 in
                --nnodes) nnodes=$2 ;;
                --node-rank) node_rank=$2 ;;
                --master) master=$2 ;;
            esac
            shift 2 ;;
        *) break ;;
    esac
done
[[ $nnodes =~ ^[1-9][0-9]*$ ]] || fail "--nnodes='$nnodes' is not allowed: a positive integer"
[[ $node_rank =~ ^[0-9]+$ && $node_rank -lt $nnodes ]] || fail "--node-rank='$node_rank' is not allowed: 0..$((nnodes - 1))"
if [[ -z $master ]]; then
    [[ $nnodes -eq 1 ]] || fail "--master is required with --nnodes $nnodes (ADDR:PORT of node 0)"
    master="127.0.0.1:$("$python_bin" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
fi
[[ $master =~ ^[^:]+:([0-9]+)$ ]] && (( 10#${BASH_REMATCH[1]} >= 1 && 10#${BASH_REMATCH[1]} <= 65535 )) ||
    fail "--master='$master' is not allowed: ADDR:PORT with a port from 1 to 65535"
grace=${KILL_GRACE_SECONDS:-10}
[[ $grace =~ ^[0-9]+$ ]] || fail "KILL_GRACE_SECONDS='$grace' is not allowed: a whole number of seconds"

if [[ -n ${FAIRSEQ_TRAIN:-} ]]; then
    read -r -a train_cmd <<< "$FAIRSEQ_TRAIN"
else
    train_cmd=("$(dirname "$python_bin")/fairseq-train")  # one word, whatever the path holds (spaces too)
fi
# Each rank starts under this guard: it asks the kernel for SIGTERM when the launcher dies, even by SIGKILL
# (prctl PR_SET_PDEATHSIG, Linux), then execs the rank's command; a rank whose launcher is already gone exits.
# It also lets the rank see SIGINT, which bash ignores in background jobs.
rank_guard=("$python_bin" -c '
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
except (AttributeError, OSError):
    pass  # not Linux: no guard
if os.getppid() != int(sys.argv[1]):
    sys.exit(143)
signal.signal(signal.SIGINT, signal.SIG_DFL)  # bash starts background jobs with SIGINT ignored: give Ctrl-C back
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except OSError as error:
    sys.exit(f"error: cannot run {sys.argv[2]!r}: {error.strerror}")' "$$")
command -v "${train_cmd[0]}" > /dev/null || fail "cannot run '${train_cmd[0]}': no such command (set FAIRSEQ_TRAIN or PYTHON)"

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
stop_all() {  # $1: the signal the ranks get first (TERM by default); KILL after the grace period
    local pid
    for pid in "${pids[@]}"; do kill -"${1:-TERM}" "$pid" 2>/dev/null; done
    local deadline=$((SECONDS + grace))
    for pid in "${pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null && [[ $SECONDS -lt $deadline ]]; do sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null
    done
}
# Ctrl-C: the ranks get SIGINT too (each prints which checkpoint is intact); TERM/HUP: they are terminated
trap 'stop_all INT; exit 130' INT
trap 'stop_all TERM; exit 143' TERM
trap 'stop_all TERM; exit 129' HUP

for ((local_rank = 0; local_rank < nproc_per_node; local_rank++)); do
    rank=$((node_rank * nproc_per_node + local_rank))
    "${rank_guard[@]}" "${train_cmd[@]}" "$@" "${device_flags[@]}" \
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
