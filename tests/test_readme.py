"""The README's "Quick start" and "Your own parallel text" as a new user runs them, in a temporary directory.

Every command of their ```bash blocks is taken from the README itself, so a command that changes there is the one
tested. `make` targets are only checked to exist in the Makefile (install, test, demo and multi30k take minutes to
an hour); every other command runs as written on a small synthetic English->French corpus, with `fairseq-attn-gru
run` cut short (a tiny model, a few seconds of training: the flags appended after the README's, which win), and
the section's Python snippet runs too. About a minute on 2 cores.
"""
import ast
import json
import os
import random
import re
import subprocess
import sys

import pytest
from conftest import BIN, REPO

pytestmark = pytest.mark.slow

README = REPO / "README.md"
SECTIONS = ("Quick start", "Your own parallel text")
#: appended to the README's `fairseq-attn-gru run`: seconds of training of a tiny model, fp32 (no bf16 probe)
SHORTENED_RUN = ["--minutes", "0.2", "--max-update", "30", "--precision", "fp32", "--text-processing", "moses-bpe", "--bpe-merges", "50",
                 "--encoder-embed-dim", "16", "--encoder-hidden-size", "16", "--encoder-layers", "1",
                 "--decoder-embed-dim", "16", "--decoder-hidden-size", "32", "--decoder-layers", "1",
                 "--decoder-out-embed-dim", "16"]
ENGLISH_FRENCH = {"a": "un", "dog": "chien", "cat": "chat", "man": "homme", "sees": "voit", "has": "a",
                  "red": "rouge", "big": "grand", "ball": "ballon", "hat": "chapeau", "and": "et", "the": "le",
                  "child": "enfant", "plays": "joue", "with": "avec", "runs": "court", "house": "maison"}


def section(markdown: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", markdown, re.MULTILINE | re.DOTALL)
    assert match, f"README.md has no section '## {title}'"
    return match.group(1)


def code_blocks(text: str, language: str):
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def commands(block: str):
    """The shell commands of a bash block: continuation lines joined, comment-only lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def makefile_targets():
    return set(re.findall(r"^([A-Za-z][\w-]*):", (REPO / "Makefile").read_text(), re.MULTILINE))


def write_corpus(root):
    """data/{train,dev,test}.{en,fr}: word-for-word translations a tiny model can start to learn; new.en to
    translate."""
    rng = random.Random(0)
    (root / "data").mkdir()
    for split, size in {"train": 1000, "dev": 24, "test": 8}.items():
        pairs = []
        for _ in range(size):
            words = [rng.choice(list(ENGLISH_FRENCH)) for _ in range(rng.randint(2, 7))]
            pairs.append((" ".join(words).capitalize() + ".",
                          " ".join(ENGLISH_FRENCH[word] for word in words).capitalize() + "."))
        for lang, column in (("en", 0), ("fr", 1)):
            (root / "data" / f"{split}.{lang}").write_text("".join(pair[column] + "\n" for pair in pairs))
    (root / "new.en").write_text("A dog runs.\nThe child plays with a red ball.\nA cat.\n")


def run_shell(command, cwd):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1",
           "PYTHONWARNINGS": "ignore"}
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def readme():
    return README.read_text(encoding="utf-8")


def test_quick_start_names_make_targets_that_exist(readme):
    quick = [command for block in code_blocks(section(readme, "Quick start"), "bash") for command in commands(block)]
    assert quick, "the Quick start has no commands"
    missing = [command for command in quick if command.split()[0] != "make" or command.split()[1] not in
               makefile_targets()]
    assert not missing, f"Quick start commands that are not Makefile targets: {missing}"


def test_your_own_parallel_text_runs_as_written(readme, tmp_path):
    text = section(readme, "Your own parallel text")
    shell = [command for block in code_blocks(text, "bash") for command in commands(block)]
    assert any(command.startswith("fairseq-attn-gru run ") for command in shell)
    write_corpus(tmp_path)
    for command in shell:
        if command == "source .venv/bin/activate":  # the test's PATH starts with the environment's bin/
            continue
        if command.startswith("make "):
            assert command.split()[1] in makefile_targets(), command
            continue
        runnable = command + " " + " ".join(SHORTENED_RUN) if command.startswith("fairseq-attn-gru run ") else command
        result = run_shell(runnable, tmp_path)
        assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        if command.startswith("fairseq-attn-gru run "):
            work = re.search(r"--work (\S+)", command).group(1)
            results = json.loads((tmp_path / work / "results.json").read_text())
            assert set(results["tests"]) == {"test"} and isinstance(results["tests"]["test"]["sacrebleu"], float)
            assert (tmp_path / work / "main" / results["checkpoint"]["chosen"]).is_file()
        elif "translate" in command and "--output" in command:
            output = re.search(r"--output (\S+)", command).group(1)
            source = re.search(r"--input (\S+)", command).group(1)
            assert len((tmp_path / output).read_text().splitlines()) == len((tmp_path / source).read_text().splitlines())
        elif "translate" in command:  # stdin: one line out per line in
            lines_in = run_shell(command.split("|")[0], tmp_path).stdout.splitlines()
            assert len(result.stdout.splitlines()) == len(lines_in), result.stdout
        elif command.startswith("python -c"):
            assert "sacrebleu" in result.stdout, result.stdout
    snippets = code_blocks(text, "python")
    assert len(snippets) == 1, "the section's Python snippet"
    (tmp_path / "snippet.py").write_text(snippets[0])
    result = subprocess.run([sys.executable, "snippet.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 0, result.stderr[-3000:]
    translations, aligned = result.stdout.splitlines()[-2:]
    assert len(ast.literal_eval(translations)) == 2, translations  # the two sentences' translations
    assert " -> " in aligned and "[[" in aligned, aligned  # subwords and the attention rows
