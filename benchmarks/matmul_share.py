#!/usr/bin/env python
"""How close a model's training is to its matrix-product ceiling: the share of self CPU time in matrix products, the
FLOP rate they reach, and the ratio to fairseq's lstm the model would have if nothing else took time.

bench.py's models, batches and training step, four steps under torch.profiler (after two warm-up steps). For each
model it prints the matmul share of self CPU time, the FLOP-weighted GFLOP/s of the products (2·m·k·n per call of
mm / addmm / bmm, from the recorded shapes), the slowest shapes, and the ops that take the rest. The profiler slows small ops more than large
ones, so the share it gives is a lower bound and the ceiling an upper bound.

    python benchmarks/matmul_share.py [--models dot,concat] [--ratio dot=1.77,concat=1.69] [--top 8]

``--ratio``: the model's training ratio to the lstm from a `make bench` run on the same machine; the ceiling
printed is that ratio divided by the matmul share.
"""
import argparse

import bench
import torch
from fairseq_attn_gru.recipes.machine import cpu_description, matmul_gflops
from op_profile import PRODUCTS, product_flops
from torch.profiler import profile


def profile_training(name, steps=4):
    torch.manual_seed(1)
    task, model = bench.build(name)
    optimizer, samples = bench.start_training(task, model)
    with profile(record_shapes=True) as profiler:
        for sample in samples[:steps]:
            bench.train_step(task, model, optimizer, sample)
    return profiler.key_averages(group_by_input_shape=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="dot,concat")
    parser.add_argument("--ratio", default="", help="MODEL=RATIO,... from a make bench run on this machine")
    parser.add_argument("--top", type=int, default=8, help="matmul shapes listed per model")
    args = parser.parse_args()
    ratios = {name: float(value) for name, value in (item.split("=") for item in args.ratio.split(",") if item)}
    print(f"CPU: {cpu_description()['model']}; fp32 matmul peak {matmul_gflops(torch.float32):.0f} GFLOP/s")
    for name in args.models.split(","):
        events = profile_training(name)
        total_ms = sum(event.self_cpu_time_total for event in events) / 1e3
        products = [(event.self_cpu_time_total / 1e3, event.count, event.input_shapes,
                     product_flops(event.key, event.input_shapes) * event.count)
                    for event in events if event.key in PRODUCTS]
        product_ms = sum(ms for ms, *_ in products)
        gflops = sum(flops for *_, flops in products) / product_ms / 1e6
        share = product_ms / total_ms
        ceiling = f"; ceiling {ratios[name] / share:.2f}x lstm (bench ratio {ratios[name]:.2f})" if name in ratios else ""
        print(f"\n{name}: matrix products {product_ms:.0f} of {total_ms:.0f} ms self CPU ({100 * share:.1f} %), "
              f"{gflops:.0f} GFLOP/s{ceiling}")
        for ms, count, shapes, flops in sorted(products, key=lambda row: -row[0])[: args.top]:
            print(f"  {ms:7.1f} ms  {count:4d} calls  {flops / ms / 1e6:5.0f} GFLOP/s  {shapes}")
        others = {}  # the rest, by op name over all shapes: [ms, calls]
        for event in events:
            if event.key not in PRODUCTS:
                entry = others.setdefault(event.key, [0.0, 0])
                entry[0] += event.self_cpu_time_total / 1e3
                entry[1] += event.count
        print("  the rest: " + ", ".join(f"{key} {ms:.0f} ms ({count} calls)" for key, (ms, count)
                                         in sorted(others.items(), key=lambda item: -item[1][0])[: args.top]))


if __name__ == "__main__":
    main()
