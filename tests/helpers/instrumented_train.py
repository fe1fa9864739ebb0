"""fairseq-train for the distributed tests: dumps this rank's final parameters, or crashes one rank on purpose.

$DUMP_PARAMS_PREFIX: after training, save the model's state_dict to <prefix>.rank<R>.pt.
$CRASH_RANK / $CRASH_AT_UPDATE: that rank exits with status 3 when it reaches that update, or kills itself with
SIGKILL (as an out-of-memory killer would) with $CRASH_SIGNAL=KILL; only in torchrun's first attempt (its
$TORCHELASTIC_RESTART_COUNT 0, or unset outside torchrun), so that a restarted group trains on.
"""
import os
import signal
import sys

import torch
from fairseq import trainer as trainer_module

seen = {}
original_init = trainer_module.Trainer.__init__
original_train_step = trainer_module.Trainer.train_step


def init(self, cfg, *args, **kwargs):
    original_init(self, cfg, *args, **kwargs)
    seen["trainer"], seen["rank"] = self, cfg.distributed_training.distributed_rank


def train_step(self, samples, *args, **kwargs):
    first_attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
    if first_attempt and str(seen.get("rank")) == os.environ.get("CRASH_RANK") and self.get_num_updates() >= int(
        os.environ.get("CRASH_AT_UPDATE", "0")
    ):
        if os.environ.get("CRASH_SIGNAL") == "KILL":
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(3)
    return original_train_step(self, samples, *args, **kwargs)


trainer_module.Trainer.__init__ = init
trainer_module.Trainer.train_step = train_step

from fairseq_cli.train import cli_main  # noqa: E402

sys.argv = ["fairseq-train", *sys.argv[1:]]
cli_main()
prefix = os.environ.get("DUMP_PARAMS_PREFIX")
if prefix:
    state = {k: v.detach().cpu() for k, v in seen["trainer"].model.state_dict().items()}
    torch.save(state, f"{prefix}.rank{seen['rank']}.pt")
