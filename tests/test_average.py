"""`fairseq-attn-gru average`: the averaged checkpoint holds the float64 mean of the epochs' parameters and
loads in fairseq-generate; asking for more epochs than were kept is a one-line error."""

import pytest
import torch

from conftest import USER_DIR, run_cli, toy_task, train_toy

TOY = toy_task("reverse", vocab_size=10, max_len=5, train_size=64, valid_size=8, test_size=8)


@pytest.fixture(scope="module")
def save_dir(tmp_path_factory):
    """A toy run with three epochs whose last two epoch checkpoints are kept."""
    save_dir = tmp_path_factory.mktemp("average")
    train_toy(save_dir, TOY, "--lr", "0.01", "--max-tokens", "200", "--max-epoch", "3", "--keep-last-epochs", "2")
    return save_dir


def run_average(*args):
    return run_cli("fairseq-attn-gru", "average", *args, check=False, timeout=300)


def test_average_is_the_mean_of_the_last_epochs_and_generates(save_dir, tmp_path):
    out = tmp_path / "avg.pt"
    result = run_average(save_dir, "--last", "2", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "checkpoint2.pt, checkpoint3.pt" in result.stdout

    epochs = [torch.load(save_dir / f"checkpoint{epoch}.pt", weights_only=True)["model"] for epoch in (2, 3)]
    averaged = torch.load(out, weights_only=True)["model"]
    assert averaged.keys() == epochs[0].keys()
    moved = 0
    for name, value in averaged.items():
        expected = (epochs[0][name].double() + epochs[1][name].double()) / 2
        assert value.dtype == epochs[0][name].dtype
        torch.testing.assert_close(value.double(), expected, rtol=1e-7, atol=1e-9)
        moved += int(not torch.equal(epochs[0][name], epochs[1][name]))
    assert moved > 0  # training changed the weights between the epochs, so the mean is not a copy of either

    generated = run_cli("fairseq-generate", "--user-dir", USER_DIR, *TOY, "--path", out, "--gen-subset", "test",
                        "--cpu", "--beam", "2")
    assert generated.stdout.count("\nH-") + generated.stdout.startswith("H-") == 8


def test_more_epochs_than_kept_is_a_one_line_error(save_dir):
    result = run_average(save_dir, "--last", "5")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (f"error: {str(save_dir)!r} holds 2 epoch checkpoints (checkpoint<EPOCH>.pt), "
                                     "fewer than --last=5; train with --keep-last-epochs 5")
