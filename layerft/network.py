"""One probe of a web service (the Hugging Face hub, W&B) before a library would retry it for
a minute or more: layerft fails fast or goes offline instead; and the hub's answers put in one
line (a refused token, the offline hint). Serves no config group: `layerft/model.py`,
`layerft/records.py` and `layerft/tracker.py` ask it; huggingface_hub is imported where it is read.
"""

from __future__ import annotations

import functools
import ssl
import threading
import urllib.error
import urllib.request
from typing import Any

PROBE_SECONDS = 3.0  # the libraries themselves wait 30-90 s before they give up on a dead host


def unreachable(url: str, timeout: float = PROBE_SECONDS) -> str | None:
    """Why `url` gives no HTTP answer (any status counts) within `timeout` seconds; None if it does."""
    # The probe sends nothing secret, so it skips certificate checks (a proxy's own CA must not fail it).
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            request = urllib.request.Request(url, method="HEAD")
            urllib.request.urlopen(request, timeout=timeout, context=context).close()
        except urllib.error.HTTPError:
            pass  # an error status is an answer
        except (OSError, ValueError) as err:
            outcome.append(str(getattr(err, "reason", err)))
            return
        outcome.append(None)

    # A thread, because the name lookup inside urlopen ignores the timeout.
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else f"no answer within {timeout:g} s"


def hub_unreachable() -> str | None:
    """Why the Hugging Face hub (`HF_ENDPOINT`) does not answer, or None when it does."""
    return probe_endpoint(hub_constants().ENDPOINT)


@functools.cache  # once per process: every hub id of a run asks the same endpoint
def probe_endpoint(endpoint: str) -> str | None:
    """Why `endpoint` gives no HTTP answer, or None when it answers (any status)."""
    reason = unreachable(endpoint)
    return None if reason is None else f"{endpoint} does not answer: {reason}"


def refused_status(err: BaseException) -> int | None:
    """401 or 403 anywhere in the error's chain: the hub answered but refused the token or access."""
    cause: BaseException | None = err
    while cause is not None:
        status = getattr(getattr(cause, "response", None), "status_code", None)
        if status in (401, 403):
            return int(status)
        cause = cause.__cause__ or cause.__context__
    return None


def hub_cache_hint(offline: bool | None = None) -> str:
    """The end of a could-not-load message: the Hugging Face cache, unless offline mode is on
    already (then the cache does not hold it). `offline`: as the loader reads it (datasets' own,
    which HF_DATASETS_OFFLINE sets too); by default the hub library's."""
    if hub_constants().HF_HUB_OFFLINE if offline is None else offline:
        return "or download it into the Hugging Face cache (offline mode is on: it is not there)"
    return "or set HF_HUB_OFFLINE=1 to load it from the Hugging Face cache"


def hub_constants() -> Any:
    """`huggingface_hub.constants`, read at call time (HF_HUB_OFFLINE, HF_ENDPOINT); imported as
    the submodule it is (the package's lazy attributes lack it until something imports it)."""
    import huggingface_hub.constants

    return huggingface_hub.constants
