#!/usr/bin/env python
"""`make bench`: fairseq's `lstm` against `gru_attn` (none/dot/general/concat, the conditional GRU decoder without and
with layer norm, dot in bf16, and int8), side by side.

All models get the same dimensions (embeddings 256, hidden 512, 2-layer bidirectional encoder, 2-layer decoder,
decoder-out-embed 256), the same data (toy `translate`, 1000-word vocabulary), the same --max-tokens and Adam.
Each measurement runs in its own subprocess (so peak RSS is per model); the models are interleaved and the whole
round repeated, and the median is reported, so machine noise hits all alike.

Measured per model: parameters; training target tokens/s (forward + backward + Adam step, after warm-up);
beam-5 and greedy sentences/s through fairseq's SequenceGenerator; peak RSS; FLOP utilisation = model FLOP/s in
training / the matmul peak of the dtype in use, both measured by this run. Each ratio to the lstm is the ratio of
the medians, with its range over the rounds (each round's model against that round's lstm). The fp32 matmul peak is
measured at the start of every round. When the rounds disagree by more than 10 % (that peak, or a model's training
ratio to the lstm), the CPU's speed varied during the run: the run ends with a warning line, also kept in
results.json (``noise_warning``). Another load sharing the CPU does that (on one shared EPYC fairseq's lstm slowed
more than these models, and every ratio came out too high: docs/history/benchmarks.md), and so does a host whose
speed drifts on its own (a quiet 2-core EPYC's ratios spread 11 % over three rounds, results/bench.json).

FLOPs are counted from the layer shapes (see ``count_flops``): every matrix product of an m×k by k×n matrix is
2·m·k·n; elementwise work (gates, tanh, softmax) is not counted; training = 3 × forward (the backward pass costs
two matrix products per forward one).

``cgru``: concat attention with ``--decoder-style cgru``; ``nematus``: the same with ``--encoder-layer-norm
--decoder-layer-norm`` (what ``--arch gru_nematus`` sets, at the bench sizes). The results file records the CPU
(model name, cores, instruction-set flags).

``<type>_int8`` rows (dot_int8, ...): the same model as ``<type>``, decoded after PyTorch dynamic int8 quantization
(fairseq_attn_gru/inference/int8.py). int8 is inference only, so these rows do not train: their training fields
are empty and their peak RSS is that of decoding alone (an fp32 row's peak includes its training). Decoding speed
does not depend on the weights here (every sentence decodes exactly GENERATED_LENGTH steps), so untrained weights
measure the same work.

``--device cuda``: the same measurements on the first GPU (fairseq's lstm and nn.GRU run cuDNN there); the matmul
peaks are the GPU's (torch.mm 8192², torch's default TF32 settings, as in training), peak RSS is still the host
process's, and the rows that exist on CPU only (``_bf16``: --cpu-bf16; ``_int8``: CPU dynamic quantization) are left
out. scripts/gpu_check.sh runs it so.

``--results FILE`` (``make bench`` gives ``results/bench.json``) also writes the same summary there, with the command,
the date and the wall-clock minutes: the docs' speed tables are generated from it (scripts/results_tables.py).

    python benchmarks/bench.py [--out-dir bench_out] [--repeats 3] [--steps 8] [--models dot,...] [--recipe-env]
                               [--device cpu|cuda] [--results FILE]
"""
import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import torch

from fairseq_attn_gru.recipes.machine import cpu_description, matmul_gflops

DIMS = dict(embed=256, hidden=512, layers=2, out_embed=256, vocab=1000)
MAX_TOKENS = 4000
GENERATED_LENGTH = 30  # target tokens per generated sentence
CPU_ONLY_ROWS = ("_bf16", "_int8")  # --cpu-bf16, and int8 dynamic quantization: CPU features
MODELS = ["fairseq_lstm", "none", "dot", "general", "concat", "cgru", "nematus", "dot_bf16",
          "none_int8", "dot_int8", "general_int8", "concat_int8"]
