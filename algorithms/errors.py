"""The one error type for bad user input, so every entry point can report it the same way, and the wording of the
one-line messages users read."""


def first_line(error: BaseException | str) -> str:
    """The first non-blank line of an error message (stripped), or the error's type name when it has none: every
    input error reaches the user as exactly one line, and library errors often span many."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if lines:
        return lines[0]
    return type(error).__name__ if isinstance(error, BaseException) else ""


def counted(number: int, noun: str) -> str:
    """``number`` and ``noun``, plural unless one: "1 trial", "3 trials"."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


class InputError(ValueError):
    """Bad user input: a config field, path, task, method or proxy that cannot be used.

    ``field`` names what was wrong (``"task"``, ``"methods"``, ``"source"``, ...) and ``expected`` says what
    would have been accepted; ``str(error)`` is the one line the CLI prints before exiting with code 2.
    """

    def __init__(self, field: str, expected: str):
        self.field = field
        self.expected = expected
        super().__init__(f"{field}: {expected}")

    def __reduce__(self) -> tuple:
        # Exceptions cross process boundaries (Ray, process pools) by pickling; the default reduction would
        # call __init__ with the formatted message alone.
        return type(self), (self.field, self.expected)
