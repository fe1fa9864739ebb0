"""What every Multi30k script needs: stopping on bad input with one line."""
import sys
from pathlib import Path


def fail(message: str):
    """Bad input a person can fix: one line on stderr, exit status 2 (the plugin's convention)."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def require_file(path, what: str = "file") -> Path:
    path = Path(path)
    if not path.is_file():
        fail(f"{what} {str(path)!r} does not exist")
    return path
