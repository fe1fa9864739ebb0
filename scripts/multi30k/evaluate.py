#!/usr/bin/env python
"""Translate raw German text with a Multi30k checkpoint and score it with sacreBLEU against raw English.

Entry point only: the code, its options and its docs are in fairseq_attn_gru/recipes/multi30k/evaluate.py.
"""
from fairseq_attn_gru.recipes.cli import run_entry

if __name__ == "__main__":
    raise SystemExit(run_entry("fairseq_attn_gru.recipes.multi30k.evaluate:main"))
