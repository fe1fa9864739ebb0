"""The record a recipe keeps beside a model's checkpoints, so that running the same command again reuses the model,
resumes its interrupted training, or refuses in one line when the options differ (never trains over checkpoints of
another configuration, never mixes two).

The record is ``{"options": ..., "finished": bool, ...}``, written whole or not at all (temporary file, rename).
The demo (``demo_run.json``) and the translation pipeline (``train_run.json``) keep one each; tests/test_reliability2.py
and tests/test_pipeline.py check the three outcomes.
"""
import json
import os
from pathlib import Path
from typing import Optional

from .cli import fail


def option_changes(recorded: dict, options: dict, shown: int = 4) -> str:
    """``name: 'old' there, 'new' now`` for the first ``shown`` options that differ (sorted by name), then how many
    more: the message stays one readable line."""
    changes = [f"{name}: {recorded.get(name)!r} there, {options.get(name)!r} now"
               for name in sorted(set(recorded) | set(options)) if recorded.get(name) != options.get(name)]
    return "; ".join(changes[:shown]) + (f"; and {len(changes) - shown} more" if len(changes) > shown else "")


def earlier_run(save_dir: Path, record_name: str, options: dict, flag: str) -> Optional[dict]:
    """The record of an earlier training into ``save_dir`` (None if there was none); one line naming the options that
    differ, or checkpoints without a record. ``flag`` names the option that chose ``save_dir`` (``--out-dir``)."""
    record_path = save_dir / record_name
    if not record_path.is_file():
        if any(save_dir.glob("checkpoint*.pt")):
            fail(f"{str(save_dir)!r} holds checkpoints without {record_name} (options unknown): use another "
                 f"{flag}, or delete {str(save_dir)!r} to train again")
        return None
    try:
        record = json.loads(record_path.read_text())
        recorded = record["options"]
    except (ValueError, KeyError, TypeError):
        fail(f"{str(record_path)!r} is damaged: use another {flag}, or delete {str(save_dir)!r} to train again")
    if recorded != options:
        fail(f"{flag}: {str(save_dir)!r} holds a model trained with other options ({option_changes(recorded, options)}"
             f"): use another {flag}, or delete {str(save_dir)!r} to train it again")
    return record


def read_record(save_dir: Path, record_name: str) -> Optional[dict]:
    """The record as it is, or None where there is none or it cannot be read (``earlier_run`` then says why)."""
    try:
        record = json.loads((Path(save_dir) / record_name).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("options"), dict) else None


def write_record(save_dir: Path, record_name: str, record: dict) -> None:
    temporary = save_dir / (record_name + ".tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(temporary, save_dir / record_name)
