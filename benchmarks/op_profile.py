"""One reading of a torch.profiler window, for matmul_share.py (our models) and the peers' runners
(benchmarks/peers/measure.py, inside each toolkit's own venv: this module needs only torch and the standard library).

A training or decoding step on a CPU is bounded by its matrix products (mm, addmm, bmm: 2·m·k·n FLOPs a call, from
the recorded shapes), by the other ops (elementwise work, copies, reductions) or by the time outside any op (Python
and the framework's own bookkeeping between ops). ``summary`` splits a window's wall time that way; with the
number of tokens the window processed it also gives the products' FLOPs a token, which is the same for two
toolkits only if their models really have the same sizes. The profiler slows small ops more than large ones, so
the products' share it gives is a lower bound: compare shares between runs profiled alike.
tests/test_peers.py::test_the_profile_summary_splits_wall_time_and_counts_product_flops checks it on a window of known
products.
"""
from typing import Optional

PRODUCTS = ("aten::mm", "aten::addmm", "aten::bmm")


def product_flops(key: str, shapes) -> int:
    """2·m·k·n of one call, from the recorded input shapes (0 when they were not recorded)."""
    if key == "aten::addmm":
        shapes = shapes[1:]  # (bias, a, b)
    if len(shapes) < 2 or len(shapes[0]) < 2 or len(shapes[1]) < 2:
        return 0
    a, b = shapes[0], shapes[1]
    batch = a[0] if key == "aten::bmm" else 1
    return 2 * batch * a[-2] * a[-1] * b[-1]


def summary(events, wall_seconds: float, tokens: Optional[int] = None, top: int = 12) -> dict:
    """``events``: ``profiler.key_averages(group_by_input_shape=True)`` of a window that took ``wall_seconds``;
    ``tokens``: the tokens it processed (target tokens of the training steps, output tokens of a translation).
    ``other_ops``: the ``top`` ops other than the products by self time, each over all its shapes."""
    op_seconds = sum(event.self_cpu_time_total for event in events) / 1e6
    products = [event for event in events if event.key in PRODUCTS]
    product_seconds = sum(event.self_cpu_time_total for event in products) / 1e6
    flops = sum(product_flops(event.key, event.input_shapes) * event.count for event in products)
    by_op = {}  # the other ops, by name over all shapes: [seconds, calls]
    for event in events:
        if event.key in PRODUCTS:
            continue
        entry = by_op.setdefault(event.key, [0.0, 0])
        entry[0] += event.self_cpu_time_total / 1e6
        entry[1] += event.count
    ranked = sorted(by_op.items(), key=lambda item: -item[1][0])[:top]
    return {"wall_seconds": round(wall_seconds, 3), "op_seconds": round(op_seconds, 3),
            "outside_ops_seconds": round(max(0.0, wall_seconds - op_seconds), 3),
            "product_seconds": round(product_seconds, 3),
            "product_share": round(product_seconds / wall_seconds, 4) if wall_seconds > 0 else None,
            "product_gflop": round(flops / 1e9, 6),
            "product_gflop_s": round(flops / product_seconds / 1e9, 1) if product_seconds > 0 else None,
            "tokens": tokens,
            "product_mflop_per_token": round(flops / tokens / 1e6, 2) if tokens else None,
            "other_ops": [{"op": key, "seconds": round(seconds, 3), "calls": calls}
                          for key, (seconds, calls) in ranked]}
