"""Fetching for ``flopopt catalog refresh``: settings, and a patient but bounded HTTP GET.

Settings come from defaults, then environment variables, then ``--url`` overrides
(``RefreshSettings.from_env``); every limit here exists so that an interactive CLI
neither hangs nor hammers a server:

* a timeout per request (``FLOPOPT_REFRESH_TIMEOUT_S``);
* retries with capped exponential backoff on 429/5xx only (``FLOPOPT_REFRESH_RETRIES``,
  ``FLOPOPT_REFRESH_BACKOFF_S``, ``FLOPOPT_REFRESH_BACKOFF_CAP_S``);
* ``Retry-After`` honoured up to a ceiling (``FLOPOPT_REFRESH_MAX_RETRY_AFTER_S``);
* a page limit for paged APIs (``FLOPOPT_REFRESH_MAX_PAGES``).

Errors (``requests``' exceptions are translated here, where they enter)::

    FlopoptError
    └── RefreshError      a refresh cannot run or be saved; nothing is written
        └── FetchError    one feed failed (network, HTTP status, malformed response)

``requests`` is imported inside ``Fetcher.get``, so importing this module stays cheap.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..optimizer.errors import FlopoptError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import requests

__all__ = [
    "DEFAULT_URLS",
    "SOURCES",
    "FetchError",
    "Fetcher",
    "RefreshError",
    "RefreshSettings",
    "decode_json",
    "parse_url_overrides",
    "short_url",
]


class RefreshError(FlopoptError):
    """A refresh cannot run or cannot be saved (bad option, lock held, invalid merge).

    The CLI prints it as one ``error:`` line and exits 2; the cache is unchanged.
    """


class FetchError(RefreshError):
    """One feed failed (network, HTTP status, malformed response); the others go on."""


# ---------------------------------------------------------------------------
# settings

SOURCES = ("azure", "skypilot", "vast")
DEFAULT_URLS: dict[str, str] = {
    "azure": "https://prices.azure.com/api/retail/prices",
    # SkyPilot itself reads <base>/<cloud>/vms.csv from this folder (schema v7).
    "skypilot": (
        "https://raw.githubusercontent.com/skypilot-org/skypilot-catalog/master/catalogs/v7"
    ),
    "vast": "https://console.vast.ai/api/v0/bundles/",
}
URL_ENV: dict[str, str] = {
    "azure": "FLOPOPT_AZURE_PRICES_URL",
    "skypilot": "FLOPOPT_SKYPILOT_CATALOG_URL",
    "vast": "FLOPOPT_VAST_BUNDLES_URL",
}
ENV_SKYPILOT_CLOUDS = "FLOPOPT_SKYPILOT_CLOUDS"
ENV_TIMEOUT = "FLOPOPT_REFRESH_TIMEOUT_S"
ENV_RETRIES = "FLOPOPT_REFRESH_RETRIES"
ENV_BACKOFF = "FLOPOPT_REFRESH_BACKOFF_S"
ENV_BACKOFF_CAP = "FLOPOPT_REFRESH_BACKOFF_CAP_S"
ENV_MAX_RETRY_AFTER = "FLOPOPT_REFRESH_MAX_RETRY_AFTER_S"
ENV_MAX_PAGES = "FLOPOPT_REFRESH_MAX_PAGES"
ENV_LOCK_TIMEOUT = "FLOPOPT_REFRESH_LOCK_TIMEOUT_S"
# Clouds whose vms.csv SkyPilot publishes under catalogs/v7 and whose GPUs we can map.
DEFAULT_SKYPILOT_CLOUDS = ("aws", "gcp", "azure", "lambda", "runpod")


@dataclass(frozen=True)
class RefreshSettings:
    """Where to fetch from and how patiently; every field has an environment variable.

    ``urls`` maps a source (``azure``, ``skypilot``, ``vast``) to its base URL, or one
    feed (``skypilot:gcp``) to the full URL of that feed's file, so tests and mirrors
    can point anywhere. Defaults are sized for a CLI user waiting at a terminal: a
    30 s timeout per request, 3 retries, backoff 1 s doubling up to 30 s.
    """

    urls: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_URLS))
    skypilot_clouds: tuple[str, ...] = DEFAULT_SKYPILOT_CLOUDS
    timeout_s: float = 30.0
    retries: int = 3
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 30.0
    # A server asking us to come back in an hour is a failure for an interactive CLI.
    max_retry_after_s: float = 120.0
    # Azure's GPU-size query is a few thousand items = a handful of 1,000-item pages;
    # 50 pages means the filter is wrong, not that we should keep paging for 20 minutes.
    max_pages: int = 50
    # 0 = fail at once when another refresh holds the lock (it may run for minutes).
    lock_timeout_s: float = 0.0
    # vast.ai is a marketplace: one listing is an anecdote, the median of 3+ is a price.
    vast_min_offers: int = 3

    @classmethod
    def from_env(
        cls,
        url_overrides: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> RefreshSettings:
        """Defaults, then environment variables, then ``--url`` overrides (highest)."""
        env = os.environ if environ is None else environ
        urls = dict(DEFAULT_URLS)
        for source, var in URL_ENV.items():
            if env.get(var, "").strip():
                urls[source] = env[var].strip()
        for key, url in (url_overrides or {}).items():
            urls[key] = url
        clouds: tuple[str, ...] = DEFAULT_SKYPILOT_CLOUDS
        if env.get(ENV_SKYPILOT_CLOUDS, "").strip():
            clouds = tuple(
                c.strip().lower() for c in env[ENV_SKYPILOT_CLOUDS].split(",") if c.strip()
            )
        defaults = cls()
        return cls(
            urls=urls,
            skypilot_clouds=clouds,
            timeout_s=_env_number(env, ENV_TIMEOUT, defaults.timeout_s, above=0),
            retries=int(_env_number(env, ENV_RETRIES, defaults.retries, low=0, whole=True)),
            backoff_base_s=_env_number(env, ENV_BACKOFF, defaults.backoff_base_s, low=0),
            backoff_cap_s=_env_number(env, ENV_BACKOFF_CAP, defaults.backoff_cap_s, low=0),
            max_retry_after_s=_env_number(
                env, ENV_MAX_RETRY_AFTER, defaults.max_retry_after_s, low=0
            ),
            max_pages=int(_env_number(env, ENV_MAX_PAGES, defaults.max_pages, above=0, whole=True)),
            lock_timeout_s=_env_number(env, ENV_LOCK_TIMEOUT, defaults.lock_timeout_s, low=0),
        )


def _env_number(
    env: Mapping[str, str],
    name: str,
    default: float,
    *,
    low: float | None = None,
    above: float | None = None,
    whole: bool = False,
) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise RefreshError(f"environment variable {name}={text!r} is not a number") from None
    if (
        not math.isfinite(value)
        or (low is not None and value < low)
        or (above is not None and value <= above)
        or (whole and value != int(value))
    ):
        bound = f"≥ {low:g}" if low is not None else f"> {above:g}"
        kind = "a whole number " if whole else "a number "
        raise RefreshError(f"environment variable {name}={text!r} must be {kind}{bound}")
    return value


def parse_url_overrides(items: Iterable[str]) -> dict[str, str]:
    """``["azure=http://…", "skypilot:gcp=http://…/vms.csv"]`` → {source or feed: URL}."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, url = item.partition("=")
        key, url = key.strip().lower(), url.strip()
        if not sep or not key or not url:
            raise RefreshError(
                f"--url {item!r}: expected SOURCE=URL, e.g. azure=http://localhost:8080/prices"
            )
        family = key.split(":", 1)[0]
        if family not in SOURCES or (":" in key and family != "skypilot"):
            raise RefreshError(
                f"--url {item!r}: unknown source {key!r}; use one of "
                f"{', '.join(SOURCES)} or skypilot:<cloud>"
            )
        if not url.startswith(("http://", "https://")):
            raise RefreshError(f"--url {item!r}: the URL must start with http:// or https://")
        out[key] = url
    return out


