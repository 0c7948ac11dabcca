"""One run at a time per output folder: an exclusive ``flock`` on ``<folder>/.run.lock``.

The lock is released when the holder exits, however it exits (the OS drops it with the
file descriptor), so a killed run never blocks the next one. A second run that finds the
lock held stops with a ``RecipeError`` naming the folder and the holder's process id.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import Optional

from upsampler.recipe_support.errors import RecipeError, one_line

LOCK_NAME = ".run.lock"


class RunLock:
    """``with RunLock(folder): ...`` holds the folder for this process."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: Optional[int] = None

    def acquire(self) -> None:
        """Take the lock or raise ``RecipeError`` (folder not writable, or another run holds it)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise RecipeError(
                f"output_dir {str(self.folder)!r} is not writable ({one_line(error)}); "
                f"choose another hydra.run.dir (or output_dir)"
            ) from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RecipeError(
                f"another run (pid {holder}) is writing to {str(self.folder)!r}; wait for it "
                f"to finish or choose another hydra.run.dir (or output_dir)"
            ) from error
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (the file stays; an unlocked file means nobody is running)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, kind: Optional[type[BaseException]], error: Optional[BaseException],
                 trace: Optional[TracebackType]) -> None:
        self.release()


__all__ = ["LOCK_NAME", "RunLock"]
