#!/usr/bin/env bash
# fairseq-train on NPROC ranks per node, started by torchrun (torch.distributed.elastic), with CPU defaults.
#
#   scripts/train_distributed.sh NPROC [--nnodes N --node-rank R --master ADDR:PORT] <fairseq-train arguments...>
#
# It runs `torchrun --nproc-per-node NPROC [--nnodes N --node-rank R --master-addr ADDR --master-port PORT]
# fairseq-train <arguments>` (one node: `--standalone`, a free port) and adds only what torchrun leaves out:
#
#  * CPU flags: when fewer than NPROC GPUs are visible, every rank gets --cpu --distributed-backend gloo
#    --ddp-backend legacy_ddp (fairseq's nccl and pytorch_ddp need GPUs) and OMP_NUM_THREADS = cores / NPROC.
#  * No orphan ranks when torchrun is killed outright (SIGKILL): torchrun starts each rank in a session of its own,
#    so its ranks would go on; here each rank first asks the kernel for SIGTERM when torchrun dies (Linux prctl
#    PR_SET_PDEATHSIG; elsewhere no guard), then execs fairseq-train.
#  * One `error: ...` line (status 2) for a bad or missing value of its own options.
#
# torchrun does the rest: it starts the ranks (this plugin's launcher_env fix makes fairseq-train use torchrun's
# RANK/WORLD_SIZE/LOCAL_RANK and its store), stops them all when one fails (exit 1, with a summary naming the rank
# and its status), and forwards SIGINT/SIGTERM/SIGHUP to them (exit 1). For restarts (--max-restarts) or
# elastic rendezvous (--rdzv-backend c10d) run torchrun itself: docs/distributed.md.
#
# Multi-node: run the same command on every node with the same --nnodes and --master (node 0's address and a free
# port) and that node's --node-rank (torchrun's static rendezvous).
# Environment: FAIRSEQ_TRAIN overrides the per-rank command (a command line, split at spaces; default: fairseq-train
# beside this Python, any path); PYTHON the Python (torchrun is run as `$PYTHON -m torch.distributed.run`).
if [ -z "${BASH_VERSION:-}" ]; then
    echo "error: $0 needs bash: run it as \`bash $0 ...\`" >&2
    exit 2
fi
set -uo pipefail

usage() {
    echo "usage: $0 NPROC [--nnodes N --node-rank R --master ADDR:PORT] <fairseq-train arguments...>" >&2
    exit 2
}
fail() { echo "error: $*" >&2; exit 2; }

[[ $# -ge 1 ]] || usage
here=$(cd "$(dirname "$0")/.." && pwd)
if [[ -n ${PYTHON:-} ]]; then
    [[ -x $PYTHON ]] || fail "PYTHON='$PYTHON' is not allowed: an executable Python with torch and fairseq"
    python_bin=$PYTHON
else
    python_bin=$here/.venv/bin/python  # the checkout's (make install), else the python3 on PATH
    [[ -x $python_bin ]] || python_bin=$(command -v python3)
fi
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
[[ $node_rank =~ ^[0-9]+$ && $node_rank -lt $nnodes ]] ||
    fail "--node-rank='$node_rank' is not allowed: 0..$((nnodes - 1))"
if [[ -z $master ]]; then
    [[ $nnodes -eq 1 ]] || fail "--master is required with --nnodes $nnodes (ADDR:PORT of node 0)"
    rendezvous=(--standalone)
else
    [[ $master =~ ^([^:]+):([0-9]+)$ ]] && (( 10#${BASH_REMATCH[2]} >= 1 && 10#${BASH_REMATCH[2]} <= 65535 )) ||
        fail "--master='$master' is not allowed: ADDR:PORT with a port from 1 to 65535"
    rendezvous=(--nnodes "$nnodes" --node-rank "$node_rank" --master-addr "${BASH_REMATCH[1]}"
                --master-port "$((10#${BASH_REMATCH[2]}))")
fi

if [[ -n ${FAIRSEQ_TRAIN:-} ]]; then
    read -r -a train_cmd <<< "$FAIRSEQ_TRAIN"
else
    train_cmd=("$(dirname "$python_bin")/fairseq-train")  # one word, whatever the path holds (spaces too)
fi
command -v "${train_cmd[0]}" > /dev/null ||
    fail "cannot run '${train_cmd[0]}': no such command (set FAIRSEQ_TRAIN or PYTHON)"
gpus=$("$python_bin" -c 'import torch, torch.distributed.run; print(torch.cuda.device_count())' 2> /dev/null) ||
    fail "'$python_bin' has no torch.distributed.run (torchrun): set PYTHON to the Python with torch"

if [[ $gpus -ge $nproc_per_node ]]; then
    device_flags=()
    echo "train_distributed: $nnodes node(s) x $nproc_per_node rank(s) on GPUs (NCCL) through torchrun" >&2
else
    device_flags=(--cpu --distributed-backend gloo --ddp-backend legacy_ddp)
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( $(nproc) / nproc_per_node > 0 ? $(nproc) / nproc_per_node : 1 ))}
    echo "train_distributed: $nnodes node(s) x $nproc_per_node rank(s) on CPU (gloo, $OMP_NUM_THREADS thread(s)" \
         "each) through torchrun" >&2
fi

# Each rank starts as this guard, whose parent is torchrun (exec below keeps this shell's pid, $$): it asks for
# SIGTERM when torchrun dies, exits if torchrun is already gone, then execs the rank's command.
rank_guard=("$python_bin" -c '
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
except (AttributeError, OSError):
    pass  # not Linux: no guard
if os.getppid() != int(sys.argv[1]):
    sys.exit(143)
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except OSError as error:
    sys.exit(f"error: cannot run {sys.argv[2]!r}: {error.strerror}")' "$$")

exec "$python_bin" -m torch.distributed.run --nproc-per-node "$nproc_per_node" "${rendezvous[@]}" --no-python \
    "${rank_guard[@]}" "${train_cmd[@]}" "$@" ${device_flags[@]+"${device_flags[@]}"}  # (bash < 4.4: empty arrays)
