"""Import behaviour of the package itself."""
import subprocess
import sys

from conftest import REPO


def test_import_without_fairseq_says_how_to_install():
    code = "import sys; sys.modules['fairseq'] = None; import fairseq_attn_gru"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "make install" in lines[0] and "fairseq" in lines[0]


def test_user_dir_registers_everything():
    code = ("import fairseq_attn_gru\n"
            "from fairseq.models import ARCH_MODEL_REGISTRY\nfrom fairseq.tasks import TASK_REGISTRY\n"
            "print(sorted(a for a in ARCH_MODEL_REGISTRY if a.startswith('gru')), 'toy_translation' in TASK_REGISTRY)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "gru_attn_iwslt_de_en" in out and "gru_bahdanau" in out and out.strip().endswith("True")
