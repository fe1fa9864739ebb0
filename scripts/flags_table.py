#!/usr/bin/env python
"""Build the docs' generated tables, so the docs cannot drift from the code or from the measurements: the flag and
architecture tables from the configs, the results tables from results/*.json (results_tables.py).

The help strings live once, in the dataclass fields that fairseq turns into command-line flags
(``GRUAttnConfig`` for the model, ``ToyTranslationConfig`` for the toy task, ``InverseSqrtPlateauConfig`` for the
learning-rate schedule); the named architectures' defaults live in ``NAMED_ARCHITECTURES``. Each generated table
lives in one file (``HOMES``: the architectures, the model's flags and the schedule's in docs/model.md, the toy
task's in docs/toy_task.md, the results where RESULT_TABLES says) between two marker comments,
``<!-- flags:NAME:start -->`` and ``<!-- flags:NAME:end -->`` (``results:NAME`` for a results table).

    python scripts/flags_table.py            # print the tables
    python scripts/flags_table.py --write    # rewrite them in place
    python scripts/flags_table.py --check    # exit 1 with one line if a file differs (tests/test_docs.py)
"""
import argparse
import dataclasses
import logging
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: which file (relative to the checkout) holds each table
#: the tables of measured figures (built by results_tables.py from results/*.json) and their files
RESULT_TABLES = {"multi30k-headline": "README.md", "multi30k": "docs/multi30k.md",
                 "text-processing": "docs/pipeline.md", "peers": "README.md", "peers-profile": "docs/peers.md",
                 "demo": "README.md", "demo-details": "docs/demo.md", "bench": "README.md",
                 "bench-details": "docs/speed.md", "bench-int8": "docs/speed.md", "install": "README.md",
                 "install-details": "docs/install.md", "tests": "docs/tests.md"}
HOMES = {"architectures": "docs/model.md", "gru_attn": "docs/model.md", "toy_translation": "docs/toy_task.md",
         "inverse_sqrt_plateau": "docs/model.md", **RESULT_TABLES}
CHECK_HINT = "run `python scripts/flags_table.py --write`"


def marker_kind(name: str) -> str:
    """``results`` for a table of measured figures (RESULT_TABLES), ``flags`` for one built from the configs."""
    return "results" if name in RESULT_TABLES else "flags"


def start_marker(name: str) -> str:
    return f"<!-- {marker_kind(name)}:{name}:start -->"


def end_marker(name: str) -> str:
    return f"<!-- {marker_kind(name)}:{name}:end -->"


# -- reading the configs -------------------------------------------------------------------------------------

def import_configs():
    """Import the config dataclasses and the architecture table, keeping fairseq's import-time log quiet.

    Importing fairseq logs an INFO line about tensorboardX; ``--check`` promises a one-line message.
    """
    fairseq_logger = logging.getLogger("fairseq")
    level = fairseq_logger.level
    fairseq_logger.setLevel(logging.WARNING)
    try:  # restored after: a process that imports this (the tests) keeps fairseq's log lines
        from fairseq_attn_gru.models import config as model_config
        from fairseq_attn_gru.optim.inverse_sqrt_plateau import InverseSqrtPlateauConfig
        from fairseq_attn_gru.tasks.toy_translation import ToyTranslationConfig
    finally:
        fairseq_logger.setLevel(level)

    return model_config, ToyTranslationConfig, InverseSqrtPlateauConfig


def flag_name(field_name: str) -> str:
    """The command-line spelling fairseq gives a dataclass field."""
    return "--" + field_name.replace("_", "-")


def field_default(field: dataclasses.Field):
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def format_default(value) -> str:
    """Booleans read as fairseq's switches do (on/off); an unset optional value as a dash."""
    if value is None or value is dataclasses.MISSING:
        return "—"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(getattr(value, "value", value))


def table_cell(text: str) -> str:
    """Keep a help string on one table row: no newlines, no unescaped column separators."""
    return " ".join(str(text).split()).replace("|", "\\|")


def flag_rows(config_class):
    """(flag, default, help) for every public field; fairseq's private ``_name`` is not a flag, nor is a field that
    only repeats another config's flag (``II("optimization.lr")`` defaults to the string ``${optimization.lr}``)."""
    return [
        (flag_name(field.name), format_default(field_default(field)), field.metadata.get("help", ""))
        for field in dataclasses.fields(config_class)
        if not field.name.startswith("_") and not str(field_default(field)).startswith("${")
    ]


# -- rendering ------------------------------------------------------------------------------------------------

