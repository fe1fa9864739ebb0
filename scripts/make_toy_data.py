#!/usr/bin/env python
"""Write the toy_translation task's data as text files, for the standard `translation` task.

Entry point only: the code, its options and its docs are in fairseq_attn_gru/recipes/toy_text.py.
"""
from fairseq_attn_gru.recipes.cli import run_main
from fairseq_attn_gru.recipes.toy_text import main

if __name__ == "__main__":
    raise SystemExit(run_main(main))
