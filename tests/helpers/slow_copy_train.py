"""fairseq-train whose file copies stall halfway once armed: lets a test SIGKILL it in the middle of a checkpoint copy.

Armed when the file $SLOW_COPY_MARKER.armed exists; it then writes half of the copy, creates
$SLOW_COPY_MARKER and sleeps, so the test knows the copy is in progress.
"""
import os
import shutil
import sys
import time

marker = os.environ["SLOW_COPY_MARKER"]
real_copyfile = shutil.copyfile


def stalling_copyfile(src, dst, *args, **kwargs):
    if os.path.exists(marker + ".armed"):
        with open(src, "rb") as source:
            data = source.read()
        with open(dst, "wb") as target:
            target.write(data[: len(data) // 2])
            target.flush()
            os.fsync(target.fileno())
        open(marker, "w").close()
        time.sleep(120)
    return real_copyfile(src, dst, *args, **kwargs)


shutil.copyfile = stalling_copyfile

from fairseq_cli.train import cli_main  # noqa: E402

sys.argv = ["fairseq-train", *sys.argv[1:]]
cli_main()
