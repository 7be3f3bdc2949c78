"""Errors a user can cause. The CLI prints ``str(err)`` on one line and exits with ``exit_code``."""


class UsageError(Exception):
    """Bad usage or bad input: unknown name, missing path, malformed file. Exit code 2."""

    exit_code = 2


class MissingDependency(UsageError):
    """An optional dependency is not installed; the message names the pip install that fixes it."""

    def __init__(self, what: str, extra: str):
        super().__init__(f"{what} is not installed; run: pip install 'evalkit[{extra}]'")
