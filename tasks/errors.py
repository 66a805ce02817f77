"""User-facing errors.

A `GreenlaneError` is bad input or an unmet precondition: the CLI prints its
message on one line and exits with `exit_code` instead of a traceback.
"""


class GreenlaneError(Exception):
    """An error the user can fix; the message names the problem and the remedy."""

    exit_code = 2


class NoChampion(GreenlaneError):
    """No variant passed the gates, so nothing was promoted."""

    exit_code = 3
