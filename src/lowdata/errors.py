"""The one exception type a user sees: a problem with their input, and how to fix it."""


class UsageError(Exception):
    """Bad input from the user. The CLI prints its message on one line and exits with status 2."""


class Failed(Exception):
    """A failure that is not bad input but that the user can act on (a study worker died): the CLI prints its
    message on one line and exits with status 1."""


def shown(value: object, limit: int = 80) -> str:
    """A value echoed in an error line: its repr, cut to `limit` characters with an ellipsis, so that a
    megabyte-long setting gives a line, not a megabyte."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
