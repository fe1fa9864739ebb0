#!/usr/bin/env python
"""Where beam search spends its time: torch.profiler over one of bench.py's models decoding its test batches.

    python benchmarks/profile_beam.py --model general_int8 [--beam 5] [--threads 1] [--batches 2]

The model is bench.py's (untrained, bench sizes; ``_int8``: quantized as its int8 rows are), decoded as
``bench.decode_speeds`` decodes it (exactly 30 steps a sentence). Prints the ops by self CPU time, grouped by input
shape, so that the per-step products show with their sizes.
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="general_int8", help=f"one of {', '.join(bench.MODELS)}")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batches", type=int, default=2, help="test batches profiled (after one warm-up batch)")
    parser.add_argument("--rows", type=int, default=25, help="ops printed")
    args = parser.parse_args()
    if args.model not in bench.MODELS:
        sys.exit(f"error: --model={args.model!r} is not allowed: one of {', '.join(bench.MODELS)}")
    from fairseq.sequence_generator import SequenceGenerator
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    task, model = bench.build(args.model.replace("_int8", ""))
    model.eval()
    if args.model.endswith("_int8"):
        from fairseq_attn_gru.inference.int8 import quantize_model

        quantize_model(model)
    samples = bench.batches(task, "test")
    generator = SequenceGenerator([model], task.target_dictionary, beam_size=args.beam, max_len_a=0,
                                  max_len_b=bench.GENERATED_LENGTH, min_len=bench.GENERATED_LENGTH)
    with torch.no_grad():
        generator.generate([model], samples[0])  # warm-up
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as profiled:
            for sample in samples[1:1 + args.batches]:
                generator.generate([model], sample)
    print(profiled.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
