#!/usr/bin/env python
"""The main demo: what attention does for a GRU seq2seq, on the toy `translate` task.

Entry point only: the code, its options and its docs are in fairseq_attn_gru/recipes/demo.py.
"""
from fairseq_attn_gru.recipes.cli import run_entry

if __name__ == "__main__":
    raise SystemExit(run_entry("fairseq_attn_gru.recipes.demo:main"))
