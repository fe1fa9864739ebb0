"""The README and docs/ stay true to the code: generated tables, size budget, links, the list of fairseq fixes.

Fast on purpose (a few seconds): everything runs in-process except one run of the script as a user runs it.
"""
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_script

from fairseq_attn_gru.fairseq_fixes import FIXES, GLOBAL_FIXES_ENV

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
README_MAX_CHARS = 12_000
#: a markdown link's target, without its #anchor: [text](target#anchor)
LINK = re.compile(r"\]\(([^)\s#]*)(?:#[^)\s]*)?\)")


@pytest.fixture(scope="module")
def flags_table():
    return load_script("scripts/flags_table.py")


@pytest.fixture(scope="module")
def tables(flags_table):
    return flags_table.generated_tables()


@pytest.fixture(scope="module")
def readme_text():
    return README.read_text(encoding="utf-8")


def fix_name(module) -> str:
    return module.__name__.rsplit(".", 1)[1]


def local_link_targets(markdown: str):
    """Relative link targets: web addresses and same-page anchors are not files to check."""
    return [t for t in LINK.findall(markdown) if t and not re.match(r"[a-z]+:", t)]


# -- generated tables -----------------------------------------------------------------------------------------

def home_texts(flags_table):
    """{relative path: text} of every file holding a generated table."""
    return {relative: (REPO / relative).read_text(encoding="utf-8") for relative in set(flags_table.HOMES.values())}


def copy_homes(flags_table, root, edit=lambda relative, text: text):
    for relative, text in home_texts(flags_table).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(edit(relative, text), encoding="utf-8")


def test_tables_match_the_configs(flags_table, tables):
    for relative, file_tables in flags_table.tables_by_file(tables).items():
        stale = flags_table.stale_tables((REPO / relative).read_text(encoding="utf-8"), file_tables)
        assert not stale, f"{relative}: tables {stale} differ from the configs: run `python scripts/flags_table.py --write`"


def test_every_flag_of_every_config_is_in_its_table(flags_table):
    """Guards the generator itself: a field it skipped would pass the comparison above."""
    model_config, toy_config, schedule_config = flags_table.import_configs()
    for config_class, name in ((model_config.GRUAttnConfig, "gru_attn"), (toy_config, "toy_translation"),
                               (schedule_config, "inverse_sqrt_plateau")):
        text = (REPO / flags_table.HOMES[name]).read_text(encoding="utf-8")
        for flag, _, _ in flags_table.flag_rows(config_class):
            assert f"| `{flag}` |" in text, flag
    schedule_flags = [flag for flag, _, _ in flags_table.flag_rows(schedule_config)]
    # --lr and --maximize-best-checkpoint-metric are fairseq's flags, which the schedule only reads
    assert schedule_flags == ["--warmup-updates", "--warmup-init-lr", "--lr-shrink", "--lr-patience"]


def test_check_exits_1_with_one_line_when_a_table_is_stale(flags_table, tmp_path, capsys):
    copy_homes(flags_table, tmp_path, lambda relative, text: text.replace("| `--encoder-layers` | 1 |",
                                                                          "| `--encoder-layers` | 7 |"))
    assert flags_table.main(["--check", "--root", str(tmp_path)]) == 1
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and "gru_attn" in message and "--write" in message


def test_write_restores_emptied_tables(flags_table, tables, tmp_path):
    def empty(relative, text):
        for name in tables:
            if flags_table.HOMES[name] == relative:
                text = flags_table.replace_table(text, name, "")
        return text

    copy_homes(flags_table, tmp_path, empty)
    assert flags_table.main(["--write", "--root", str(tmp_path)]) == 0
    for relative, text in home_texts(flags_table).items():
        assert (tmp_path / relative).read_text(encoding="utf-8") == text


def test_a_file_without_markers_is_an_error_not_a_silent_pass(flags_table, tmp_path):
    copy_homes(flags_table, tmp_path, lambda relative, text: "# no tables here\n")
    assert flags_table.main(["--check", "--root", str(tmp_path)]) == 2


def test_the_script_runs_as_users_run_it():
    result = subprocess.run(
        [sys.executable, "scripts/flags_table.py", "--check"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


# -- size and links -----------------------------------------------------------------------------------------

def test_readme_is_a_short_guide(readme_text):
    assert len(readme_text) <= README_MAX_CHARS, (
        f"README.md has {len(readme_text)} characters (limit {README_MAX_CHARS}): move detail to docs/"
    )


def test_docs_links_in_readme_point_at_files(readme_text):
    targets = [t for t in local_link_targets(readme_text) if t.startswith("docs/")]
    assert targets, "README.md links to no docs/ page"
    missing = [t for t in targets if not (REPO / t).is_file()]
    assert not missing, f"README.md links to missing docs: {missing}"


def test_every_docs_page_is_linked_from_readme(readme_text):
    """A page nobody links to is lost text."""
    linked = set(local_link_targets(readme_text))
    orphans = [p.name for p in DOCS.glob("*.md") if f"docs/{p.name}" not in linked]
    assert not orphans, f"docs pages not linked from README.md: {orphans}"


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_relative_links_in_docs_resolve(page):
    text = (DOCS / page).read_text(encoding="utf-8")
    missing = [t for t in local_link_targets(text) if not (DOCS / t).exists()]
    assert not missing, f"docs/{page} links to missing files: {missing}"


# -- fairseq fixes ----------------------------------------------------------------------------------------

def test_readme_names_every_global_fix_and_the_switch(readme_text):
    """Global fixes change fairseq for every model, so users must be able to see all of them in the README."""
    missing = [fix_name(fix) for fix in FIXES if fix.SCOPE == "global" and f"`{fix_name(fix)}`" not in readme_text]
    assert not missing, f"global fixes missing from README.md: {missing}"
    assert f"{GLOBAL_FIXES_ENV}=0" in readme_text


def test_fixes_page_lists_every_fix_with_its_scope():
    text = (DOCS / "fairseq_fixes.md").read_text(encoding="utf-8")
    for fix in FIXES:
        name = fix_name(fix)
        row = re.search(rf"^\| \[`{name}`\]\(#{name}\) \| (\w+) \|", text, re.MULTILINE)
        assert row, f"docs/fairseq_fixes.md has no table row for {name}"
        assert row.group(1) == fix.SCOPE, f"{name}: docs say {row.group(1)}, the module says {fix.SCOPE}"
        assert re.search(rf"^### {name}$", text, re.MULTILINE), f"docs/fairseq_fixes.md has no section for {name}"
