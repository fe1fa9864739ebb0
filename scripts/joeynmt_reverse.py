#!/usr/bin/env python
"""Joey NMT's `reverse` toy benchmark through fairseq's standard route.

Entry point only: the code, its options and its docs are in fairseq_attn_gru/recipes/joeynmt_reverse.py.
"""
from fairseq_attn_gru.recipes.cli import run_entry

if __name__ == "__main__":
    raise SystemExit(run_entry("fairseq_attn_gru.recipes.joeynmt_reverse:main"))
