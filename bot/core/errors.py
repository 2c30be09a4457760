"""Domain errors. Each carries a one-line, second-person message that says what to do instead."""


class BotError(Exception):
    """A refusal the user should see (ephemerally); never a crash."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field  # the modal block this error belongs to, if any


class UserInputError(BotError):
    """The command text or form was malformed."""


class NotFoundError(BotError):
    """The incident, role or user named does not exist."""


class PermissionDeniedError(BotError):
    """The user may not do this; the message says who can."""


class ConflictError(BotError):
    """The incident is not in a state that allows this (an illegal transition)."""
