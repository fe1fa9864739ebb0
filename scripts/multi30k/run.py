#!/usr/bin/env python
"""The whole Multi30k German->English recipe: prepare -> train -> pick a checkpoint on val -> evaluate.

Entry point only: the code, its options and its docs are in fairseq_attn_gru/recipes/multi30k/run.py.
"""
from fairseq_attn_gru.recipes.cli import run_entry

if __name__ == "__main__":
    raise SystemExit(run_entry("fairseq_attn_gru.recipes.multi30k.run:main"))
