#!/usr/bin/env python
"""What each speed lever buys, measured side by side with bench.py's models, data and measurements.

* whole-target decoder: the GRU over all target steps in one call and attention as batched matrix products,
  against the step-by-step loop (the order's ``runs_whole_target`` turned off, what a model with input feeding must do);
* sentence rows: beam search reorders encoder outputs and cached keys every step; the model stores them once per
  sentence for all its beams (``encoder.regroup``), copies only when finished sentences leave, and attention reads
  each sentence once for all its beams. "Off" gives every beam its own copy at every step, as a plain
  ``index_select`` would;
* encoder recurrence (``fairseq_attn_gru/models/gru.py``): fp32 training of padded source batches runs the encoder GRU
  with a hand-written backward, against ``nn.GRU`` over the packed batch, whose autograd backward zero-fills a
  whole-input-sized gradient for every step;
* blocked concat score (``fairseq_attn_gru/models/concat_score.py``): concat attention's (B, T, S, A) tanh in
  cache-sized blocks through the sigmoid, with a hand-written backward, against the plain formula under autograd
  (``vᵀ tanh(W₁ s + W₂ h)`` as three tensor ops);
* dropout mask (``fairseq_attn_gru/models/dropout.py``): 32 random bits per element from int64 draws, against
  ``F.dropout``'s ``bernoulli_``;
* output feature after the loop (cgru and bahdanau orders, which run step by step): ``tanh(W ·)`` and its dropout
  for all target steps as one matmul after the recurrence, against one per step inside it (the loop input feeding
  needs; those orders ignore the fed value, so turning the decoder's ``input_feeding`` on restores it).
* masked decoder steps: the layer-normalised GRU's autograd path (``DeepGRU._plain_layer``, what runs under
  ``--cpu-bf16``) applies a row mask at every step only where rows have lengths; the decoder's rows all run every
  step. "Masked" gives it full lengths, so every decoder step multiplies by a mask of ones, as it did before. Run
  it on a ``_bf16`` model (``--models nematus_bf16``): in fp32 the hand-written backward runs instead.

Each configuration runs in its own subprocess, interleaved and repeated; medians are printed, and each
configuration's training speed against "as shipped" with that ratio's range over the rounds (bench.py's warning line
when the rounds disagree by more than 10 %: the CPU was shared).

    python benchmarks/ablation.py [--repeats 3] [--models dot,general] [--configs "as shipped,packed nn.GRU"]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import bench
import torch

CONFIGS = {
    "as shipped": {},
    "step loop": {"force_step_loop": True},
    "rows per beam": {"rows_per_beam": True},
    "packed nn.GRU": {"no_recurrence_function": True},
    "plain concat score": {"plain_concat_score": True},
    "bernoulli dropout": {"bernoulli_dropout": True},
    "per-step output feature": {"per_step_output_feature": True},
    "masked decoder steps": {"masked_decoder_steps": True},
}


def worker(name, config, steps, out_path):
    import fairseq_attn_gru.models.decoder as decoder_module
    import fairseq_attn_gru.models.encoder as encoder_module

    if config.get("rows_per_beam"):
        def rows_per_beam(source_row, new_order, stored):
            wanted = source_row.index_select(0, new_order)  # every row of the batch its own copy
            return wanted, torch.arange(wanted.numel())

        decoder_module.regroup = encoder_module.regroup = rows_per_beam
    if config.get("no_recurrence_function"):
        encoder_module.recurrence_function_applies = lambda rnn, x: False
    if config.get("plain_concat_score"):
        from fairseq_attn_gru.models.attention import ConcatAttention

        def plain_score(self, queries, keys):
            hidden = torch.tanh(self.query_proj(queries).unsqueeze(2) + keys.unsqueeze(1))  # (B, T, S, A)
            return self.v(hidden).squeeze(-1)  # (B, T, S)

        ConcatAttention.score = plain_score
    if config.get("bernoulli_dropout"):
        import torch.nn.functional as F
        from fairseq_attn_gru.models import dropout as dropout_module, gru, recurrent

        def bernoulli_dropout(x, p, training):
            return F.dropout(x, p, training=training)

        for module in (dropout_module, gru, recurrent):
            module.dropout = bernoulli_dropout
    if config.get("per_step_output_feature"):
        from fairseq_attn_gru.models.decoder import GRUDecoder

        build = GRUDecoder.__init__

        def per_step_output_feature(self, *args, **kwargs):
            build(self, *args, **kwargs)
            if not self.order.takes_input_feeding:
                self.input_feeding = True

        GRUDecoder.__init__ = per_step_output_feature
    if config.get("masked_decoder_steps"):
        from fairseq_attn_gru.models.recurrent import DeepGRU

        plain_layer = DeepGRU._plain_layer

        def masked_plain_layer(self, input_gates, h0, lengths, index, params, *rest):
            if lengths is None:  # as before: every row's length given, so every step multiplies by its mask
                lengths = torch.full((h0.size(0),), input_gates.size(0), dtype=torch.long, device=h0.device)
            return plain_layer(self, input_gates, h0, lengths, index, params, *rest)

        DeepGRU._plain_layer = masked_plain_layer
    bench.worker(name, steps, out_path, force_step_loop=config.get("force_step_loop", False))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--models", default="dot,general")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, from: {', '.join(CONFIGS)}")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], CONFIGS[args.worker[1]], args.steps, args.worker[2])
        return
    configs = args.configs.split(",")
    unknown = [config for config in configs if config not in CONFIGS]
    if unknown:
        parser.error(f"--configs {', '.join(unknown)} not known; choose from: {', '.join(CONFIGS)}")
    runs = {(model, config): [] for model in args.models.split(",") for config in configs}
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.repeats):
            for model, config in runs:
                print(f"round {round_index + 1}/{args.repeats}: {model}, {config} ...", flush=True)
                out = Path(tmp) / "out.json"
                subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--worker", model, config,
                                str(out)], check=True, env=dict(os.environ, PYTHONWARNINGS="ignore"),
                               stderr=subprocess.DEVNULL)
                runs[model, config].append(json.loads(out.read_text()))
    print_table(runs)


def print_table(runs):
    """Medians per model and configuration; with "as shipped" measured, each configuration's training speed against
    it, with the range of that ratio over the rounds (each round's pair ran side by side) and bench.py's warning
    when the rounds disagree."""
    print(f"\n{'model':<10}{'configuration':<26}{'train tok/s':>13}{'vs shipped':>12}{'rounds':>12}{'beam5 sent/s':>14}"
          f"{'greedy sent/s':>15}")
    spreads = {}
    for (model, config), measurements in runs.items():
        median = {key: statistics.median(m[key] for m in measurements) for key in measurements[0]}
        shipped = runs.get((model, "as shipped"))
        ratio = rounds = ""
        if shipped and config != "as shipped":
            ratio = f"{median['train_tok_s'] / statistics.median(m['train_tok_s'] for m in shipped):.3f}"
            low, high = bench.ratio_range(measurements, shipped, "train_tok_s")
            rounds = f"{low:.2f}-{high:.2f}"
            spreads[f"{model}, {config} vs as shipped"] = [low, high]
        print(f"{model:<10}{config:<26}{median['train_tok_s']:>13.0f}{ratio:>12}{rounds:>12}"
              f"{median['beam5_sent_s']:>14.1f}{median['beam1_sent_s']:>15.1f}")
    warning = bench.spread_warning(spreads)
    if warning:
        print(warning)


if __name__ == "__main__":
    main()
