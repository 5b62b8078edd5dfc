"""Start-up checks: wait for each dependency with backoff until the start-up deadline, then fail in one line."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

import structlog
from tenacity import AsyncRetrying, RetryError, retry_if_exception_type, stop_after_delay

from kestrel.common.errors import KestrelError
from kestrel.common.retry import backoff

log = structlog.get_logger()

Probe = Callable[[], Awaitable[None]]
"""Returns once the dependency answers; raises (any error) while it does not."""


class StartupError(KestrelError):
    """A dependency stayed unreachable past the start-up deadline; the message is the one line to print."""


@dataclass(frozen=True, slots=True)
class Dependency:
    """Something a service cannot start without, named the way an operator would look it up."""

    name: str
    """What it is: `kafka`, `redis`, `triton`, `postgres`."""
    address: str
    setting: str
    """The environment variable that sets the address, e.g. KESTREL_KAFKA_BOOTSTRAP."""
    probe: Probe

    def describe(self) -> str:
        return f"{self.name} not reachable at {self.address} ({self.setting})"


async def wait_for_dependencies(
    dependencies: Sequence[Dependency], deadline_s: float, initial_s: float = 0.2, max_s: float = 5.0
) -> None:
    """Probe each dependency in turn; one warning line when one is down, StartupError once the deadline
    (counted from the first failure of that dependency) has passed."""
    for dependency in dependencies:
        await _wait_for(dependency, deadline_s, initial_s, max_s)


async def _wait_for(dependency: Dependency, deadline_s: float, initial_s: float, max_s: float) -> None:
    warned = False
    retrying = AsyncRetrying(
        stop=stop_after_delay(deadline_s),
        wait=backoff(initial_s, max_s),
        retry=retry_if_exception_type(Exception),
        reraise=False,
    )
    try:
        async for attempt in retrying:
            with attempt, _quiet_client_logs():
                try:
                    await dependency.probe()
                except Exception:
                    if not warned:
                        log.warning(f"{dependency.describe()}; retrying", deadline_s=deadline_s)
                        warned = True
                    raise
    except RetryError as exc:
        cause = exc.last_attempt.exception()
        raise StartupError(f"{dependency.describe()} after {deadline_s:g} s: {_first_line(cause)}") from None
    if warned:
        log.info(f"{dependency.name} reachable at {dependency.address}")


def _first_line(error: BaseException | None) -> str:
    text = str(error) or type(error).__name__
    return text.splitlines()[0] if text else "unreachable"


@contextlib.contextmanager
def _quiet_client_logs() -> Iterator[None]:
    """Client libraries log every refused connection at ERROR; during start-up that is our one line's job."""
    loggers = [logging.getLogger(name) for name in ("aiokafka", "kafka", "redis", "tritonclient")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
