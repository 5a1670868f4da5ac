"""Domain errors. Raised inside the library, translated at the edges (CLI, web)."""

from __future__ import annotations


class MonitorError(Exception):
    """Base class for every error the monitor reports to a user."""


class RuleError(MonitorError):
    """One or more rule files are invalid. Carries every problem, each located."""

    def __init__(self, problems: list["RuleProblem"]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class RuleProblem:
    """A single located problem in a rule file: ``file:line: message``."""

    def __init__(self, path: str, line: int | None, message: str):
        self.path = path
        self.line = line
        self.message = message

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"

    def __repr__(self) -> str:
        return f"RuleProblem({str(self)!r})"


class InputError(MonitorError):
    """A transcript line or call record that cannot be used."""


class AudioError(MonitorError):
    """A recording that cannot be decoded or is refused (empty, too long, not audio)."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class TranscriptionError(MonitorError):
    """The speech recogniser could not be loaded or failed on a recording."""


class MissingExtra(MonitorError):
    """An optional part (an extra of the package) is asked for but not installed."""

    def __init__(self, feature: str, extra: str, missing: str):
        self.extra = extra
        super().__init__(
            f"{feature} needs the optional package {missing!r}: "
            f"pip install 'collection-call-monitor[{extra}]' (or bash scripts/setup.sh, which installs everything)"
        )


def import_optional(module: str, feature: str, extra: str):
    """Import an optional dependency, or raise MissingExtra naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name and module.split(".")[0] == error.name.split(".")[0]:
            raise MissingExtra(feature, extra, error.name) from None
        raise
