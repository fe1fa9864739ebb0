#!/usr/bin/env python
"""Write the toy_translation task's data as text files, for the standard `translation` task.

Entry point only: the code, its options and its docs are in fairseq_attn_gru/recipes/toy_text.py.
"""
from fairseq_attn_gru.recipes.cli import run_entry

if __name__ == "__main__":
    raise SystemExit(run_entry("fairseq_attn_gru.recipes.toy_text:main"))
