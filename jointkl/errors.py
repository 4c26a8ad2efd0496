"""One exception type for every user-facing problem: the CLI prints its message on one line."""


class JointKLError(Exception):
    """A problem the user can fix; the message says what is wrong and how to fix it."""


class Diverged(JointKLError):
    """Training met a non-finite loss and stopped before applying the update."""


def one_line(e: BaseException) -> str:
    """An exception as one line, `Type: message`, for messages that quote a library's error."""
    msg = " ".join(str(e).split())
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__
