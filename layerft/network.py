"""One probe of a web service (the Hugging Face hub, W&B) before a library would retry it for
a minute or more: layerft fails fast or goes offline instead. Serves no config group."""

from __future__ import annotations

import ssl
import threading
import urllib.error
import urllib.request

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
