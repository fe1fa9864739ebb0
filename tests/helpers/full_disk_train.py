"""fairseq-train on a disk that fills up: writing a file named in $FULL_DISK_FILES fails with ENOSPC.

$FULL_DISK_FILES: comma-separated file names (no directory), e.g. "checkpoint_1_4.pt.tmp,checkpoint_last.pt.tmp".
A file opened for writing under one of those names accepts its first 4096 bytes, then every write raises
OSError(ENOSPC), as a full disk does; it has no fileno(), so shutil's copies also go through write().
"""
import builtins
import errno
import io
import os
import sys

FULL = {name for name in os.environ.get("FULL_DISK_FILES", "").split(",") if name}
real_open = builtins.open


class FullDiskFile:
    def __init__(self, real, budget=4096):
        self._real, self._left = real, budget

    def write(self, data):
        data = memoryview(data).cast("B")
        if len(data) > self._left:
            self._real.write(data[: self._left])
            self._left = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self._real.name)
        self._left -= len(data)
        return self._real.write(data)

    def fileno(self):
        raise io.UnsupportedOperation("fileno")

    def __getattr__(self, name):
        return getattr(self._real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._real.close()


def filling_open(file, mode="r", *args, **kwargs):
    stream = real_open(file, mode, *args, **kwargs)
    if isinstance(file, (str, os.PathLike)) and os.path.basename(os.fspath(file)) in FULL and "w" in mode:
        return FullDiskFile(stream)
    return stream


builtins.open = filling_open

from fairseq_cli.train import cli_main  # noqa: E402

sys.argv = ["fairseq-train", *sys.argv[1:]]
cli_main()
