"""What `make peers` (compare.py) is built from, without running anything long: the prepared data converted for each
toolkit, each toolkit's configuration, reading what the runs wrote (the measure events and each toolkit's own log),
the results table and the curve plot. tests/test_peers.py checks all of it without the peers installed.

Toolkits (the keys of results/peers.json): ``fairseq_attn_gru`` (this project), ``joeynmt`` (Joey NMT 2.3.0),
``opennmt_py`` (OpenNMT-py 3.5.1).

Configurations:

- ``general`` and ``bahdanau``: the matched-size comparison. The same sizes for all three (``MATCHED``); ``general`` is
  our ``gru_attn_general`` (GRU step, then bilinear attention on the new state), ``bahdanau`` our ``gru_bahdanau``
  (MLP attention on the previous state, the GRU reading [embedding; context]). ``MATCH_NOTES`` says where a peer
  cannot follow.
- ``budget``: each toolkit's best RNN configuration from its own documentation or published configs
  (``BUDGET_SOURCES``), trained for the same minutes.
"""
import json
import re
from pathlib import Path
from typing import Dict, List, Optional

TOOLKITS = ("fairseq_attn_gru", "joeynmt", "opennmt_py")
TOOLKIT_NAMES = {"fairseq_attn_gru": "fairseq-attn-gru", "joeynmt": "Joey NMT", "opennmt_py": "OpenNMT-py"}
MATCHED_CONFIGS = ("general", "bahdanau")
CONFIGS = (*MATCHED_CONFIGS, "budget")
#: the matched-size comparison's settings, the same for all three toolkits
MATCHED = {"embed": 256, "encoder_hidden_per_direction": 256, "encoder_layers": 1, "bidirectional": True,
           "decoder_hidden": 512, "decoder_layers": 1, "batch_tokens": 2000, "dropout": 0.2, "lr": 0.001,
           "optimizer": "adam"}
#: where a peer cannot do what our matched model does
MATCH_NOTES = {
    "joeynmt": [
        "Joey NMT's recurrent decoder has one order, Luong's (RNN step, then attention on the new state); its "
        "`attention: bahdanau` only swaps the score for an MLP. For `bahdanau` it runs that score with input feeding "
        "(the previous attentional vector enters the RNN), the closest it has to Bahdanau's context-fed GRU.",
        "Joey NMT's `batch_type: token` counts the tokens of a batch its own way; the figures count the target "
        "tokens that went through the model, measured the same way for all three.",
    ],
    "opennmt_py": [
        "OpenNMT-py's RNN decoder has one order, Luong's; `global_attention mlp` only swaps the score. For "
        "`bahdanau` it runs that score with input feeding, the closest it has to Bahdanau's context-fed GRU.",
        "`encoder_type brnn` splits `enc_hid_size` over the two directions: 512 gives 256 per direction, as ours.",
        "OpenNMT-py's `batch_type tokens` counts padded source/target lengths its own way; the figures count the "
        "target tokens that went through the model, measured the same way for all three.",
    ],
}
#: each toolkit's best RNN configuration for the time-budget comparison: where it is documented
BUDGET_SOURCES = {
    "fairseq_attn_gru": "the pipeline's defaults, `fairseq-attn-gru train` (fairseq_attn_gru/pipeline/train.py "
                        "default_flags; docs/pipeline.md#training): gru_nematus, embeddings 512, tuned on Multi30k "
                        "de-en val",
    "joeynmt": "Joey NMT's RNN for IWSLT14 de-en BPE, the RNN row of docs/source/benchmarks.rst in Joey NMT 2.3.0 "
               "(dev 31.77, test 30.74; trained with v1.x): configs/iwslt14_deen_bpe.yaml as of Joey NMT 1.5 (the v2 "
               "file of that name is a Transformer), in 2.3.0's syntax",
    "opennmt_py": "OpenNMT-py's published RNN translation model, German-English IWSLT'14 '2-layer BiLSTM with hidden "
                  "size 500' (BLEU 30.33, OpenNMT-py's pretrained-models page): the default model of "
                  "docs/source/quickstart.md in OpenNMT-py 3.5.1 ('2-layer LSTM with 500 hidden units') with "
                  "`encoder_type brnn`, the optimiser and the rest of onmt/opts.py's defaults written out",
}
#: the peers' own names for the two matched attention types
JOEY_ATTENTION = {"general": "luong", "bahdanau": "bahdanau"}
OPENNMT_ATTENTION = {"general": "general", "bahdanau": "mlp"}
OUR_ARCH = {"general": "gru_attn_general", "bahdanau": "gru_bahdanau"}
#: the settings measured for each toolkit besides the thread count (1 and 2), the faster kept: OpenNMT-py loads and
#: batches its data in `num_workers` DataLoader processes (default 2), which share the 2 cores with training, or in
#: the training process (0). Joey NMT's num_workers defaults to 0; fairseq's loading is in the training process.
LOADER_VARIANTS = {"fairseq_attn_gru": [{}], "joeynmt": [{}], "opennmt_py": [{"num_workers": 0}, {"num_workers": 2}]}
#: steps far beyond any run here: the budget clock (measure.py) ends training, never these
NEVER = 10**8


