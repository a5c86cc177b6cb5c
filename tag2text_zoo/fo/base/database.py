"""Database calls of a run, retried with a bounded backoff while the database is unreachable.

pymongo already waits for a server (``serverSelectionTimeoutMS``, 30 s by default) and retries
a write once; a database that restarts or drops connections for longer still fails the call.
The run's calls (reading pending samples and inputs, writing labels and mask targets) set or
read values by sample id, so repeating one is harmless: :func:`retrying` repeats it after each
of :data:`DELAYS_S`, then lets the error through.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from pymongo.errors import ConnectionFailure

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Seconds to wait before each new attempt of a call that could not reach the database.
DELAYS_S = (2.0, 4.0, 8.0)


def retrying(what: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)``, repeated after each of :data:`DELAYS_S` while the database is
    unreachable.

    Args:
        what: what the call does, for the log (``"writing 't2t_tags'"``).
        call: a database call that can safely be repeated.

    Raises:
        pymongo.errors.ConnectionFailure: still unreachable after the last attempt.
    """
    for delay in DELAYS_S:
        try:
            return call(*args, **kwargs)
        except ConnectionFailure as err:
            logger.warning(
                "%s: database unreachable (%s); retrying in %g s", what, brief(err), delay
            )
            time.sleep(delay)
    return call(*args, **kwargs)


def brief(err: ConnectionFailure) -> str:
    """The error without pymongo's timeouts and topology description (``"host:port: [Errno
    111] Connection refused"``)."""
    return re.split(r" \(configured timeouts|, Timeout: ", str(err))[0]
