"""Impossible settings stop with one line naming the flag, the value and what is allowed; no traceback."""
import sys

import pytest

from conftest import USER_DIR, TinyTask, build_model, run_cli
from fairseq_attn_gru.errors import UserError

BAD_MODEL_SETTINGS = [
    ("gru_bahdanau", {"attention_type": "none"}, "--attention-type='none'"),
    ("gru_attn_dot", {"decoder_hidden_size": 100}, "--attention-type='dot'"),
    ("gru_bahdanau", {"input_feeding": True}, "--input-feeding=True"),
    ("gru_attn_dot", {"decoder_style": "cgru", "attention_type": "none"}, "--attention-type='none'"),
    ("gru_attn_dot", {"decoder_style": "cgru", "input_feeding": True}, "--input-feeding=True"),
    ("gru_attn_dot", {"teacher_forcing": 1.5}, "--teacher-forcing=1.5"),
    ("gru_attn_dot", {"teacher_forcing": 0.8, "teacher_forcing_min": 0.9}, "--teacher-forcing-min=0.9"),
    ("gru_attn_dot", {"encoder_layers": 0}, "--encoder-layers=0"),
    ("gru_attn_dot", {"decoder_hidden_size": -4}, "--decoder-hidden-size=-4"),
    ("gru_attn_dot", {"dropout": 1.2}, "--dropout=1.2"),
    ("gru_nematus", {"encoder_word_dropout": 1.0}, "--encoder-word-dropout=1.0"),
    ("gru_nematus", {"decoder_word_dropout": -0.1}, "--decoder-word-dropout=-0.1"),
    ("gru_attn_dot", {"share_decoder_input_output_embed": True, "decoder_out_embed_dim": 64},
     "--decoder-out-embed-dim=64"),
]


@pytest.mark.parametrize("arch,overrides,message", BAD_MODEL_SETTINGS, ids=[m for *_, m in BAD_MODEL_SETTINGS])
def test_impossible_settings_raise_a_user_error(arch, overrides, message):
    with pytest.raises(UserError) as error:
        build_model(arch, **overrides)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_share_all_embeddings_needs_a_joined_dictionary():
    with pytest.raises(UserError, match="joined"):
        build_model("gru_attn_dot", task=TinyTask(10, 12), share_all_embeddings=True,
                    decoder_out_embed_dim=128)


def test_pretrained_embedding_files(tmp_path):
    task = TinyTask(6)
    good = tmp_path / "good.txt"
    good.write_text("3 4\nw1 0.5 0.5 0.5 0.5\nw2 1 2 3 4\nzzz 9 9 9 9\n")
    model = build_model("gru_attn_dot", task=task, encoder_embed_dim=4, encoder_embed_path=str(good))
    row = model.encoder.embed_tokens.weight[task.source_dictionary.index("w2")]
    assert row.tolist() == [1.0, 2.0, 3.0, 4.0]

    cases = {
        "missing.txt": (None, "no such file"),
        "wrongdim.txt": ("w1 0.1 0.2 0.3\n", "a vector of 3 numbers, but the model's embedding dimension is 4"),
        "malformed.txt": ("w1 0.1 abc 0.3 0.4\n", "line 1: expected 'word' followed by 4 numbers"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_text(content)
        with pytest.raises(UserError, match=message):
            build_model("gru_attn_dot", task=task, encoder_embed_dim=4, encoder_embed_path=str(path))


CLI_CASES = [
    (["--arch", "gru_bahdanau", "--attention-type", "none"], "error: --attention-type='none'"),
    (["--arch", "gru_attn_dot", "--teacher-forcing", "-0.1"], "error: --teacher-forcing=-0.1"),
    (["--arch", "gru_attn_dot", "--toy-min-len", "9", "--toy-max-len", "3"], "error: --toy-max-len=3"),
    (["--arch", "gru_attn_dot", "--toy-vocab-size", "1"], "error: --toy-vocab-size=1"),
    (["--arch", "gru_attn_dot", "--toy-train-size", "-5"], "error: --toy-train-size=-5"),
    (["--arch", "gru_attn_dot", "--encoder-embed-path", "/nonexistent/vectors.txt"],
     "error: --encoder-embed-path='/nonexistent/vectors.txt': no such file"),
]


@pytest.mark.parametrize("flags,message", CLI_CASES, ids=[m for _, m in CLI_CASES])
def test_fairseq_train_prints_one_line_and_no_traceback(flags, message, tmp_path):
    result = run_cli("fairseq-train", "--user-dir", USER_DIR, "--task", "toy_translation", "--cpu",
                     "--optimizer", "adam", "--lr", "0.001", "--max-tokens", "500", "--max-update", "1",
                     "--save-dir", tmp_path, *flags, check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr[-1000:]


def test_unknown_attention_type_is_rejected_by_the_parser(tmp_path):
    result = run_cli("fairseq-train", "--user-dir", USER_DIR, "--task", "toy_translation", "--cpu",
                     "--arch", "gru_attn", "--attention-type", "cosine", "--save-dir", tmp_path, check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "invalid choice: 'cosine'" in result.stderr and "'dot'" in result.stderr


# -- Python sessions get exceptions; only fairseq's console tools get the one-line exit ------------------------

BAD_TOY_RULE = "from fairseq_attn_gru.tasks import toy_data; toy_data.validate_options('bogus', 10, 1, 2, {})"


def test_an_interactive_session_goes_on_after_a_user_error():
    session = f"import fairseq_attn_gru\n{BAD_TOY_RULE}\nprint('next statement ran')\n"
    result = run_cli(sys.executable, "-i", "-q", input=session, check=False)
    assert result.returncode == 0, result.stderr
    assert "next statement ran" in result.stdout
    assert "UserError: --toy-rule='bogus' is not allowed" in result.stderr  # an ordinary traceback


def test_a_program_can_catch_a_user_error_and_its_atexit_work_runs():
    program = ("import atexit, fairseq_attn_gru\n"
               "atexit.register(lambda: print('atexit ran'))\n"
               f"try:\n    {BAD_TOY_RULE}\nexcept ValueError as error:\n    print('caught', type(error).__name__)\n"
               f"{BAD_TOY_RULE}\n")
    result = run_cli(sys.executable, "-c", program, check=False)
    assert result.stdout.splitlines() == ["caught UserError", "atexit ran"]
    assert result.returncode == 1 and "Traceback" in result.stderr  # Python's own handling of the uncaught one


def test_a_fairseq_tool_prints_one_line_and_exits_2():
    result = run_cli("fairseq-train", "--user-dir", USER_DIR, "--task", "toy_translation", "--toy-rule", "copy",
                     "--toy-min-len", "5", "--toy-max-len", "2", "--arch", "gru_attn_dot", "--cpu", "--max-tokens", "100",
                     check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == \
        "error: --toy-max-len=2 is not allowed: an integer >= --toy-min-len (5)"
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("argv0, expected", [
    ("/venv/bin/fairseq-train", True), ("/venv/bin/fairseq-interactive", True),
    ("/x/site-packages/fairseq_cli/generate.py", True), ("my_program.py", False), ("", False), ("-c", False),
])
def test_only_fairseq_console_tools_get_the_one_line_hook(argv0, expected):
    from fairseq_attn_gru.errors import running_fairseq_tool

    assert running_fairseq_tool(argv0) is expected