# ---------------------------------------------------------------------------
# fetching


def short_url(url: str) -> str:
    """scheme://host/path — enough to say where, without a 1 kB query string."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else url


def _connection_reason(exc: Exception) -> str:
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if match:
        return match.group(1).strip()
    for phrase in (
        "Connection refused",
        "Name or service not known",
        "Connection reset",
        "Network is unreachable",
        "Remote end closed connection",
    ):
        if phrase.lower() in text.lower():
            return phrase
    return type(exc).__name__


def _retry_after_s(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, when.timestamp() - now)


class Fetcher:
    """GET with a timeout, and retries with capped exponential backoff on 429/5xx.

    Why only 429/5xx: those say "come back later". Connection errors and timeouts fail
    at once — offline, retrying every feed would only make the user wait for the same
    answer — and so do other 4xx (a wrong URL does not heal). ``Retry-After`` is
    honoured (the wait is the larger of it and the backoff); a server asking for more
    than ``max_retry_after_s`` fails the feed instead of hanging the terminal.
    ``sleep`` is injectable so tests check the waits without waiting.
    """

    RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

    def __init__(
        self,
        settings: RefreshSettings,
        session: requests.Session,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.session = session
        self.sleep = sleep

    def backoff_s(self, attempt: int) -> float:
        """Wait before retry number ``attempt + 1``: base × 2^attempt, capped."""
        return float(min(self.settings.backoff_cap_s, self.settings.backoff_base_s * 2**attempt))

    def get(self, url: str, params: Mapping[str, str] | None = None) -> requests.Response:
        import requests

        attempt = 0
        while True:
            try:
                response = self.session.get(url, params=params, timeout=self.settings.timeout_s)
            except requests.Timeout:
                raise FetchError(
                    f"timed out after {self.settings.timeout_s:g} s waiting for {short_url(url)}"
                ) from None
            except requests.ConnectionError as exc:
                host = urlsplit(url).netloc or url
                raise FetchError(f"cannot connect to {host} ({_connection_reason(exc)})") from None
            except requests.RequestException as exc:
                raise FetchError(
                    f"request to {short_url(url)} failed ({type(exc).__name__}: {exc})"
                ) from None
            if response.status_code < 400:
                return response
            status = f"HTTP {response.status_code} {response.reason or ''}".strip()
            if response.status_code in self.RETRY_STATUSES and attempt < self.settings.retries:
                asked = _retry_after_s(response.headers.get("Retry-After"), time.time())
                if asked is not None and asked > self.settings.max_retry_after_s:
                    response.close()
                    raise FetchError(
                        f"{status} from {short_url(url)}; the server asks to retry after "
                        f"{asked:g} s (more than {self.settings.max_retry_after_s:g} s)"
                    )
                wait = max(asked or 0.0, self.backoff_s(attempt))
                response.close()
                self.sleep(wait)
                attempt += 1
                continue
            response.close()
            tries = f" after {attempt + 1} attempts" if attempt else ""
            raise FetchError(f"{status} from {short_url(url)}{tries}")

    def get_json(self, url: str, params: Mapping[str, str] | None = None) -> Any:
        return decode_json(self.get(url, params), url)

    def get_text(self, url: str) -> str:
        """The body as UTF-8 (CSV comes as text/plain, for which requests would guess latin-1)."""
        return self.get(url).content.decode("utf-8-sig", errors="replace")


def decode_json(response: requests.Response, url: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        first = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
        raise FetchError(f"malformed response from {short_url(url)}: not JSON ({first})") from None
