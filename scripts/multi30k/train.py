#!/usr/bin/env python
"""Train the Multi30k model: a thin wrapper around fairseq-train with the recipe's defaults.

Entry point only: the code, its options and its docs are in fairseq_attn_gru/recipes/multi30k/train.py.
"""
from fairseq_attn_gru.recipes.cli import run_entry

if __name__ == "__main__":
    raise SystemExit(run_entry("fairseq_attn_gru.recipes.multi30k.train:main"))
