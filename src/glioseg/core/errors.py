"""The one error type for bad input: it names the file, says what is wrong and how to fix it."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad input a user can fix; the CLI prints it and exits with status 2, writing nothing.

    Args:
        path: the file or folder at fault (a URL is kept as written).
        problem: what is wrong with it.
        fix: what the user should do.
    """

    def __init__(self, path: str | Path, problem: str, fix: str):
        self.path = path if isinstance(path, str) and "://" in path else Path(path)
        self.problem, self.fix = problem, fix
        super().__init__(f"{path}: {problem}. Fix: {fix}")

    def __reduce__(self):  # so that an error raised in a worker process reaches the parent intact
        return (type(self), (self.path, self.problem, self.fix))
