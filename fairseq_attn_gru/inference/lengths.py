"""How long a source sentence may be at inference: one rule for fairseq-interactive's reader
(fairseq_fixes/interactive_input.py) and the hub interface (inference/hub.py)."""
from typing import List, Optional, Tuple


def source_limits(task, max_positions, max_tokens) -> List[Tuple[int, str]]:
    """[(tokens, what)]: the source-length limits a sentence must meet, the positions (the smaller of the task's and
    the model's --max-source-positions, fairseq's hard limit) first, then --max-tokens."""
    source = max_positions[0] if isinstance(max_positions, (tuple, list)) else max_positions
    task_positions = task.max_positions()
    task_source = task_positions[0] if isinstance(task_positions, (tuple, list)) else task_positions
    limits = []
    if source is not None:
        whose = "" if task_source is not None and source >= task_source else " of the model (from the checkpoint)"
        limits.append((source, f"--max-source-positions={source}{whose}"))
    if max_tokens:
        limits.append((max_tokens, f"--max-tokens={max_tokens}"))
    return limits


def too_long(length: int, limits: List[Tuple[int, str]]) -> Optional[str]:
    """The first limit ``length`` tokens exceed, as ``what`` says it; None when the sentence fits."""
    return next((what for limit, what in limits if length > limit), None)
