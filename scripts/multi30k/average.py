#!/usr/bin/env python
"""Average the parameters of a run's last N epoch checkpoints into one checkpoint.

Entry point only: the code, its options and its docs are in fairseq_attn_gru/recipes/multi30k/average.py.
"""
from fairseq_attn_gru.recipes.cli import run_entry

if __name__ == "__main__":
    raise SystemExit(run_entry("fairseq_attn_gru.recipes.multi30k.average:main"))
