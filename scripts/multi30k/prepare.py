#!/usr/bin/env python
"""Prepare Multi30k German->English for fairseq: Moses normalise + tokenise, one joint BPE, binarize.

Entry point only: the code, its options and its docs are in fairseq_attn_gru/recipes/multi30k/prepare.py.
"""
from fairseq_attn_gru.recipes.cli import run_entry

if __name__ == "__main__":
    raise SystemExit(run_entry("fairseq_attn_gru.recipes.multi30k.prepare:main"))