def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(table_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def flags_table(config_class) -> str:
    rows = [(f"`{flag}`", default, help_text) for flag, default, help_text in flag_rows(config_class)]
    return markdown_table(("flag", "default", "help"), rows)


def describe_sizes(cfg: dict, defaults: dict) -> str:
    """One phrase for an architecture's sizes, e.g. 'embeddings 128, bidirectional encoder 2×128, ...'.

    Dropout is named only where it differs from the plain default, which the flags table already shows.
    """
    def layers(count):
        return f"{count}-layer " if count > 1 else ""

    if cfg["encoder_bidirectional"]:
        encoder = f"{layers(cfg['encoder_layers'])}bidirectional encoder 2×{cfg['encoder_hidden_size']}"
    else:
        encoder = f"{layers(cfg['encoder_layers'])}unidirectional encoder {cfg['encoder_hidden_size']}"
    embeddings = (
        f"embeddings {cfg['encoder_embed_dim']}"
        if cfg["encoder_embed_dim"] == cfg["decoder_embed_dim"]
        else f"embeddings {cfg['encoder_embed_dim']}/{cfg['decoder_embed_dim']}"
    )
    decoder = f"{layers(cfg['decoder_layers'])}decoder {cfg['decoder_hidden_size']}"
    sizes = f"{embeddings}, {encoder}, {decoder}, output {cfg['decoder_out_embed_dim']}"
    return sizes if cfg["dropout"] == defaults["dropout"] else f"{sizes}, dropout {cfg['dropout']}"


def architectures_table(defaults: dict, named: dict) -> str:
    """``gru_attn`` (the plain defaults) first, then every named architecture with its defaults applied."""
    rows = []
    for arch, overrides in {"gru_attn": {}, **named}.items():
        cfg = {**defaults, **overrides}
        rows.append((f"`{arch}`", cfg["attention_type"], cfg["decoder_style"], describe_sizes(cfg, defaults)))
    return markdown_table(("arch", "attention", "decoder order", "sizes"), rows)


def generated_tables(root: Path = REPO) -> dict:
    """Every generated table, by marker name (HOMES says which file holds it); the result tables from the results
    files under ``root``."""
    model_config, toy_config, schedule_config = import_configs()
    results = load_script("results_tables")
    return {
        "architectures": architectures_table(model_config.CONFIG_DEFAULTS, model_config.NAMED_ARCHITECTURES),
        "gru_attn": flags_table(model_config.GRUAttnConfig),
        "toy_translation": flags_table(toy_config),
        "inverse_sqrt_plateau": flags_table(schedule_config),
        **{name: builder(root / "results") for name, builder in results.TABLES.items()},
    }


def load_script(name: str):
    """A sibling script of this one as a module (scripts/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- README.md in place ---------------------------------------------------------------------------------------

def replace_table(text: str, name: str, table: str) -> str:
    """Put ``table`` between the two markers named ``name``; a file without them is an error, not a no-op."""
    pattern = re.compile(re.escape(start_marker(name)) + r".*?" + re.escape(end_marker(name)), re.DOTALL)
    if len(pattern.findall(text)) != 1:
        raise ValueError(f"{HOMES[name]} needs exactly one {start_marker(name)} ... {end_marker(name)} block")
    return pattern.sub(lambda _: f"{start_marker(name)}\n{table}\n{end_marker(name)}", text)


def updated_text(text: str, tables: dict) -> str:
    for name, table in tables.items():
        text = replace_table(text, name, table)
    return text


def stale_tables(text: str, tables: dict) -> list:
    """Names of the tables whose copy in ``text`` differs from the configs."""
    return [name for name, table in tables.items() if replace_table(text, name, table) != text]


def tables_by_file(tables: dict) -> dict:
    """{relative path: {table name: table}}, from HOMES."""
    by_file = {}
    for name, table in tables.items():
        by_file.setdefault(HOMES[name], {})[name] = table
    return by_file


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite the tables in place")
    mode.add_argument("--check", action="store_true", help="exit 1 if a file's tables differ from the configs")
    parser.add_argument("--root", type=Path, default=REPO, help="the checkout holding the files (default: %(default)s)")
    args = parser.parse_args(argv)

    tables = generated_tables()
    if not (args.write or args.check):
        print("\n\n".join(f"{start_marker(n)}\n{t}\n{end_marker(n)}" for n, t in tables.items()))
        return 0
    stale_files = []
    for relative, file_tables in tables_by_file(tables).items():
        path = args.root / relative
        try:
            text = path.read_text(encoding="utf-8")
            if args.write:
                path.write_text(updated_text(text, file_tables), encoding="utf-8")
            else:
                stale_files += [f"{relative} ({name})" for name in stale_tables(text, file_tables)]
        except (OSError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    if stale_files:
        print(f"table(s) differ from the configs: {', '.join(stale_files)}; {CHECK_HINT}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
