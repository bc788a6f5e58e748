"""Errors a user can act on, and the exit codes the CLIs use for them.

Every failure caused by input, settings or the environment is raised as a `UserError` whose message is
one line naming the file, row, column or setting and what to do; the CLIs print it without a traceback
(allocator.cli.common.run_main), putting the flag the user typed where a `SettingError` names a setting.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

EXIT_OK = 0
EXIT_BAD_INPUT = 2  # bad flags, unreadable or invalid data files
EXIT_BROKER = 3  # Kafka broker unreachable or delivery failed
EXIT_INCOMPLETE = 4  # the stream was incomplete (gap, count mismatch) and --strict was given
EXIT_LIVE_MISMATCH = 5  # the live router's decisions or fills differ from the offline router's (a bug)
EXIT_INTERRUPTED_PRODUCER = 130  # Ctrl-C on kafka_producer.py (after flushing)
EXIT_INTERRUPTED_CONSUMER = 131  # Ctrl-C on order_allocator.py (after a partial report)


class UserError(Exception):
    """A problem the user can fix; its message is printed as one line on stderr."""

    exit_code: int = EXIT_BAD_INPUT

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class SettingError(UserError):
    """A bad value of a named setting. The library names the setting; a CLI names the flag instead.

    `template` holds one `{placeholder}` per setting it mentions, and `settings` maps each placeholder to
    the setting's name (a config field, e.g. "order_size"). `str(error)` reads with setting names, so the
    library stays free of CLI flags; `render(label)` lets a CLI put its own names in, e.g. "--order-size".
    """

    def __init__(self, template: str, /, *, exit_code: int | None = None, **settings: str) -> None:
        self.template = template
        self.settings = settings
        super().__init__(template.format(**settings), exit_code)

    def render(self, label: Callable[[str], str]) -> str:
        return self.template.format(**{key: label(name) for key, name in self.settings.items()})

    def prefixed(self, text: str) -> SettingError:
        """The same error with `text` (e.g. the path it is about) in front."""
        error = copy.copy(self)
        error.template = self.literal(text) + self.template
        error.args = (error.template.format(**self.settings),)
        return error

    @classmethod
    def not_one_of(cls, value: object, choices: Iterable[str], setting: str) -> SettingError:
        """The error for a value outside a fixed set of names."""
        return cls(f"{{s}} {cls.literal(repr(value))} is not one of {', '.join(choices)}", s=setting)

    @staticmethod
    def literal(text: str) -> str:
        """`text` for a template, as is: paths and library messages may hold braces."""
        return text.replace("{", "{{").replace("}", "}}")


class BrokerError(UserError):
    """Kafka could not be reached or refused our messages."""

    exit_code = EXIT_BROKER


class BrokerSettingError(SettingError, BrokerError):
    """A broker problem the user fixes through a setting (its address, its port): exit 3, naming the setting."""
