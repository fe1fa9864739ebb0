#!/usr/bin/env python
"""Export a gru_attn checkpoint to TorchScript: one file with the scripted model and its dictionaries.

Entry point only: the code, its options and its docs are in fairseq_attn_gru/inference/torchscript.py.
"""
from fairseq_attn_gru.recipes.cli import run_entry

if __name__ == "__main__":
    raise SystemExit(run_entry("fairseq_attn_gru.inference.torchscript:main"))
