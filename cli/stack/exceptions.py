"""Errors raised while installing, starting or stopping the local stack."""


class StackError(Exception):
    """Something in the local stack went wrong; the message says what and where to look."""


class ServerStartError(StackError):
    """A server did not come up: carries its name, log path and the last lines of its log."""

    def __init__(self, *, name: str, log_path: str, tail: str, reason: str) -> None:
        super().__init__(f"{name} failed to start: {reason}\nlog: {log_path}\n--- last lines ---\n{tail}")
        self.name = name
        self.log_path = log_path
