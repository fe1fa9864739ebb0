"""Every model: ranks started by torchrun (or srun, with ``--distributed-port``) form one process group, on CPU too.

Upstream: no fairseq issue found. Written against fairseq-fixed 0.12.3.1 (``fairseq.distributed.utils.call_main``,
which calls ``infer_init_method``); the same code is on fairseq main. Scope: global, because the process group is
set up before any model is built.

What fairseq does with a launcher's environment (``infer_init_method``):

* It returns at once when ``--distributed-world-size`` is 1, before it looks at the environment, and 1 is the
  default without GPUs (``max(1, torch.cuda.device_count())``) and on a one-GPU machine. ``torchrun
  --nproc-per-node 2 fairseq-train --cpu ...`` then ran two separate trainings with ``distributed_world_size: 1``,
  both writing the same ``--save-dir``, and exited 0; ``srun -n 2 fairseq-train --cpu --distributed-port P`` the
  same. No error, no process group, no gradient averaging.
* Given ``--distributed-world-size 2`` on CPU, its torchrun path divides by ``torch.cuda.device_count()`` (0:
  ``ZeroDivisionError``), and its SLURM path calls ``torch.cuda.set_device(SLURM_LOCALID)`` (no CUDA: an error on
  every rank but the first) or, with one task per node, makes the world size ``nodes * GPUs`` = 0.
* On GPUs it gives a torchrun rank the device ``RANK % device_count``, not torchrun's ``LOCAL_RANK``.

With this fix, when torchrun's environment (``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE``, ``RANK``: the
variables fairseq itself looks for) says ``WORLD_SIZE`` > 1, or SLURM's does (a node list, more than one task in the
step: ``SLURM_STEP_NUM_TASKS``, else ``SLURM_NTASKS``, and ``--distributed-port`` set, fairseq's own condition),
each process becomes one rank of one group: world size ``WORLD_SIZE`` / the step's tasks, rank ``RANK`` /
``SLURM_PROCID``, device ``LOCAL_RANK`` / ``SLURM_LOCALID``, ``env://`` (torchrun's store) or ``tcp://<first host of
the node list>:<port>`` (SLURM, the address fairseq uses). One SLURM task per multi-GPU node keeps fairseq's path,
which spawns a rank per GPU and works. Without ``--distributed-port`` nothing changes under srun: its tasks may be
separate trainings on purpose (``--seed $SLURM_PROCID``). What cannot work stops every rank with one line naming the
value and what is allowed: ``--distributed-world-size`` other than the launcher's (1 and the GPU-count default mean
"not given"), ``--distributed-backend`` other than gloo or ``--ddp-backend`` other than legacy_ddp for CPU ranks
(fairseq's pytorch_ddp hands DDP ``device_ids`` and fails on CPU), and more local ranks than visible GPUs (but a SLURM
task that sees one GPU uses it: SLURM bound it to the task).
Everything else (an explicit ``--distributed-init-method``, one process, TPUs, pipeline parallelism) runs fairseq's
code unchanged. ``--distributed-world-size`` and ``--distributed-rank`` need not be given: the launcher's values are
used, as fairseq's own torchrun path does on GPUs.
"""
import logging
import os
import subprocess

from ..errors import UserError, config_error
from .patching import skip, wrap_once

SCOPE = "global"
logger = logging.getLogger(__name__)
TORCHRUN_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK")  # fairseq's test for torch's launchers
CPU_DISTRIBUTED_BACKENDS = ("gloo",)
CPU_DDP_BACKENDS = ("legacy_ddp", "no_c10d")  # no_c10d is fairseq's old name for legacy_ddp


class Launch:
    """One rank of a group that a launcher started: which launcher, where the group meets, this rank's place."""

    def __init__(self, launcher, init_method, world_size, rank, local_rank):
        self.launcher, self.init_method = launcher, init_method
        self.world_size, self.rank, self.local_rank = world_size, rank, local_rank


def _env_int(name: str, launcher: str, minimum: int) -> int:
    value = os.environ[name]
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise UserError(f"{launcher} set {name}={value!r}, which is not allowed: an integer >= {minimum}")
    return number


def torchrun_launch():
    if not all(name in os.environ for name in TORCHRUN_VARIABLES):
        return None
    world_size, rank = _env_int("WORLD_SIZE", "torchrun", 1), _env_int("RANK", "torchrun", 0)
    local_rank = _env_int("LOCAL_RANK", "torchrun", 0) if "LOCAL_RANK" in os.environ else None
    return Launch("torchrun", "env://", world_size, rank, local_rank)


def slurm_launch(dt, cpu: bool):
    node_list = os.environ.get("SLURM_STEP_NODELIST", os.environ.get("SLURM_JOB_NODELIST"))
    tasks = next((name for name in ("SLURM_STEP_NUM_TASKS", "SLURM_NTASKS") if name in os.environ), None)
    if node_list is None or dt.distributed_port <= 0 or tasks is None:
        return None
    world_size = _env_int(tasks, "SLURM", 1)
    nodes = _env_int("SLURM_NNODES", "SLURM", 1) if "SLURM_NNODES" in os.environ else 1
    if world_size == 1 or (not cpu and world_size == nodes and dt.distributed_world_size > 1):
        # one task per GPU node: fairseq spawns one rank per GPU itself, and that path works
        return None
    try:
        hosts = subprocess.check_output(["scontrol", "show", "hostnames", node_list], text=True).split()
    except FileNotFoundError:
        return None  # no SLURM here (fairseq's own test)
    except subprocess.CalledProcessError as error:
        raise UserError(f"`scontrol show hostnames {node_list}` failed (status {error.returncode}): SLURM's "
                        f"SLURM_STEP_NODELIST/SLURM_JOB_NODELIST must name this job's nodes") from None
    if not hosts:
        raise UserError(f"`scontrol show hostnames {node_list}` printed no host name")
    return Launch("SLURM", f"tcp://{hosts[0]}:{dt.distributed_port}", world_size,
                  _env_int("SLURM_PROCID", "SLURM", 0), _env_int("SLURM_LOCALID", "SLURM", 0))