# -- data -----------------------------------------------------------------------------------------------------------

def fairseq_dictionary_tokens(dict_path) -> List[tuple]:
    """(token, count) of a fairseq dict.txt, in its order (its specials <s> <pad> </s> <unk> are implicit)."""
    entries = []
    for line in Path(dict_path).read_text(encoding="utf-8").splitlines():
        token, _, rest = line.rpartition(" ")
        flags = rest
        if rest == "#fairseq:overwrite":  # "token count #fairseq:overwrite"
            token, _, flags = token.rpartition(" ")
        entries.append((token, int(flags)))
    return entries


def write_vocabularies(dict_path, out_dir) -> Dict[str, Path]:
    """Our joint dictionary in each peer's vocabulary format, so that all three have the same vocabulary: Joey NMT's
    one token a line; OpenNMT-py's ``token<TAB>count`` (what onmt_build_vocab writes). Each adds its own specials."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = fairseq_dictionary_tokens(dict_path)
    paths = {"joeynmt": out_dir / "vocab.joeynmt.txt", "opennmt_py": out_dir / "vocab.opennmt_py.txt"}
    paths["joeynmt"].write_text("".join(f"{token}\n" for token, _ in entries), encoding="utf-8")
    paths["opennmt_py"].write_text("".join(f"{token}\t{count}\n" for token, count in entries), encoding="utf-8")
    return paths


def write_lines(path, lines) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def convert_data(prep_dir, test_sets: Dict[str, Dict[str, List[str]]], encode, source_lang: str, target_lang: str,
                 out_dir) -> dict:
    """The prepared data for the three toolkits in out_dir: the subword text `prepare` wrote (train, valid) copied
    as ``SPLIT.LANG``; each test set (raw {lang: lines}) encoded with ``encode(lines, lang)`` (the prepared
    directory's own text processing) as ``NAME.LANG``, its raw reference kept as ``NAME.ref``; the vocabularies.
    Every toolkit then reads the same token sequences."""
    prep_dir, out_dir = Path(prep_dir), Path(out_dir)
    splits = {}
    for split in ("train", "valid"):
        for lang in (source_lang, target_lang):
            write_lines(out_dir / f"{split}.{lang}",
                        (prep_dir / "text" / f"{split}.{lang}").read_text(encoding="utf-8").splitlines())
        splits[split] = str(out_dir / split)
    for name, by_lang in test_sets.items():
        write_lines(out_dir / f"{name}.{source_lang}", encode(by_lang[source_lang], source_lang))
        write_lines(out_dir / f"{name}.{target_lang}", encode(by_lang[target_lang], target_lang))
        write_lines(out_dir / f"{name}.ref", by_lang[target_lang])
        splits[name] = str(out_dir / name)
    vocabularies = write_vocabularies(prep_dir / "bin" / f"dict.{target_lang}.txt", out_dir)
    return {"dir": str(out_dir), "splits": splits, "vocab": {k: str(v) for k, v in vocabularies.items()},
            "source_lang": source_lang, "target_lang": target_lang}


# -- configurations -------------------------------------------------------------------------------------------------

def joeynmt_config(config: str, data: dict, model_dir) -> dict:
    """Joey NMT 2.3.0's YAML (as a dict) for ``config`` on the converted data. The prepared text is already
    segmented, so Joey reads it as whitespace tokens (``level: word``): its subword-nmt tokenizer would apply BPE
    again."""
    source, target = data["source_lang"], data["target_lang"]
    side = lambda lang, max_length: {  # noqa: E731
        "lang": lang, "level": "word", "lowercase": False, "normalize": False, "max_length": max_length,
        "min_length": 1, "voc_min_freq": 1, "voc_file": data["vocab"]["joeynmt"],
        "tokenizer_type": "subword-nmt", "tokenizer_cfg": {"pretokenizer": "none"}}
    if config == "budget":  # configs/iwslt14_deen_bpe.yaml of Joey NMT 1.5, in 2.3.0's syntax
        max_length = 62
        training = {"optimizer": "adam", "normalization": "tokens", "learning_rate": 0.0002, "batch_size": 80,
                    "batch_type": "sentence", "scheduling": "plateau", "patience": 8, "weight_decay": 0.0,
                    "decrease_factor": 0.7, "early_stopping_metric": "loss", "validation_freq": 2000,
                    "logging_freq": 500, "keep_best_ckpts": 1}
        model = {
            "encoder": {"type": "recurrent", "rnn_type": "gru", "embeddings": {"embedding_dim": 620, "scale": False},
                        "hidden_size": 500, "bidirectional": True, "dropout": 0.0, "num_layers": 1},
            "decoder": {"type": "recurrent", "rnn_type": "gru", "embeddings": {"embedding_dim": 620, "scale": False},
                        "hidden_size": 1000, "dropout": 0.0, "hidden_dropout": 0.2, "num_layers": 1,
                        "input_feeding": True, "init_hidden": "bridge", "attention": "bahdanau"}}
        testing = {"beam_size": 5, "beam_alpha": 1.0, "max_output_length": 80}
    else:
        max_length = 250  # as the prepared data's own cleaning (--max-words 250): nothing more is dropped
        # "plateau" steps only after a validation, and none runs: a constant rate, as the other two have (Joey
        # 2.3.0 refuses a config without `scheduling`, though its docs say none means constant)
        training = {"optimizer": "adam", "normalization": "tokens", "learning_rate": MATCHED["lr"],
                    "scheduling": "plateau", "batch_size": MATCHED["batch_tokens"], "batch_type": "token",
                    "validation_freq": NEVER,
                    "logging_freq": 10, "keep_best_ckpts": 1}
        embeddings = {"embedding_dim": MATCHED["embed"], "scale": False}
        model = {
            "encoder": {"type": "recurrent", "rnn_type": "gru", "embeddings": embeddings,
                        "hidden_size": MATCHED["encoder_hidden_per_direction"], "bidirectional": True,
                        "dropout": MATCHED["dropout"], "num_layers": MATCHED["encoder_layers"]},
            "decoder": {"type": "recurrent", "rnn_type": "gru", "embeddings": embeddings,
                        "hidden_size": MATCHED["decoder_hidden"], "dropout": MATCHED["dropout"],
                        "hidden_dropout": MATCHED["dropout"], "num_layers": MATCHED["decoder_layers"],
                        # our gru_attn_general has no input feeding; gru_bahdanau's GRU reads the context
                        "input_feeding": config == "bahdanau", "init_hidden": "bridge",
                        "attention": JOEY_ATTENTION[config]}}
        testing = {"beam_size": 5, "beam_alpha": 1.0}
    training.update({"epochs": NEVER, "updates": NEVER, "shuffle": True, "overwrite": True,
                     "print_valid_sents": [0]})
    return {
        "name": f"peers_{config}", "joeynmt_version": "2.3.0", "model_dir": str(model_dir), "use_cuda": False,
        "fp16": False, "random_seed": 42,
        "data": {"train": data["splits"]["train"], "dev": data["splits"]["valid"], "dataset_type": "plain",
                 "src": side(source, max_length), "trg": side(target, max_length)},
        "testing": {**testing, "batch_size": 64, "batch_type": "sentence", "eval_metrics": ["bleu"]},
        "training": training,
        "model": {"initializer": "xavier_uniform", "bias_initializer": "zeros", "embed_initializer": "xavier_uniform",
                  "tied_embeddings": False, "tied_softmax": False, **model},
    }


def variant_name(variant: dict) -> str:
    """A LOADER_VARIANTS entry as a run's name part: "" or "-w2"."""
    return "".join(f"-w{value}" if key == "num_workers" else f"-{key}{value}" for key, value in variant.items())


#: --smoke only: OpenNMT-py fills a bucket of 262,144 examples (its default) before it batches, reading the corpus
#: again and again: 874 passes over a 300-line slice, minutes of loading for seconds of training
SMOKE_OPENNMT_BUCKET = 1024


def opennmt_config(config: str, data: dict, model_dir, variant: Optional[dict] = None, smoke: bool = False) -> dict:
    """OpenNMT-py 3.5.1's YAML (as a dict) for ``config`` on the converted data (no transforms: the text is already
    segmented); ``variant``: a LOADER_VARIANTS entry; ``smoke``: SMOKE_OPENNMT_BUCKET."""
    source, target = data["source_lang"], data["target_lang"]
    model_dir = Path(model_dir)
    common = {
        "save_model": str(model_dir / "model"), "src_vocab": data["vocab"]["opennmt_py"],
        "tgt_vocab": data["vocab"]["opennmt_py"], "share_vocab": True, "src_words_min_frequency": 1,
        "tgt_words_min_frequency": 1, "overwrite": True, "world_size": 1, "gpu_ranks": [], "seed": 42,
        "data": {"corpus_1": {"path_src": f"{data['splits']['train']}.{source}",
                              "path_tgt": f"{data['splits']['train']}.{target}", "weight": 1},
                 "valid": {"path_src": f"{data['splits']['valid']}.{source}",
                           "path_tgt": f"{data['splits']['valid']}.{target}"}},
        "train_steps": NEVER, "save_checkpoint_steps": NEVER, "report_every": 10,
        "log_file": str(model_dir / "train.log"),
    }
    if config == "budget":  # the published 2-layer BiLSTM 500: quickstart's default model with a brnn encoder
        model = {"encoder_type": "brnn", "decoder_type": "rnn", "rnn_type": "LSTM", "enc_layers": 2,
                 "dec_layers": 2, "enc_hid_size": 500, "dec_hid_size": 500, "word_vec_size": 500,
                 "global_attention": "general", "input_feed": 1, "dropout": [0.3], "optim": "sgd",
                 "learning_rate": 1.0, "learning_rate_decay": 0.5, "start_decay_steps": 50000, "decay_steps": 10000,
                 "max_grad_norm": 5, "param_init": 0.1, "batch_size": 64, "batch_type": "sents",
                 "valid_steps": 10000}
    else:
        model = {"encoder_type": "brnn", "decoder_type": "rnn", "rnn_type": "GRU",
                 "enc_layers": MATCHED["encoder_layers"], "dec_layers": MATCHED["decoder_layers"],
                 "enc_hid_size": 2 * MATCHED["encoder_hidden_per_direction"], "dec_hid_size": MATCHED["decoder_hidden"],
                 "word_vec_size": MATCHED["embed"], "global_attention": OPENNMT_ATTENTION[config],
                 # our gru_attn_general has no input feeding; gru_bahdanau's GRU reads the context
                 "input_feed": 1 if config == "bahdanau" else 0, "dropout": [MATCHED["dropout"]],
                 # a learned layer from the encoder's last state to the decoder's first, as ours and Joey's
                 "bridge": True,
                 "optim": MATCHED["optimizer"], "learning_rate": MATCHED["lr"], "decay_method": "none",
                 "max_grad_norm": 5, "param_init": 0, "param_init_glorot": True,
                 "batch_size": MATCHED["batch_tokens"], "batch_type": "tokens", "valid_steps": NEVER}
    return {**common, **model, **(variant or {}), **({"bucket_size": SMOKE_OPENNMT_BUCKET} if smoke else {})}


def fairseq_matched_flags(config: str, prep_dir, save_dir) -> List[str]:
    """fairseq-train flags for our model at the matched sizes (fp32, like the peers)."""
    from fairseq_attn_gru.recipes.cli import USER_DIR

    prep = json.loads((Path(prep_dir) / "prep.json").read_text())
    return [
        str(Path(prep_dir) / "bin"), "--user-dir", USER_DIR, "--arch", OUR_ARCH[config], "--task", "translation",
        "--source-lang", prep["source_lang"], "--target-lang", prep["target_lang"],
        "--encoder-embed-dim", str(MATCHED["embed"]), "--decoder-embed-dim", str(MATCHED["embed"]),
        "--encoder-hidden-size", str(MATCHED["encoder_hidden_per_direction"]),
        "--encoder-layers", str(MATCHED["encoder_layers"]), "--decoder-hidden-size", str(MATCHED["decoder_hidden"]),
        "--decoder-layers", str(MATCHED["decoder_layers"]), "--decoder-out-embed-dim", str(MATCHED["decoder_hidden"]),
        "--dropout", str(MATCHED["dropout"]), "--optimizer", "adam", "--lr", str(MATCHED["lr"]),
        "--clip-norm", "5", "--max-tokens", str(MATCHED["batch_tokens"]), "--criterion", "cross_entropy",
        "--cpu", "--disable-validation", "--no-save", "--max-epoch", str(NEVER), "--log-format", "simple",
        "--log-interval", "10", "--save-dir", str(save_dir), "--seed", "42",
    ]


def fairseq_budget_flags(prep_dir, save_dir, precision: str) -> List[str]:
    """The pipeline's own training flags (`fairseq-attn-gru train`), with the precision its --precision auto chose;
    --max-epoch lifted and --patience off: the budget ends training."""
    from fairseq_attn_gru.pipeline.prepare import load_prep
    from fairseq_attn_gru.pipeline.train import default_flags

    flags = default_flags(Path(prep_dir), load_prep(prep_dir), save_dir, "cpu")
    return [*flags, *(["--cpu-bf16"] if precision == "bf16" else []), "--max-epoch", str(NEVER), "--patience", "-1"]


def write_config(path, content) -> Path:
    """A toolkit's configuration file: YAML for the peers, JSON for ours."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_text(json.dumps(content, indent=2) + "\n")
    else:
        import yaml

        path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


# -- reading the runs -----------------------------------------------------------------------------------------------

MEASURE_PREFIX = "PEERS_MEASURE "


def measure_events(text: str) -> List[dict]:
    """The measure events in a measure file (JSON lines) or in a log (lines starting with PEERS_MEASURE)."""
    events = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(MEASURE_PREFIX):
            line = line[len(MEASURE_PREFIX):]
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events


def last_event(events: List[dict], kind: str, tag: Optional[str] = None) -> Optional[dict]:
    chosen = [event for event in events if event.get("event") == kind and (tag is None or event.get("tag") == tag)]
    return chosen[-1] if chosen else None


#: each toolkit's own throughput line in its log: (regex, what the number counts)
OWN_SPEED = {
    "fairseq_attn_gru": (re.compile(r"\| wps (\d+(?:\.\d+)?)"), "wps: target tokens per second"),
    "joeynmt": (re.compile(r"Tokens per Sec:\s+(\d+(?:\.\d+)?)"), "Tokens per Sec: target tokens per second"),
    "opennmt_py": (re.compile(r";\s*\d+/\s*(\d+) tok/s;"), "tok/s: source/target tokens per second (target shown)"),
}
#: warnings about a library's API (deprecations), printed by every run of the toolkit whatever its configuration:
#: counted apart from the warnings about this run
DEPRECATION = re.compile(r"deprecat|no longer experimental", re.IGNORECASE)
#: warning lines that say nothing about the run (why each is harmless)
BENIGN_WARNINGS = [
    re.compile(r"pin_memory"),  # torch's DataLoader on a CPU: pinning needs a GPU and is skipped
    re.compile(r"^PEERS_MEASURE"),  # our own measurement lines
    # Hydra's notices when fairseq composes its config, printed by every fairseq command whatever its flags
    re.compile(r"version_base parameter is not specified|is validated against ConfigStore schema"),
]
WARNING_PATTERN = re.compile(r"warn", re.IGNORECASE)


#: each toolkit's own parameter count in its log
OWN_PARAMS = {
    "fairseq_attn_gru": re.compile(r"num\. shared model params: ([\d,]+)"),
    "joeynmt": re.compile(r"Total params: (\d+)"),
    "opennmt_py": re.compile(r"\* number of parameters: (\d+)"),
}


def toolkit_log_params(toolkit: str, log: str) -> Optional[int]:
    """The model's parameter count as the toolkit logs it, or None."""
    found = OWN_PARAMS[toolkit].findall(log)
    return int(found[-1].replace(",", "")) if found else None


def toolkit_log_speed(toolkit: str, log: str) -> Optional[float]:
    """The median of the toolkit's own logged training speed (each toolkit's own counting), or None."""
    pattern, _ = OWN_SPEED[toolkit]
    values = sorted(float(value) for value in pattern.findall(log))
    return values[len(values) // 2] if values else None


def log_warnings(log: str) -> Dict[str, List[str]]:
    """The distinct warning lines of a toolkit's log (a Python warning whose message is on the next line is read
    with it): {"warnings": about this run, "deprecations": about a library's API (DEPRECATION)}, less the
    known-harmless ones (BENIGN_WARNINGS)."""
    lines = log.splitlines()
    found = {"warnings": [], "deprecations": []}
    for i, line in enumerate(lines):
        if not WARNING_PATTERN.search(line) or (line.startswith("  ") and "Warning" not in line):
            continue  # the latter: the source line Python prints under a warning, `  warnings.warn(...)`
        text = line.strip()
        if text.endswith("Warning:") and i + 1 < len(lines):
            text += " " + lines[i + 1].strip()
        if any(pattern.search(text) for pattern in BENIGN_WARNINGS):
            continue
        text = re.sub(r"^\[?\d{4}-\d\d-\d\d[ T][\d:,.]+\]?\s*", "", text)[:300]
        kind = "deprecations" if DEPRECATION.search(text) else "warnings"
        if text not in found[kind]:
            found[kind].append(text)
    return found


# -- the results ----------------------------------------------------------------------------------------------------

def ratio(ours: Optional[float], peers: List[Optional[float]]) -> Optional[float]:
    """ours / the best peer figure (None when a figure is missing)."""
    known = [value for value in peers if value]
    return round(ours / max(known), 2) if ours and known else None


def targets(results: dict) -> dict:
    """The issue's three targets, each with the measured value and whether it is met."""
    peers = [results[t] for t in TOOLKITS[1:] if t in results]
    ours = results.get("fairseq_attn_gru", {})
    get = lambda entry, *keys: _get(entry, keys)  # noqa: E731
    train = ratio(get(ours, "matched", "train_tok_s"), [get(p, "matched", "train_tok_s") for p in peers])
    beam = ratio(get(ours, "matched", "beam5_sent_s"), [get(p, "matched", "beam5_sent_s") for p in peers])
    ours_bleu = get(ours, "budget", "test_2016_flickr_sacrebleu")
    peer_bleu = [get(p, "budget", "test_2016_flickr_sacrebleu") for p in peers]
    peer_bleu = [value for value in peer_bleu if value is not None]
    margin = round(ours_bleu - max(peer_bleu), 2) if ours_bleu is not None and peer_bleu else None
    return {
        "train_tok_s_vs_faster_peer": {"value": train, "target": 1.5, "met": train is not None and train >= 1.5},
        "beam5_sent_s_vs_faster_peer": {"value": beam, "target": 2.0, "met": beam is not None and beam >= 2.0},
        "test_2016_flickr_sacrebleu_over_better_peer": {"value": margin, "target": 2.0,
                                                        "met": margin is not None and margin >= 2.0},
    }


def _get(entry, keys):
    for key in keys:
        if not isinstance(entry, dict) or key not in entry:
            return None
        entry = entry[key]
    return entry


def _fmt(value, digits=0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def results_table(results: dict) -> str:
    """The headline table (Markdown): one row per toolkit."""
    minutes = _get(results, ("settings", "budget_minutes"))
    rows = ["| toolkit | version | training tok/s (matched) | beam-5 sent/s | greedy sent/s | peak RSS MB | "
            f"test_2016_flickr sacreBLEU ({_fmt(minutes, 1 if minutes and minutes < 1 else 0)} min) | "
            "test_2017_flickr sacreBLEU |",
            "|---|---|---|---|---|---|---|---|"]
    for toolkit in TOOLKITS:
        entry = results.get(toolkit)
        if entry is None:
            continue
        matched, budget = entry.get("matched", {}), entry.get("budget", {})
        rows.append(f"| {TOOLKIT_NAMES[toolkit]} | {entry.get('version', '?')} | {_fmt(matched.get('train_tok_s'))} | "
                    f"{_fmt(matched.get('beam5_sent_s'), 1)} | {_fmt(matched.get('greedy_sent_s'), 1)} | "
                    f"{_fmt(matched.get('peak_rss_mb'))} | {_fmt(budget.get('test_2016_flickr_sacrebleu'), 2)} | "
                    f"{_fmt(budget.get('test_2017_flickr_sacrebleu'), 2)} |")
    return "\n".join(rows)


def profile_table(results: dict) -> str:
    """speed_profile.py's readings (results/peers_profile.json) in Markdown: one row per toolkit and run."""
    rows = ["| toolkit | torch (fp32 matmul peak) | run | wall s | matrix products: share, GFLOP/s | MFLOP a token "
            "| outside torch ops | the largest other ops |", "|---|---|---|---|---|---|---|---|"]
    for toolkit in TOOLKITS:
        for mode in ("train", "translate"):
            reading = results.get(toolkit, {}).get(mode)
            if reading is None:
                continue
            wall = reading["wall_seconds"]
            others = reading["other_ops"][:3]
            rows.append(
                f"| {TOOLKIT_NAMES[toolkit]} | {reading['torch']} ({reading['fp32_matmul_gflops']:.0f}) | "
                f"{'training' if mode == 'train' else 'beam 5'} | {wall:.1f} | "
                f"{100 * reading['product_share']:.0f} %, {reading['product_gflop_s'] or 0:.0f} | "
                f"{reading['product_mflop_per_token'] or 0:.1f} | "
                f"{100 * reading['outside_ops_seconds'] / wall:.0f} % | "
                + ", ".join(f"`{op['op']}` {100 * op['seconds'] / wall:.0f} %" for op in others) + " |")
    return "\n".join(rows)


#: what a matched translation's speed depends on besides the toolkit: how many tokens it wrote for how many sentences
OUTPUT_LENGTH_KEYS = ("beam5_output_tokens", "greedy_output_tokens", "translate_sentences")


def beam5_output_tok_s(matched: dict) -> Optional[float]:
    """Beam-5 output tokens a second: sentences/s times the output tokens a sentence."""
    tokens, sentences, sent_s = (matched.get(key) for key in ("beam5_output_tokens", "translate_sentences",
                                                                "beam5_sent_s"))
    return round(sent_s * tokens / sentences, 1) if tokens and sentences and sent_s else None


def output_length_line(results: dict) -> Optional[str]:
    """Models trained a few minutes write outputs of different lengths, and a beam search's time grows with the
    tokens it writes: the matched `general` runs' beam-5 output tokens a sentence and output tokens a second."""
    present = [toolkit for toolkit in TOOLKITS if beam5_output_tok_s(_get(results, (toolkit, "matched")) or {})]
    if len(present) < 2:
        return None
    matched = {toolkit: results[toolkit]["matched"] for toolkit in present}
    lengths = ", ".join(f"{TOOLKIT_NAMES[t]} {m['beam5_output_tokens'] / m['translate_sentences']:.1f}"
                        for t, m in matched.items())
    rates = ", ".join(f"{TOOLKIT_NAMES[t]} {_fmt(beam5_output_tok_s(m))}" for t, m in matched.items())
    line = (f"The matched models, trained {_fmt(_get(results, ('settings', 'matched_minutes')), 0)} minutes, write "
            f"outputs of different lengths, and a beam search's time grows with the tokens it writes: beam-5 output "
            f"tokens a sentence: {lengths}; beam-5 output tokens/s: {rates}")
    if "fairseq_attn_gru" in matched:
        peers = [beam5_output_tok_s(m) for t, m in matched.items() if t != "fairseq_attn_gru"]
        line += f" ({ratio(beam5_output_tok_s(matched['fairseq_attn_gru']), peers):.2f}× the faster peer)"
    return line + "."


def targets_lines(results: dict) -> List[str]:
    names = {"train_tok_s_vs_faster_peer": "training tok/s vs the faster peer",
             "beam5_sent_s_vs_faster_peer": "beam-5 sent/s vs the faster peer",
             "test_2016_flickr_sacrebleu_over_better_peer": "test_2016_flickr sacreBLEU over the better peer"}
    lines = []
    for key, target in targets(results).items():
        value = target["value"]
        shown = "–" if value is None else (f"{value:+.2f}" if key.startswith("test") else f"{value:.2f}×")
        wanted = f"+{target['target']:.1f}" if key.startswith("test") else f"{target['target']:.1f}×"
        lines.append(f"{names[key]}: {shown} (target {wanted}: {'met' if target['met'] else 'missed'})")
    return lines


def plot_curves(results: dict, png) -> Optional[Path]:
    """Val sacreBLEU by training minute, the three toolkits on one plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.2))
    drawn = False
    for toolkit in TOOLKITS:
        curve = _get(results, (toolkit, "budget", "val_curve")) or []
        if curve:
            axes.plot([point["minutes"] for point in curve], [point["val_sacrebleu"] for point in curve], marker="o",
                      label=f"{TOOLKIT_NAMES[toolkit]} {results[toolkit].get('version', '')}")
            drawn = True
    if not drawn:
        plt.close(figure)
        return None
    cpu = results.get("cpu", {})
    axes.set_xlabel("training minutes (wall clock, the same budget for each)")
    axes.set_ylabel("val sacreBLEU (beam 5, detokenised)")
    axes.set_title(f"Multi30k {results.get('settings', {}).get('direction', '')}: each toolkit's best RNN config\n"
                   f"{cpu.get('model', '')}, {cpu.get('cores', '?')} cores, fp32 matmul "
                   f"{cpu.get('fp32_matmul_gflops', '?')} GFLOP/s", fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=110)
    plt.close(figure)
    return png


# -- docs/peers.md's measured section -------------------------------------------------------------------------------

DOCS_START, DOCS_END = "<!-- peers:start -->", "<!-- peers:end -->"


def docs_section(results: dict, results_name: str = "results/peers.json") -> str:
    """The measured part of docs/peers.md, all of it from one results file: the machine, the command, the table,
    the targets, the matched Bahdanau-style row, the settings each toolkit ran with, the installs, the warnings."""
    cpu = results.get("cpu", {})
    settings = results.get("settings", {})
    length_line = output_length_line(results)
    lines = [f"From `{results_name}` ([plot](../results/peers.png)), written by `{results.get('command', '?')}` "
             f"on {cpu.get('model', '?')}, {cpu.get('cores', '?')} cores, fp32 matmul "
             f"{cpu.get('fp32_matmul_gflops', '?')} GFLOP/s measured at its start; matched runs "
             f"{settings.get('matched_minutes', '?')} min each, budget {settings.get('budget_minutes', '?')} min.", "",
             results_table(results), "", *[f"- {line}" for line in targets_lines(results)], "",
             *([length_line, ""] if length_line else []),
             "Matched size, the Bahdanau-style configuration (`gru_bahdanau` and the peers' MLP attention):", "",
             "| toolkit | parameters | training tok/s | beam-5 sent/s | greedy sent/s | peak RSS MB |",
             "|---|---|---|---|---|---|"]
    for toolkit in TOOLKITS:
        bahdanau = _get(results, (toolkit, "matched", "bahdanau")) or {}
        if toolkit in results:
            lines.append(f"| {TOOLKIT_NAMES[toolkit]} | {_fmt(bahdanau.get('params'))} | "
                         f"{_fmt(bahdanau.get('tok_s'))} | "
                         f"{_fmt(bahdanau.get('beam5_sent_s'), 1)} | {_fmt(bahdanau.get('greedy_sent_s'), 1)} | "
                         f"{_fmt(bahdanau.get('peak_rss_mb'))} |")
    lines += ["", "| toolkit | parameters (matched, Luong) | training setting kept (tok/s of each tried) | translation "
              "threads (beam-5 sent/s of each) | its own log's tok/s | first install, venv size | warnings "
              "(deprecations) |", "|---|---|---|---|---|---|---|"]
    for toolkit in TOOLKITS:
        entry = results.get(toolkit)
        if entry is None:
            continue
        matched, budget, install = entry.get("matched", {}), entry.get("budget", {}), entry.get("install") or {}
        tried = ", ".join(f"{_setting_text(run)}: {_fmt(run.get('tok_s'))}"
                          for run in matched.get("tok_s_by_setting", []))
        beams = ", ".join(f"{threads}: {_fmt(value, 1)}"
                          for threads, value in (matched.get("beam5_sent_s_by_threads") or {}).items())
        installed = (f"{install['install_seconds']:.0f} s, {install['venv_mb']:,.0f} MB" if install
                     else "this project's `.venv/` (`make install`)")
        warnings = len(matched.get("warnings", [])) + len(budget.get("warnings", []))
        deprecations = len(matched.get("deprecations", [])) + len(budget.get("deprecations", []))
        lines.append(f"| {TOOLKIT_NAMES[toolkit]} | {_fmt(matched.get('params'))} | "
                     f"{_setting_text(matched.get('train_setting') or {})} ({tried}) | "
                     f"{matched.get('translate_threads', '?')} ({beams}) | {_fmt(matched.get('own_log_tok_s'))} | "
                     f"{installed} | {warnings} ({deprecations}) |")
    return "\n".join(lines)


def _setting_text(setting: dict) -> str:
    text = f"{setting.get('threads', '?')} thread{'s' if setting.get('threads') != 1 else ''}"
    return text + (f", num_workers {setting['num_workers']}" if "num_workers" in setting else "")


def update_docs(results: dict, docs_path, results_name: str = "results/peers.json") -> bool:
    """Replace the text between DOCS_START and DOCS_END in docs_path with docs_section(results); False when the
    markers are missing."""
    path = Path(docs_path)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if DOCS_START not in text or DOCS_END not in text:
        return False
    before, rest = text.split(DOCS_START, 1)
    after = rest.split(DOCS_END, 1)[1]
    path.write_text(f"{before}{DOCS_START}\n{docs_section(results, results_name)}\n{DOCS_END}{after}", encoding="utf-8")
    return True
