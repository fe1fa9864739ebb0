#!/usr/bin/env python
"""The concat score alone: the blocked score (fairseq_attn_gru/models/concat_score.py) against the plain formula
under autograd and against the plain formula through ``torch.compile`` (inductor's CPU backend, which builds C++
kernels with the machine's gcc), at a training batch's shape and at a beam-search step's shape, in one process.

Plain: ``tanh(q.unsqueeze(2) + k.unsqueeze(1)) @ v``, what ConcatAttention ran before. Times are the median of
--repeats calls, in ms, after a first call (which includes compiling); ``fwd+bwd`` includes the gradients of q, k and
v. ``--no-compile`` skips torch.compile.

    python benchmarks/concat_score.py [--repeats 10]
"""
import argparse
import statistics
import time

import torch

from fairseq_attn_gru.models.concat_score import ConcatScore, concat_scores

# (name, B, T, S, A): a bench training batch (max-tokens 4000, sentences of 18 tokens) and a beam-5 step of the
# bench's 142-sentence test batch (710 rows, 28 source tokens)
SHAPES = [("training batch", 222, 18, 18, 512), ("beam-5 step", 710, 1, 28, 512)]


def plain(queries, keys, v):
    return torch.matmul(torch.tanh(queries.unsqueeze(2) + keys.unsqueeze(1)), v)  # (B, T, S)


def median_ms(function, repeats):
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(1)
    compiled = None if args.no_compile else torch.compile(plain)
    print(f"{'shape':<16}{'(B, T, S, A)':<22}{'':<10}{'plain ms':>10}{'compiled ms':>13}{'blocked ms':>12}"
          f"{'blocked vs plain':>18}")
    for name, batch, steps, source, width in SHAPES:
        queries = torch.randn(batch, steps, width, requires_grad=True)
        keys = torch.randn(batch, source, width, requires_grad=True)
        v = torch.randn(width, requires_grad=True)
        grad = torch.randn(batch, steps, source)
        inputs = (queries.detach(), keys.detach(), v.detach())
        cases = {  # case -> (call, run forward only or forward and backward)
            "forward": lambda score: score(*inputs),
            "fwd+bwd": lambda score: torch.autograd.grad(score(queries, keys, v), (queries, keys, v), grad),
        }
        for case, call in cases.items():
            plain_ms = median_ms(lambda: call(plain), args.repeats)
            blocked = concat_scores if case == "forward" else ConcatScore.apply
            blocked_ms = median_ms(lambda: call(blocked), args.repeats)
            compiled_ms = median_ms(lambda: call(compiled), args.repeats) if compiled else float("nan")
            shape = str((batch, steps, source, width))
            print(f"{name:<16}{shape:<22}{case:<10}{plain_ms:>10.1f}{compiled_ms:>13.1f}{blocked_ms:>12.1f}"
                  f"{plain_ms / blocked_ms:>17.1f}×")


if __name__ == "__main__":
    main()