# rows named after a decoder rather than an attention type: name -> (attention type, extra model options)
DECODER_ROWS = {
    "cgru": ("concat", dict(decoder_style="cgru")),  # conditional GRU decoder
    "nematus": ("concat", dict(decoder_style="cgru", encoder_layer_norm=True, decoder_layer_norm=True)),  # gru_nematus
}
TOY = dict(toy_rule="translate", toy_vocab_size=DIMS["vocab"], toy_min_len=5, toy_max_len=35, toy_train_size=3000,
           toy_valid_size=10, toy_test_size=200, toy_seed=1)


def model_args(name):
    """Command-line-equivalent options of each benchmarked model."""
    d = DIMS
    if name == "fairseq_lstm":
        return Namespace(arch="lstm", encoder_embed_dim=d["embed"], encoder_hidden_size=d["hidden"],
                         encoder_layers=d["layers"], encoder_bidirectional=True, decoder_embed_dim=d["embed"],
                         decoder_hidden_size=d["hidden"], decoder_layers=d["layers"],
                         decoder_out_embed_dim=d["out_embed"], dropout=0.1,
                         criterion="cross_entropy")
    attention, extra = attention_and_options(name)
    return Namespace(**extra, arch="gru_attn", encoder_embed_dim=d["embed"], encoder_hidden_size=d["hidden"],
                     encoder_layers=d["layers"], encoder_bidirectional=True, decoder_embed_dim=d["embed"],
                     decoder_hidden_size=d["hidden"], decoder_layers=d["layers"], decoder_out_embed_dim=d["out_embed"],
                     attention_type=attention, encoder_proj=attention == "dot", dropout=0.1,
                     cpu_bf16=name.endswith("_bf16"))


def attention_and_options(name):
    """A gru_attn row's attention type and the model options beyond it."""
    base = name.replace("_bf16", "").replace("_int8", "")
    return DECODER_ROWS.get(base, (base, {}))


def count_flops(name, src_lengths, tgt_lengths):
    """Forward FLOPs of one batch, from layer shapes (matrix products only)."""
    d = DIMS
    E, H, L, O, V = d["embed"], d["hidden"], d["layers"], d["out_embed"], d["vocab"]
    S_tokens, T_tokens = sum(src_lengths), sum(tgt_lengths)
    S_padded = max(src_lengths)
    pairs = sum(t * S_padded for t in tgt_lengths)  # (target step, source position) pairs scored
    C = 2 * H  # bidirectional encoder output
    gates = 4 if name == "fairseq_lstm" else 3
    encoder = sum(2 * 2 * gates * H * ((E if layer == 0 else C) + H) for layer in range(L)) * S_tokens
    if name == "fairseq_lstm":
        decoder = sum(2 * 4 * H * ((E + H if layer == 0 else H) + H) for layer in range(L)) * T_tokens
        attention = (2 * H * C + 2 * (C + H) * H) * T_tokens + 2 * 2 * C * pairs
        output = (2 * H * O + 2 * O * V) * T_tokens
        bridge = 0
    else:
        attention_type, extra = attention_and_options(name)
        cgru = extra.get("decoder_style") == "cgru"
        decoder = sum(2 * 3 * H * ((E if layer == 0 else H) + H) for layer in range(L)) * T_tokens
        if cgru:  # GRU2 over the context; the layer norms are elementwise (not counted)
            decoder += 2 * 3 * H * (C + H) * T_tokens
        if attention_type == "none":
            attention, context = 0, 0
        else:
            context = C if attention_type != "dot" else H
            keys = {"dot": 2 * C * H, "general": 2 * C * H, "concat": 2 * C * H}[attention_type] * S_tokens
            per_pair = 2 * H + 2 * context if attention_type != "concat" else 2 * H + 2 * context
            queries = 2 * H * H * T_tokens if attention_type == "concat" else 0
            attention = keys + queries + per_pair * pairs
        feature = H + E + context if cgru else H + context  # cGRU's feature also reads E y_{t-1}
        output = (2 * feature * O + 2 * O * V) * T_tokens
        bridge = 2 * C * L * H * len(src_lengths)
    return encoder + decoder + attention + output + bridge


