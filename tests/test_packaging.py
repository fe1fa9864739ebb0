"""Installing and using the plugin the way a user does.

`make install`'s prerequisite check (each missing one faked), the package metadata, `python -m fairseq_attn_gru
--user-dir` for fairseq-train run from another directory, --tensorboard-logdir, a missing optional module, and
fairseq's Python entry points where the recipes used to parse console output: fairseq's BLEU scorer, parameter
counts from a checkpoint, and the Multi30k evaluation through the hub interface (the same translations, alignments
and BLEU as fairseq-generate, on a small corpus made here).
"""
import os
import random
import re
import shutil
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from conftest import BIN, REPO, USER_DIR, run_cli, toy_task
from fairseq_attn_gru.recipes.scoring import fairseq_bleu, fairseq_score, trained_parameters

CHECK = REPO / "scripts" / "check_prerequisites.sh"
BASH = shutil.which("bash")
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


# --- make install's prerequisite check -------------------------------------------------------------------------

def fake_program(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def check(tmp_path, **env):
    """scripts/check_prerequisites.sh with this venv's Python (VENV: one that exists) and `env` on top."""
    env = {"PYTHON": sys.executable, "VENV": sys.prefix, "NEED_MB": "1", **env}
    return run_cli(BASH, CHECK, cwd=tmp_path, check=False, env=env)


def lines(result):
    return result.stderr.strip().splitlines()


def test_prerequisites_present_pass(tmp_path):
    result = check(tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("prerequisites: Python 3."), result.stderr


def test_old_python_is_named_with_what_to_install(tmp_path):
    python = fake_program(tmp_path, "python3", 'echo "3 9 /usr/include/python3.9"')
    result = check(tmp_path, PYTHON=str(python))
    assert result.returncode == 1
    assert lines(result)[0] == (f"error: Python 3.11 or newer is needed, '{python}' is 3.9: install it (e.g. "
                                "python3.11) and run make install PYTHON=python3.11")


def test_missing_venv_module_is_named(tmp_path):
    # answers the version query like the real interpreter; `import venv, ensurepip` fails as without python3-venv
    python = fake_program(tmp_path, "python3",
                          f'case "$2" in *sysconfig*) exec "{sys.executable}" "$@";; *) exit 1;; esac')
    result = check(tmp_path, PYTHON=str(python), VENV=str(tmp_path / "new-venv"))
    assert result.returncode == 1
    [line] = [line for line in lines(result) if line.startswith("error:")]
    assert "cannot create a virtual environment" in line and "-venv" in line and "apt install python3." in line


def test_missing_python_headers_are_named(tmp_path):
    python = fake_program(tmp_path, "python3", f'echo "3 11 {tmp_path}/no-include"')
    result = check(tmp_path, PYTHON=str(python))
    assert result.returncode == 1
    assert lines(result)[0].startswith(f"error: no Python.h in '{tmp_path}/no-include': install the Python 3.11 "
                                       "headers (Debian/Ubuntu: sudo apt install python3.11-dev")


def test_missing_compiler_and_disk_space_each_get_one_line(tmp_path):
    result = check(tmp_path, CXX=str(tmp_path / "no-c++"), NEED_MB="999999999")
    assert result.returncode == 1
    errors = [line for line in lines(result) if line.startswith("error:")]
    assert len(errors) == 2
    assert errors[0].startswith(f"error: no C++ compiler '{tmp_path / 'no-c++'}'") and "build-essential" in errors[0]
    assert errors[1].startswith("error: only ") and "about 999999999 MiB needed" in errors[1]
    assert not [line for line in lines(result) if line.startswith("warning:")]


@pytest.fixture
def makefile_copy(tmp_path):
    """The Makefile and what `make install` reads first, in a directory without .venv/."""
    for name in ("Makefile", "pyproject.toml", "scripts/check_prerequisites.sh"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


def make(directory, *args):
    """make in `directory`, free of the flags and variables of a make that runs these tests (make test)."""
    return run_cli(shutil.which("make"), *args, cwd=directory, check=False,
                   env={"MAKEFLAGS": "", "MFLAGS": "", "MAKELEVEL": ""})


def test_make_install_checks_prerequisites_before_creating_anything(makefile_copy):
    python = fake_program(makefile_copy, "python3", 'echo "3 9 /usr/include/python3.9"')
    result = make(makefile_copy, "install", f"PYTHON={python}")
    assert result.returncode != 0
    assert result.stdout.startswith("==> [1/6] checking prerequisites")
    assert "error: Python 3.11 or newer is needed" in result.stderr
    assert not (makefile_copy / ".venv").exists()


def test_make_install_refuses_an_unknown_torch_choice(makefile_copy):
    result = make(makefile_copy, "install", "TORCH=gpu")
    assert result.returncode != 0
    assert "error: TORCH=gpu is not allowed: cpu (CPU-only build, the default), cuda or skip" in result.stderr
    assert not (makefile_copy / ".venv").exists()


# --- metadata ----------------------------------------------------------------------------------------------------

def test_pyproject_declares_what_pip_needs_and_leaves_torch_and_fairseq_to_make_install():
    project = PYPROJECT["project"]
    names = {requirement.split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower()
             for requirement in project["dependencies"]}
    assert not names & {"torch", "fairseq", "fairseq-fixed", "torchaudio"}
    # fairseq-fixed is installed with --no-deps: its other runtime requirements must come from here
    fairseq_needs = {requirement.split(";")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
                     for requirement in metadata.requires("fairseq-fixed") if "extra ==" not in requirement}
    assert fairseq_needs - {"torch", "torchaudio", "cython"} <= names
    extras = project["optional-dependencies"]
    assert "matplotlib" in extras["demo"] and "tensorboardX" in extras["tensorboard"]
    assert {"sacremoses", "subword-nmt", "sentencepiece"} <= set(extras["pipeline"]) == set(extras["multi30k"])
    assert project["requires-python"] == ">=3.11" and project["license"] == "MIT"
    assert project["scripts"]["fairseq-attn-gru"] == "fairseq_attn_gru.__main__:main"


def test_licence_is_mit_with_the_contributors_as_holder():
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License") and "fairseq-attn-gru contributors" in text
    assert metadata.metadata("fairseq-attn-gru")["License-Expression"] == "MIT"


def test_make_install_installs_every_extra_it_promises():
    requirements = metadata.requires("fairseq-attn-gru")
    for extra in ("test", "demo", "pipeline", "tensorboard"):
        for requirement in [r.split(";")[0].strip() for r in requirements if f'extra == "{extra}"' in r]:
            name = requirement.split(">")[0].split("=")[0].strip()
            assert metadata.version(name), name  # raises PackageNotFoundError when make install left it out


# --- the plugin from any directory, tensorboard ------------------------------------------------------------------

def test_user_dir_command_prints_only_the_package_directory(tmp_path):
    for command in ([sys.executable, "-m", "fairseq_attn_gru"], [str(BIN / "fairseq-attn-gru")]):
        result = run_cli(command[0], *command[1:], "--user-dir", cwd=tmp_path)
        assert result.stdout == USER_DIR + "\n"


@pytest.fixture(scope="module")
def trained_elsewhere(tmp_path_factory):
    """fairseq-train run from a directory that is not the checkout, with --user-dir "$(python -m ... --user-dir)"
    as README says, tied embeddings, and --tensorboard-logdir."""
    work = tmp_path_factory.mktemp("elsewhere")
    user_dir = run_cli(sys.executable, "-m", "fairseq_attn_gru", "--user-dir", cwd=work).stdout.strip()
    result = run_cli("fairseq-train", "--user-dir", user_dir, *toy_task("reverse", 20, 8, 200, 16),
                     "--arch", "gru_attn_dot", "--share-decoder-input-output-embed", "--optimizer", "adam",
                     "--lr", "0.003", "--max-tokens", "500", "--max-update", "3", "--cpu", "--save-dir", "ck",
                     "--tensorboard-logdir", "tb", "--log-format", "simple", "--log-interval", "1", cwd=work)
    return work, result


def test_fairseq_train_runs_from_another_directory(trained_elsewhere):
    work, result = trained_elsewhere
    assert not (work / "fairseq_attn_gru").exists()
    assert (work / "ck" / "checkpoint_last.pt").is_file() and "num_updates 3" in result.stderr + result.stdout


def test_tensorboard_logdir_writes_event_files(trained_elsewhere):
    work, result = trained_elsewhere
    events = {path.parent.name for path in (work / "tb").rglob("events.out.tfevents.*") if path.stat().st_size}
    assert {"train", "valid"} <= events
    assert "Please install tensorboardX" not in result.stdout + result.stderr


def test_parameter_count_from_the_checkpoint_equals_fairseq_trains(trained_elsewhere):
    work, result = trained_elsewhere
    logged = trained_parameters(result.stdout + result.stderr)
    assert trained_parameters(work / "ck" / "checkpoint_last.pt") == logged
    assert trained_parameters(str(work / "ck" / "checkpoint_last.pt")) == logged


def script_modules():
    """The module behind each entry point in scripts/ (``run_entry("module:main")``)."""
    found = [re.search(r'run_entry\("([\w.]+):main"\)', path.read_text()) for path in (REPO / "scripts").rglob("*.py")]
    return sorted(match.group(1) for match in found if match)


def test_every_script_module_also_runs_with_python_dash_m():
    modules = script_modules()
    assert "fairseq_attn_gru.recipes.demo" in modules and len(modules) >= 4
    # runpy.run_module(run_name="__main__") is what `python -m` does; one process for all of them
    code = ("import contextlib, io, runpy, sys\n"
            f"for module in {modules!r}:\n"
            "    sys.argv, out = [module, '--help'], io.StringIO()\n"
            "    with contextlib.redirect_stdout(out):\n"
            "        try:\n"
            "            runpy.run_module(module, run_name='__main__', alter_sys=True)\n"
            "            status = 'ran without parsing --help'\n"
            "        except SystemExit as exit:\n"
            "            status = exit.code\n"
            "    print(module, status, out.getvalue().startswith('usage:'))\n")
    result = run_cli(sys.executable, "-c", code)
    assert result.stdout.splitlines() == [f"{module} 0 True" for module in modules]


def test_every_pipeline_step_has_help_under_its_own_name():
    from fairseq_attn_gru.__main__ import STEPS

    code = ("import contextlib, io, sys\nfrom fairseq_attn_gru.__main__ import main\n"
            f"for step in {list(STEPS)!r}:\n"
            "    out = io.StringIO()\n"
            "    with contextlib.redirect_stdout(out):\n"
            "        try:\n"
            "            main([step, '--help'])\n"
            "        except SystemExit as exit:\n"
            "            status = exit.code\n"
            "    print(step, status, out.getvalue().startswith(f'usage: fairseq-attn-gru {step} '))\n")
    assert run_cli(sys.executable, "-c", code).stdout.splitlines() == [f"{step} 0 True" for step in STEPS]


def test_python_dash_m_gives_the_pipelines_one_line_error(tmp_path):
    result = run_cli(sys.executable, "-m", "fairseq_attn_gru", "evaluate", "--prep", str(tmp_path),
                     "--checkpoint", str(tmp_path / "missing.pt"), "--src", "a.de", "--ref", "a.en", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --prep {str(tmp_path)!r} is not a finished `fairseq-attn-gru prepare` output (prep.json is missing)")


PREPARE = ["prepare", "--source-lang", "de", "--target-lang", "en", "--data", "d", "--out", "o"]
MISSING_MODULE_CASES = [  # (the module blocked, the module run, its arguments, the extra that brings it)
    ("matplotlib", "fairseq_attn_gru.recipes.demo", ["--quick"], "demo"),
    ("sacremoses", "fairseq_attn_gru", [*PREPARE, "--text-processing", "moses-bpe"], "pipeline"),
    ("subword_nmt", "fairseq_attn_gru", [*PREPARE, "--text-processing", "moses-bpe"], "pipeline"),
    ("sentencepiece", "fairseq_attn_gru", PREPARE, "pipeline"),  # the default text processing
    ("matplotlib", "fairseq_attn_gru", ["run", *PREPARE[1:-2], "--work", "w"], "demo"),
]


@pytest.mark.parametrize("how", ["script", "python -m"])
@pytest.mark.parametrize("blocked,module,args,extra", MISSING_MODULE_CASES,
                         ids=[f"{c[0]}-{c[2][0]}" for c in MISSING_MODULE_CASES])
def test_missing_optional_module_is_one_line_saying_what_to_install(tmp_path, how, blocked, module, args, extra):
    entry = module + (".__main__:main" if module == "fairseq_attn_gru" else ":main")
    run = (f"from fairseq_attn_gru.recipes.cli import run_entry\nraise SystemExit(run_entry({entry!r}, "
           f"{args!r}))" if how == "script" else  # scripts/*.py; runpy below is what `python -m` does
           f"import runpy\nsys.argv = [{module!r}, *{args!r}]\n"
           f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)")
    code = f"import sys\nsys.modules[{blocked!r}] = None\n{run}"
    result = run_cli(sys.executable, "-c", code, check=False, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    package = blocked.replace("_", "-")
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {blocked} is not installed: run `make install` in the checkout, or pip install {package} "
        f"(this package's [{extra}] extra)")
    assert not any(tmp_path.iterdir())  # said before any work: nothing written


@pytest.mark.parametrize("how", ["script", "python -m"])
def test_scripts_do_not_print_debug_logging_that_importing_fairseq_turns_on(how):
    # fairseq's `import fairseq` sets the root logger to DEBUG; the demo imports matplotlib, which logs at DEBUG
    command = ([sys.executable, REPO / "scripts" / "demo.py"] if how == "script"
               else [sys.executable, "-m", "fairseq_attn_gru.recipes.demo"])
    result = run_cli(*command, "--help")
    assert result.stdout.startswith("usage:")
    assert not [line for line in result.stderr.splitlines() if "DEBUG" in line], result.stderr


def test_importing_the_recipes_leaves_the_callers_logging_alone():
    # a caller that configured logging: fairseq's basicConfig(level=DEBUG) is then a no-op, and so must the plugin be
    code = ("import logging\nlogging.basicConfig(level=logging.WARNING)\n"
            "from fairseq_attn_gru.recipes import demo, plotting\nfrom fairseq_attn_gru.pipeline import run\n"
            "print(logging.getLogger().level, logging.getLogger('matplotlib').level)")
    assert run_cli(sys.executable, "-c", code).stdout.split() == ["30", "0"]  # before: matplotlib's set to 30


# --- fairseq's Python entry points instead of console output ------------------------------------------------------

def test_fairseq_bleu_in_process_equals_fairseq_score(tmp_path):
    rng = random.Random(3)
    words = [f"w{i}" for i in range(12)] + ["<unk>", "Zug", "ä"]
    references = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 9))) for _ in range(40)]
    hypotheses = [" ".join(w for w in ref.split() if rng.random() < 0.8) + (" w3" if rng.random() < 0.3 else "")
                  for ref in references]
    (tmp_path / "hyp").write_text("".join(h + "\n" for h in hypotheses))
    (tmp_path / "ref").write_text("".join(r + "\n" for r in references))
    printed = run_cli("fairseq-score", "--sys", tmp_path / "hyp", "--ref", tmp_path / "ref").stdout
    expected = float(printed.split("BLEU4 = ")[1].split(",")[0])
    assert fairseq_score(tmp_path / "hyp", tmp_path / "ref") == expected == fairseq_bleu(hypotheses, references)
    assert 10 < expected < 100
