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


class Cancelled(GreenlaneError):
    """A run stopped by SIGTERM or SIGINT: exits 128 + the signal number (143, 130), as a shell reports it."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.exit_code = 128 + signum


def require_prepared(ctx: dict | None) -> dict:
    """The context the `prepare` task returned. The tasks that run after a failure too (trigger rule all_done)
    get None when `prepare` itself failed: that is a GreenlaneError, so they fail at once instead of retrying."""
    if ctx is None:
        raise GreenlaneError("the prepare task failed (see its log): nothing was built, so nothing is promoted")
    return ctx