def build(name):
    import fairseq_attn_gru  # noqa: F401
    from fairseq.models import ARCH_CONFIG_REGISTRY, ARCH_MODEL_REGISTRY
    from fairseq_attn_gru.tasks.toy_translation import ToyTranslationConfig, ToyTranslationTask

    task = ToyTranslationTask.setup_task(ToyTranslationConfig(**TOY))
    args = model_args(name)
    ARCH_CONFIG_REGISTRY[args.arch](args)
    model = ARCH_MODEL_REGISTRY[args.arch].build_model(args, task)
    return task, model


def batches(task, split, device=torch.device("cpu")):
    task.load_dataset(split)
    dataset = task.dataset(split)
    iterator = task.get_batch_iterator(dataset, max_tokens=MAX_TOKENS, seed=1, required_batch_size_multiple=1)
    samples = list(iterator.next_epoch_itr(shuffle=False))
    if device.type != "cpu":  # all on the device before any timing (the toy data is small)
        from fairseq.utils import apply_to_sample

        samples = [apply_to_sample(lambda tensor: tensor.to(device), sample) for sample in samples]
    return samples


def synchronize(device):
    """Wait for the device's queued work, so that a clock read after it counts that work (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(dtype, device):
    """The device's practical matmul peak in GFLOP/s: machine.matmul_gflops on CPU; on a GPU the fastest of 5
    synchronized 8192² products (2048² would measure kernel launches there)."""
    if device.type == "cpu":
        return matmul_gflops(dtype)
    size = 8192
    a, b = torch.randn(size, size, dtype=dtype, device=device), torch.randn(size, size, dtype=dtype, device=device)
    torch.mm(a, b)
    timings = []
    for _ in range(5):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        timings.append(time.perf_counter() - start)
    return 2 * size**3 / min(timings) / 1e9


def train_step(task, model, optimizer, sample):
    """One training update: forward, summed NLL over the non-pad targets, backward, optimizer step."""
    net_output = model(**sample["net_input"])
    lprobs = model.get_normalized_probs(net_output, log_probs=True).view(-1, len(task.target_dictionary))
    loss = torch.nn.functional.nll_loss(lprobs, sample["target"].view(-1), ignore_index=task.target_dictionary.pad(),
                                        reduction="sum")
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def start_training(task, model, warmup_steps=2):
    """Adam over the model, train mode, ``warmup_steps`` updates done -> (optimizer, the train batches after them)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_batches = batches(task, "train", next(model.parameters()).device)
    model.train()
    for sample in train_batches[:warmup_steps]:
        train_step(task, model, optimizer, sample)
    return optimizer, train_batches[warmup_steps:]