RESTART_WARNING = (
    "torchrun may restart this group (--max-restarts), and its ranks share torchrun's rendezvous store, where a "
    "restarted group can read the addresses of the group before it and fail to connect (pytorch #135712, #167288): "
    "run torchrun with TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 and --standalone or --rdzv-backend c10d")


def restarts_share_the_store() -> bool:
    """torchrun will restart the ranks, and they meet in the agent's own store (torchrun's default)."""
    try:
        restarts = int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0"))
    except ValueError:
        return False
    return restarts > 0 and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"


def check(cfg, launch: Launch, cpu: bool) -> None:
    """Stop, on every rank, with one line where the group that the launcher started cannot train."""
    from fairseq.dataclass.configs import DistributedTrainingConfig

    dt = cfg.distributed_training
    not_given = {1, DistributedTrainingConfig.distributed_world_size}  # fairseq's default: 1, or the GPUs seen
    if dt.distributed_world_size not in not_given | {launch.world_size}:
        raise config_error("--distributed-world-size", dt.distributed_world_size,
                           f"{launch.world_size}, the number of ranks {launch.launcher} started (or leave it out)")
    if launch.rank >= launch.world_size:
        raise UserError(f"{launch.launcher} gave this process rank {launch.rank}, which is not allowed: "
                        f"0..{launch.world_size - 1} for its {launch.world_size} ranks")
    if not cpu:
        return
    bad = [f"--{flag}={value!r}" for flag, value, allowed in (
        ("distributed-backend", dt.distributed_backend, CPU_DISTRIBUTED_BACKENDS),
        ("ddp-backend", dt.ddp_backend, CPU_DDP_BACKENDS)) if value not in allowed]
    if bad:
        raise UserError(f"{' '.join(bad)} {'is' if len(bad) == 1 else 'are'} not allowed for the "
                        f"{launch.world_size} CPU ranks {launch.launcher} started: pass --distributed-backend "
                        f"gloo --ddp-backend legacy_ddp (fairseq's nccl and pytorch_ddp need GPUs)")


def device_of(launch: Launch, cpu: bool) -> int:
    """The rank's device: its local rank, one GPU each."""
    import torch

    if cpu:
        return launch.local_rank or 0
    gpus = torch.cuda.device_count()
    if launch.local_rank is None:  # a launcher without LOCAL_RANK: fairseq's own choice
        return launch.rank % gpus
    if launch.local_rank < gpus:
        return launch.local_rank
    if launch.launcher == "SLURM" and gpus == 1:  # SLURM bound one GPU to each task (--gpus-per-task, --gpu-bind)
        return 0
    raise UserError(f"{launch.launcher} started local rank {launch.local_rank}, which is not allowed: this node has "
                    f"{gpus} GPU(s), one rank per GPU (start fewer ranks per node, or train on CPU: --cpu "
                    f"--distributed-backend gloo --ddp-backend legacy_ddp)")


def use_launcher_env(original):
    def call_main(cfg, main, **kwargs):
        import torch

        dt = cfg.distributed_training
        if dt.distributed_init_method is not None or cfg.common.tpu or dt.pipeline_model_parallel:
            return original(cfg, main, **kwargs)
        cpu = cfg.common.cpu or not torch.cuda.is_available()
        launch = torchrun_launch() or slurm_launch(dt, cpu)
        if launch is None or launch.world_size == 1:
            return original(cfg, main, **kwargs)
        check(cfg, launch, cpu)
        device = device_of(launch, cpu)
        dt.distributed_init_method = launch.init_method
        dt.distributed_world_size = launch.world_size
        dt.distributed_rank = launch.rank
        dt.device_id = device
        dt.distributed_no_spawn = True  # the launcher started every rank
        if getattr(cfg, "bmuf", None) is not None:  # --use-bmuf divides by its own copy, resolved at parsing
            cfg.bmuf.distributed_world_size = launch.world_size
        logger.info(f"{launch.launcher}: rank {launch.rank} of {launch.world_size} (local rank {launch.local_rank}, "
                    f"{'CPU' if cpu else f'GPU {device}'}), init {launch.init_method}")
        if launch.rank == 0 and restarts_share_the_store():
            logger.warning(RESTART_WARNING)
        return original(cfg, main, **kwargs)  # the init method is set: fairseq's call_main starts this one rank

    return call_main


def apply() -> None:
    from fairseq.distributed import utils as distributed_utils

    if not hasattr(distributed_utils, "infer_init_method"):
        skip(__name__, "distributed.utils.call_main", "this fairseq has no distributed.utils.infer_init_method, whose "
                                                        "gap the fix fills")
        return
    wrap_once(distributed_utils, "call_main", use_launcher_env, fix=__name__)  # checks call_main(cfg, main, **kwargs)
