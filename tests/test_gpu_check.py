"""scripts/gpu_check.sh without a GPU (CUDA_VISIBLE_DEVICES="" hides any): each CUDA part skipped with one line,
the CUDA tests collected; and its own bad arguments. The GPU run itself is what the script is for (docs/speed.md)."""
import os
import subprocess
import sys

from conftest import REPO
from test_model import VARIANTS

SCRIPT = str(REPO / "scripts" / "gpu_check.sh")


def gpu_check(*args, env_extra=None):
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": "", **(env_extra or {})}
    env.pop("MULTI30K_DATA", None)
    return subprocess.run(["bash", SCRIPT, *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


def test_without_a_gpu_every_cuda_part_is_skipped_with_one_line(tmp_path):
    result = gpu_check("--out", tmp_path / "out", "--data", tmp_path, "--minutes", "0.5")
    assert result.returncode == 0, result.stdout + result.stderr
    summary = (tmp_path / "out" / "summary.txt").read_text().splitlines()
    assert summary[0].startswith("gpu_check summary (")
    lines = [line.strip() for line in summary[1:]]
    assert lines[0] == "no GPU: torch sees no CUDA device (a CPU-only build, or none visible); the CUDA parts are skipped"
    collected = lines[1].removeprefix("pytest -m cuda: skipped, no GPU (").removesuffix(" CUDA tests collected)")
    assert int(collected) >= 2 * len(VARIANTS) + 2, lines[1]  # test_cuda.py: two per architecture variant, two AMP
    assert lines[2:] == ["bench.py --device cuda: skipped, no GPU", "Multi30k 0.5-minute run: skipped, no GPU"]


def test_bad_arguments_get_one_line(tmp_path):
    for args, message in [(["--minutes", "0"], "--minutes='0' is not allowed: a positive number"),
                          (["--data", tmp_path / "none"], f"--data='{tmp_path / 'none'}' is not allowed: a directory"),
                          (["--out"], "--out needs a value"),
                          (["--gpu"], "'--gpu' is not allowed: --data DIR, --out DIR, --minutes M")]:
        result = gpu_check(*args)
        assert result.returncode == 2 and result.stderr.startswith(f"error: {message}"), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