def worker(name, steps, out_path, force_step_loop=False, device="cpu"):
    """One measurement of one model; writes a json line. ``force_step_loop``: run the step-by-step loop where the order could run whole targets."""
    torch.manual_seed(1)
    device = torch.device(device)
    task, model = build(name)
    model.to(device)
    if force_step_loop:
        model.decoder.order.runs_whole_target = False
    if name.endswith("_int8"):
        inference_worker(name, task, model, out_path)
        return
    optimizer, train_batches = start_training(task, model)
    tokens = flops = 0
    synchronize(device)
    start = time.perf_counter()
    for sample in train_batches[:steps]:
        train_step(task, model, optimizer, sample)
        tokens += sample["ntokens"]
        src_lengths = sample["net_input"]["src_lengths"].tolist()
        tgt_lengths = sample["target"].ne(task.target_dictionary.pad()).sum(1).tolist()
        flops += 3 * count_flops(name, src_lengths, tgt_lengths)
    synchronize(device)
    train_seconds = time.perf_counter() - start

    speeds = decode_speeds(task, model)
    result = {
        "params": sum(p.numel() for p in model.parameters()),
        "train_tok_s": tokens / train_seconds,
        "train_flops_s": flops / train_seconds,
        "beam5_sent_s": speeds[5],
        "beam1_sent_s": speeds[1],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    Path(out_path).write_text(json.dumps(result))


def inference_worker(name, task, model, out_path):
    """An ``_int8`` row: quantize the fp32-built model (as loading a checkpoint with int8 does), then decode."""
    from fairseq_attn_gru.inference.int8 import quantize_model

    params = sum(p.numel() for p in model.parameters())  # counted in fp32: quantized weights are not Parameters
    quantize_model(model)
    speeds = decode_speeds(task, model)
    result = {"params": params, "train_tok_s": None, "train_flops_s": None, "beam5_sent_s": speeds[5],
              "beam1_sent_s": speeds[1], "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    Path(out_path).write_text(json.dumps(result))


def decode_speeds(task, model):
    """Beam-5 and greedy sentences/s through fairseq's SequenceGenerator on the test split: {5: ..., 1: ...}."""
    from fairseq.sequence_generator import SequenceGenerator

    model.eval()
    device = next(model.parameters()).device
    test = batches(task, "test", device)
    speeds = {}
    for beam in (5, 1):
        # eos is banned before step 30 and forced at it: every model decodes exactly the same number of steps
        # (untrained models would otherwise stop at random points, and the comparison would measure that)
        generator = SequenceGenerator([model], task.target_dictionary, beam_size=beam, max_len_a=0,
                                      max_len_b=GENERATED_LENGTH, min_len=GENERATED_LENGTH)
        sentences = 0
        synchronize(device)
        start = time.perf_counter()
        with torch.no_grad():
            for sample in test:
                generator.generate([model], sample)
                sentences += sample["nsentences"]
        synchronize(device)
        speeds[beam] = sentences / (time.perf_counter() - start)
    return speeds


#: how far (max / min) the fp32 matmul peak, or a model's training ratio to the lstm, may move between rounds before
#: the run is called noisy
QUIET_SPREAD = 1.10


def summarize(runs, peaks, cpu, recipe_env):
    """results.json from each model's per-round measurements (``runs``: name -> [worker result, ...]) and the
    per-round matmul peaks: medians, ratios to the lstm, and each ratio's range over the rounds, which were
    measured side by side (round i of every model ran between the same two peak measurements)."""
    sgemm, bf16_gemm = statistics.median(peaks["fp32"]), statistics.median(peaks["bf16"])
    results = {"cpu": cpu, "recipe_env": recipe_env, "sgemm_gflops": round(sgemm, 1),
               "bf16_gemm_gflops": round(bf16_gemm, 1),
               "sgemm_gflops_rounds": [round(peak, 1) for peak in peaks["fp32"]],
               "bf16_gemm_gflops_rounds": [round(peak, 1) for peak in peaks["bf16"]], "models": {}}
    for name, measurements in runs.items():
        median = {key: None if measurements[0][key] is None else statistics.median(m[key] for m in measurements)
                  for key in measurements[0]}
        peak = bf16_gemm if name.endswith("_bf16") else sgemm
        trained = median["train_tok_s"] is not None  # int8 rows only decode
        results["models"][name] = {
            "params": int(median["params"]),
            "train_tok_s": round(median["train_tok_s"], 1) if trained else None,
            "utilization": round(median["train_flops_s"] / 1e9 / peak, 3) if trained else None,
            "beam5_sent_s": round(median["beam5_sent_s"], 2),
            "beam1_sent_s": round(median["beam1_sent_s"], 2),
            "peak_rss_mb": round(median["peak_rss_mb"], 1),
        }
    lstm = results["models"].get("fairseq_lstm")
    for name, r in results["models"].items():
        if lstm:
            if r["train_tok_s"] is not None:
                r["train_ratio_vs_lstm"] = round(r["train_tok_s"] / lstm["train_tok_s"], 2)
                r["train_ratio_vs_lstm_range"] = ratio_range(runs[name], runs["fairseq_lstm"], "train_tok_s")
            r["beam5_ratio_vs_lstm"] = round(r["beam5_sent_s"] / lstm["beam5_sent_s"], 2)
            r["beam5_ratio_vs_lstm_range"] = ratio_range(runs[name], runs["fairseq_lstm"], "beam5_sent_s")
        fp32 = results["models"].get(name[: -len("_int8")]) if name.endswith("_int8") else None
        if fp32:  # int8 against the same model in fp32
            r["beam5_ratio_vs_fp32"] = round(r["beam5_sent_s"] / fp32["beam5_sent_s"], 2)
            r["beam1_ratio_vs_fp32"] = round(r["beam1_sent_s"] / fp32["beam1_sent_s"], 2)
    return results


def ratio_range(measurements, baseline, key):
    """[lowest, highest] over the rounds of one model's ``key`` divided by the baseline's in the same round."""
    ratios = [m[key] / b[key] for m, b in zip(measurements, baseline)]  # (rounds,)
    return [round(min(ratios), 2), round(max(ratios), 2)]


def noise_warning(results):
    """``spread_warning`` over the fp32 matmul peak of each round and each model's training ratio to the lstm (a CPU
    shared with another load can slow every round alike, so that the peak stays put, while slowing the lstm's many
    small steps more than our models' big ones)."""
    spreads = {"fp32 matmul peak": results["sgemm_gflops_rounds"]}
    spreads.update({f"{name}'s training ratio": model["train_ratio_vs_lstm_range"]
                    for name, model in results["models"].items() if "train_ratio_vs_lstm_range" in model})
    return spread_warning(spreads)


def spread_warning(spreads):
    """One line naming each measurement whose values over the rounds (``spreads``: what -> values) disagree by more
    than QUIET_SPREAD, else None (then the CPU ran at one speed throughout, as far as the rounds can tell)."""
    noisy = [f"{what} {min(values):g}-{max(values):g}" for what, values in spreads.items()
             if max(values) > QUIET_SPREAD * min(values)]
    if not noisy:
        return None
    return (f"warning: the rounds disagree by more than {round(100 * (QUIET_SPREAD - 1))} % ({'; '.join(noisy)}): "
            f"the host's speed varied between rounds; quote each ratio with its range")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", default="bench_out")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--steps", type=int, default=8, help="timed training steps per measurement")
    parser.add_argument("--models", default=None, help=f"comma-separated (default: {','.join(MODELS)})")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cpu (default), or cuda: the first GPU, without the CPU-only rows")
    parser.add_argument("--recipe-env", action="store_true",
                        help="run every model (fairseq's lstm too) in the environment `fairseq-attn-gru train` gives "
                             "fairseq-train: glibc keeping freed memory, OpenMP threads spinning")
    parser.add_argument("--results", default=None, metavar="FILE",
                        help="also write the summary here, with the command, date and wall-clock minutes (make bench: "
                             "results/bench.json, which the docs' speed tables are generated from)")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.steps, args.worker[1], device=args.device)
        return
    started = time.time()
    if args.results is not None:  # refused before the minutes of measuring, not after
        from fairseq_attn_gru.errors import UserError
        from fairseq_attn_gru.recipes.cli import check_output

        try:
            check_output(args.results, "--results")
        except UserError as error:
            sys.exit(f"error: {error}")
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device=cuda is not allowed here: torch sees no CUDA device (a CPU-only build, or none "
                 "visible)")
    if args.models is None:
        models = [name for name in MODELS if args.device == "cpu" or not name.endswith(CPU_ONLY_ROWS)]
    else:
        models = args.models.split(",")
        cpu_only = [name for name in models if name.endswith(CPU_ONLY_ROWS)]
        if args.device == "cuda" and cpu_only:
            sys.exit(f"error: --models={args.models!r} is not allowed with --device cuda: {', '.join(cpu_only)} "
                     f"exist on CPU only")
    device = torch.device(args.device)

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    peaks = {"fp32": [], "bf16": []}
    runs = {name: [] for name in models}
    worker_env = dict(os.environ, PYTHONWARNINGS="ignore")
    if args.recipe_env:  # the workers' only: this process's own OpenMP threads would spin beside them
        from fairseq_attn_gru.pipeline.train import TRAIN_ENV
        worker_env.update(TRAIN_ENV)
    for round_index in range(args.repeats):
        peaks["fp32"].append(matmul_peak(torch.float32, device))
        peaks["bf16"].append(matmul_peak(torch.bfloat16, device))
        for name in models:
            out = out_dir / f".{name}.json"
            print(f"round {round_index + 1}/{args.repeats}: {name} ...", flush=True)
            subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--device", args.device,
                            "--worker", name, str(out)],
                           check=True, env=worker_env, stderr=subprocess.DEVNULL)
            runs[name].append(json.loads(out.read_text()))
            out.unlink()

    results = summarize(runs, peaks, cpu_description(), args.recipe_env)
    if device.type == "cuda":
        results["device"] = torch.cuda.get_device_name(device)
    results["noise_warning"] = noise_warning(results)
    results.update(command=" ".join(["python", "benchmarks/bench.py", *sys.argv[1:]]),
                   date=datetime.date.today().isoformat(), wall_minutes=round((time.time() - started) / 60, 1))
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    if args.results is not None:
        Path(args.results).parent.mkdir(parents=True, exist_ok=True)
        Path(args.results).write_text(json.dumps(results, indent=2) + "\n")
    cpu = results["cpu"]
    print(f"\nCPU: {cpu['model']}, {cpu['cores']} cores, flags {' '.join(cpu['flags']) or '-'}")
    if device.type == "cuda":
        print(f"GPU: {results['device']}")
    print(f"matmul peak: fp32 {results['sgemm_gflops']:.0f} GFLOP/s, bf16 {results['bf16_gemm_gflops']:.0f} GFLOP/s "
          f"(torch.mm {8192 if device.type == 'cuda' else 2048}², median of the rounds)")
    print(f"{'model':<14}{'params':>11}{'train tok/s':>13}{'vs lstm':>9}{'rounds':>12}{'util':>7}{'beam5 s/s':>11}"
          f"{'vs lstm':>9}{'greedy s/s':>12}{'RSS MB':>9}")
    for name, r in results["models"].items():
        if r["train_tok_s"] is None:  # int8: decoding only
            train = f"{'—':>13}{'—':>9}{'—':>12}{'—':>7}"
        else:
            low, high = r.get("train_ratio_vs_lstm_range", (1, 1))
            train = (f"{r['train_tok_s']:>13.0f}{r.get('train_ratio_vs_lstm', 1):>9.2f}{f'{low:.2f}-{high:.2f}':>12}"
                     f"{100 * r['utilization']:>6.0f}%")
        print(f"{name:<14}{r['params']:>11,}{train}{r['beam5_sent_s']:>11.1f}{r.get('beam5_ratio_vs_lstm', 1):>9.2f}"
              f"{r['beam1_sent_s']:>12.1f}{r['peak_rss_mb']:>9.0f}")
    if results["noise_warning"]:
        print(results["noise_warning"])
    print(f"wrote {out_dir / 'results.json'}" + (f" and {args.results}" if args.results is not None else ""))


if __name__ == "__main__":
    main()
