"""Global fix, failures only: a data path without binarized data is named in one line.

Upstream: no fairseq issue (fairseq raises ``FileNotFoundError`` for a missing directory and a bare ``Exception``,
"Could not infer language pair", for one without data). Written against fairseq-fixed 0.12.3.1
(``TranslationTask.setup_task``). Scope: every model using the ``translation`` task, only where fairseq raises
anyway: the same exception goes on with a one-line message (errors.explain) for fairseq's console tools.
"""
import glob
import os
from typing import Optional

from ..errors import explain
from .patching import wrap_once

SCOPE = "global"


def data_path_problem(data: str) -> Optional[str]:
    for path in str(data).split(os.pathsep):
        if not os.path.isdir(path):
            return f"data path {path!r} does not exist (expected a directory made by fairseq-preprocess)"
        if not glob.glob(os.path.join(path, "dict.*.txt")):
            return f"data path {path!r} holds no binarized data (no dict.<lang>.txt); run fairseq-preprocess"
    return None


def name_bad_data_path(original):
    def setup_task(cls, cfg, **kwargs):
        try:
            return original(cls, cfg, **kwargs)
        except Exception as error:
            problem = data_path_problem(cfg.data)
            if problem is None:
                raise
            raise explain(error, problem)

    return setup_task


def apply() -> None:
    from fairseq.tasks.translation import TranslationTask

    wrap_once(TranslationTask, "setup_task", name_bad_data_path, fix=__name__)
