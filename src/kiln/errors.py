"""One error base for everything Kiln reports to a user.

The CLI maps ``exit_code`` and the HTTP server maps ``status`` once each; the message is a
single line that names the field, the bad value and a likely fix.
"""

from __future__ import annotations

# What str.splitlines() breaks on, written out: a value quoted from the user's input (a YAML
# key holding a line break) cannot split an invalid-input message into several lines.
_LINE_BREAKS = {ord(c): repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


class KilnError(Exception):
    """An expected failure with a message meant for the user."""

    exit_code: int = 1
    status: int = 400
    one_line: bool = False  # True: line breaks in the message are shown escaped

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        from kiln.secrets import redact

        # Every message passes here: a credential inside a URL never reaches the user's screen.
        message = redact(message)
        if self.one_line:
            message = message.translate(_LINE_BREAKS)
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class InvalidDefinition(KilnError):
    """A definition or a file that holds one is malformed; nothing was written."""

    exit_code = 2
    status = 422
    one_line = True


class InvalidType(InvalidDefinition, TypeError):
    """A value of the wrong Python type given to the SDK: a TypeError, as in azureml-core."""


class MissingFile(InvalidDefinition, FileNotFoundError):
    """A file a definition is read from does not exist: a FileNotFoundError to SDK code, as in
    azureml-core, and bad input (exit 2) to the CLI."""


class NotFound(KilnError):
    exit_code = 3
    status = 404


class Conflict(KilnError):
    """The request contradicts what the workspace already holds."""

    exit_code = 4
    status = 409


class AlreadyExists(Conflict, FileExistsError):
    """A file that would be replaced without being told to: a FileExistsError to SDK code."""


class ReadOnly(KilnError):
    """An attempt to change something Kiln ships (a curated environment)."""

    exit_code = 4
    status = 403


class WorkspaceError(KilnError):
    """No workspace could be found or opened."""

    exit_code = 5
    status = 500


class InvalidRequest(KilnError):
    """A request (a run's script, source folder, target, ...) is malformed; nothing was written."""

    exit_code = 2
    status = 422
    one_line = True


class UsageError(KilnError):
    """A command line that does not say what to do (a malformed option value, a missing
    operand): the message says what to write instead."""

    exit_code = 2
    status = 400
    one_line = True


class Unauthorized(KilnError):
    """No valid token: missing, unknown, or revoked."""

    exit_code = 5
    status = 401


class Forbidden(KilnError):
    """A valid token whose role may not do this."""

    exit_code = 4
    status = 403
