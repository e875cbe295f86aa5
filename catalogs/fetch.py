"""Fetching for ``flopopt catalog refresh``: settings, and a patient but bounded HTTP GET.

Settings come from defaults, then environment variables, then ``--url`` overrides
(``RefreshSettings.from_env``); every limit here exists so that an interactive CLI
neither hangs nor hammers a server:

* a timeout per request (``FLOPOPT_REFRESH_TIMEOUT_S``);
* retries with capped exponential backoff on 429/5xx only (``FLOPOPT_REFRESH_RETRIES``,
  ``FLOPOPT_REFRESH_BACKOFF_S``, ``FLOPOPT_REFRESH_BACKOFF_CAP_S``);
* ``Retry-After`` honoured up to a ceiling per answer (``FLOPOPT_REFRESH_MAX_RETRY_AFTER_S``)
  and in total per source (``FLOPOPT_REFRESH_MAX_RETRY_WAIT_S``);
* a page limit for paged APIs (``FLOPOPT_REFRESH_MAX_PAGES``);
* an overall deadline per source and for the whole refresh
  (``FLOPOPT_REFRESH_SOURCE_DEADLINE_S``, ``FLOPOPT_REFRESH_TOTAL_DEADLINE_S``): a per-read
  timeout alone lets a server that drips one byte a second hold the terminal for ever;
* a maximum response size (``FLOPOPT_REFRESH_MAX_RESPONSE_MB``), read in chunks, so a
  huge body fails the feed instead of filling memory;
* redirects followed only to the same host and never from https to http
  (``FLOPOPT_REFRESH_MAX_REDIRECTS``): a price feed that moves elsewhere is not trusted.

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
    "Fetched",
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
ENV_MAX_RETRY_WAIT = "FLOPOPT_REFRESH_MAX_RETRY_WAIT_S"
ENV_SOURCE_DEADLINE = "FLOPOPT_REFRESH_SOURCE_DEADLINE_S"
ENV_TOTAL_DEADLINE = "FLOPOPT_REFRESH_TOTAL_DEADLINE_S"
ENV_MAX_RESPONSE_MB = "FLOPOPT_REFRESH_MAX_RESPONSE_MB"
ENV_MAX_REDIRECTS = "FLOPOPT_REFRESH_MAX_REDIRECTS"
# Clouds whose vms.csv SkyPilot publishes under catalogs/v7 in the common layout
# (InstanceType, AcceleratorName, AcceleratorCount, ..., Price, SpotPrice, Region, read by
# header name), as listed in the skypilot-org/skypilot-catalog repository's catalogs/v7
# folder (kubernetes has images only; common/ holds no prices).
SKYPILOT_V7_CLOUDS = (
    "aws", "azure", "cudo", "gcp", "hyperbolic", "lambda", "mithril", "nebius",
    "primeintellect", "runpod", "seeweb", "shadeform", "simplepod", "vast",
)
# The default selection: the clouds whose GPU names the mapping covers best.
DEFAULT_SKYPILOT_CLOUDS = ("aws", "gcp", "azure", "lambda", "runpod")
MIB = 1024 * 1024


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
    # Total Retry-After/backoff waiting one source may cost: a server that keeps asking
    # for two more minutes must not turn a refresh into an afternoon.
    max_retry_wait_s: float = 180.0
    # Wall-clock limits, whatever the server does (slow drip, endless retries, many pages).
    source_deadline_s: float = 180.0
    total_deadline_s: float = 600.0
    # SkyPilot's largest v7 vms.csv (gcp) is a few MB; 64 MiB means something is wrong.
    max_response_bytes: int = 64 * MIB
    max_redirects: int = 5

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
            clouds = parse_clouds(env[ENV_SKYPILOT_CLOUDS])
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
            max_retry_wait_s=_env_number(env, ENV_MAX_RETRY_WAIT, defaults.max_retry_wait_s, low=0),
            source_deadline_s=_env_number(
                env, ENV_SOURCE_DEADLINE, defaults.source_deadline_s, above=0
            ),
            total_deadline_s=_env_number(
                env, ENV_TOTAL_DEADLINE, defaults.total_deadline_s, above=0
            ),
            max_response_bytes=int(
                _env_number(env, ENV_MAX_RESPONSE_MB, defaults.max_response_bytes / MIB, above=0)
                * MIB
            ),
            max_redirects=int(
                _env_number(env, ENV_MAX_REDIRECTS, defaults.max_redirects, low=0, whole=True)
            ),
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


def parse_clouds(text: str) -> tuple[str, ...]:
    """``--clouds aws,lambda`` → ("aws", "lambda"); an unknown cloud is an error naming it."""
    clouds = tuple(dict.fromkeys(c.strip().lower() for c in text.split(",") if c.strip()))
    if not clouds:
        raise RefreshError("--clouds: give one or more SkyPilot clouds, e.g. aws,gcp,lambda")
    for cloud in clouds:
        if cloud not in SKYPILOT_V7_CLOUDS:
            import difflib

            close = difflib.get_close_matches(cloud, SKYPILOT_V7_CLOUDS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise RefreshError(
                f"--clouds: {cloud!r} is not a SkyPilot v7 cloud{hint} "
                f"(choose from {', '.join(SKYPILOT_V7_CLOUDS)})"
            )
    return clouds


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
    when = _http_date(value)
    return None if when is None else max(0.0, when.timestamp() - now)


def _http_date(value: str) -> dt.datetime | None:
    """An HTTP date (RFC 9110 §5.6.7) as an aware datetime, or None when it does not parse."""
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.replace(tzinfo=dt.timezone.utc) if when.tzinfo is None else when


@dataclass(frozen=True)
class Fetched:
    """A whole, size-checked response body and what the feed adapters need of its headers."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes

    def text(self) -> str:
        """The body as UTF-8 (CSV comes as text/plain, for which requests would guess latin-1)."""
        return self.body.decode("utf-8-sig", errors="replace")

    def last_modified(self) -> dt.date | None:
        """The ``Last-Modified`` date, if the server sent a parseable one: the file's own date."""
        value = self.headers.get("Last-Modified")
        when = _http_date(value) if value else None
        return None if when is None else when.astimezone(dt.timezone.utc).date()


REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def redirect_refusal(from_url: str, to_url: str) -> str | None:
    """Why a redirect is not followed, or None: same host only, and never https → http."""
    old, new = urlsplit(from_url), urlsplit(to_url)
    if old.scheme == "https" and new.scheme != "https":
        return f"refused a redirect from https to {new.scheme or '?'} ({short_url(to_url)})"
    if (old.hostname or "").lower() != (new.hostname or "").lower():
        return f"refused a redirect to another host ({new.hostname or to_url})"
    return None


class Fetcher:
    """GET with a timeout, a deadline, a size cap, safe redirects, and bounded retries.

    Why only 429/5xx are retried: those say "come back later". Connection errors and
    timeouts fail at once — offline, retrying every feed would only make the user wait
    for the same answer — and so do other 4xx (a wrong URL does not heal). ``Retry-After``
    is honoured (the wait is the larger of it and the backoff); a server asking for more
    than ``max_retry_after_s`` at once, or more than ``max_retry_wait_s`` in total for a
    source, fails the feed instead of hanging the terminal. ``start_source`` arms the
    per-source deadline (never past the whole refresh's); the body is read in chunks so
    that the deadline and the size cap hold against a slow or endless server.
    ``sleep`` and ``clock`` are injectable so tests check the waits without waiting.
    """

    RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
    CHUNK_BYTES = 64 * 1024

    def __init__(
        self,
        settings: RefreshSettings,
        session: requests.Session,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.session = session
        self.sleep = sleep
        self.clock = clock
        self._total_deadline = clock() + settings.total_deadline_s
        self._deadline = self._total_deadline
        self._waited_s = 0.0
        self._deadline_reason = "the refresh's total deadline"

    def start_source(self) -> None:
        """A new source: its own deadline and Retry-After budget, within the total deadline."""
        own = self.clock() + self.settings.source_deadline_s
        if own < self._total_deadline:
            self._deadline = own
            self._deadline_reason = (
                f"the source deadline ({self.settings.source_deadline_s:g} s, "
                f"{ENV_SOURCE_DEADLINE})"
            )
        else:
            self._deadline = self._total_deadline
            self._deadline_reason = (
                f"the refresh's total deadline ({self.settings.total_deadline_s:g} s, "
                f"{ENV_TOTAL_DEADLINE})"
            )
        self._waited_s = 0.0

    def _remaining_s(self, url: str) -> float:
        left = self._deadline - self.clock()
        if left <= 0:
            raise FetchError(f"stopped fetching {short_url(url)}: {self._deadline_reason} passed")
        return left

    def backoff_s(self, attempt: int) -> float:
        """Wait before retry number ``attempt + 1``: base × 2^attempt, capped."""
        return float(min(self.settings.backoff_cap_s, self.settings.backoff_base_s * 2**attempt))

    def _send(self, url: str, params: Mapping[str, str] | None) -> requests.Response:
        """One GET (no redirects followed by requests itself), errors translated."""
        import requests

        timeout = min(self.settings.timeout_s, self._remaining_s(url))
        try:
            return self.session.get(
                url, params=params, timeout=timeout, stream=True, allow_redirects=False
            )
        except requests.Timeout:
            raise FetchError(f"timed out after {timeout:g} s waiting for {short_url(url)}") from None
        except requests.ConnectionError as exc:
            host = urlsplit(url).netloc or url
            raise FetchError(f"cannot connect to {host} ({_connection_reason(exc)})") from None
        except requests.RequestException as exc:
            raise FetchError(
                f"request to {short_url(url)} failed ({type(exc).__name__}: {exc})"
            ) from None

    def _follow(self, url: str, params: Mapping[str, str] | None) -> requests.Response:
        """GET, following at most ``max_redirects`` redirects that stay on the same host."""
        from urllib.parse import urljoin

        for _ in range(self.settings.max_redirects + 1):
            response = self._send(url, params)
            if response.status_code not in REDIRECT_STATUSES:
                return response
            location = response.headers.get("Location", "")
            response.close()
            if not location:
                raise FetchError(f"HTTP {response.status_code} from {short_url(url)} without a Location")
            target = urljoin(response.url or url, location)
            refusal = redirect_refusal(response.url or url, target)
            if refusal:
                raise FetchError(f"{short_url(url)}: {refusal}")
            url, params = target, None  # the Location carries its own query
        raise FetchError(
            f"more than {self.settings.max_redirects} redirects from {short_url(url)} "
            f"({ENV_MAX_REDIRECTS})"
        )

    def _read_body(self, response: requests.Response, url: str) -> bytes:
        """The body, in chunks, within the size cap and the deadline."""
        import requests

        limit = self.settings.max_response_bytes
        too_big = (
            f"response from {short_url(url)} is larger than {limit / MIB:g} MiB "
            f"({ENV_MAX_RESPONSE_MB}); not read"
        )
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            response.close()
            raise FetchError(too_big)
        chunks: list[bytes] = []
        size = 0
        try:
            raw = response.raw
            while True:
                self._remaining_s(url)
                # read1: what has arrived (at most a chunk), so a slow server cannot keep
                # one read busy past the deadline; plain read() waits for a full chunk.
                chunk = raw.read1(self.CHUNK_BYTES) if hasattr(raw, "read1") else raw.read(
                    self.CHUNK_BYTES
                )
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise FetchError(too_big)
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise FetchError(f"reading {short_url(url)} failed ({type(exc).__name__})") from None
        except OSError as exc:  # urllib3 read timeouts and resets surface as OSError subclasses
            if "timed out" in str(exc).lower():
                raise FetchError(
                    f"timed out after {self.settings.timeout_s:g} s reading {short_url(url)}"
                ) from None
            raise FetchError(f"reading {short_url(url)} failed ({type(exc).__name__})") from None
        except Exception as exc:  # noqa: BLE001 - urllib3 wraps socket errors in its own types
            if isinstance(exc, FetchError):
                raise
            text = str(exc).lower()
            what = "timed out" if "timed out" in text or "timeout" in text else type(exc).__name__
            raise FetchError(f"reading {short_url(url)} failed ({what})") from None
        finally:
            response.close()
        return b"".join(chunks)

    def get(self, url: str, params: Mapping[str, str] | None = None) -> Fetched:
        attempt = 0
        while True:
            response = self._follow(url, params)
            if response.status_code < 400:
                body = self._read_body(response, url)
                return Fetched(
                    url=response.url or url,
                    status=response.status_code,
                    headers=dict(response.headers),
                    body=body,
                )
            status = f"HTTP {response.status_code} {response.reason or ''}".strip()
            retry_after = response.headers.get("Retry-After")
            response.close()
            if response.status_code in self.RETRY_STATUSES and attempt < self.settings.retries:
                asked = _retry_after_s(retry_after, time.time())
                if asked is not None and asked > self.settings.max_retry_after_s:
                    raise FetchError(
                        f"{status} from {short_url(url)}; the server asks to retry after "
                        f"{asked:g} s (more than {self.settings.max_retry_after_s:g} s)"
                    )
                wait = max(asked or 0.0, self.backoff_s(attempt))
                if self._waited_s + wait > self.settings.max_retry_wait_s:
                    raise FetchError(
                        f"{status} from {short_url(url)}; retrying would wait more than "
                        f"{self.settings.max_retry_wait_s:g} s in total ({ENV_MAX_RETRY_WAIT})"
                    )
                if wait >= self._remaining_s(url):
                    raise FetchError(
                        f"{status} from {short_url(url)}; the next retry (in {wait:g} s) "
                        f"would pass {self._deadline_reason}"
                    )
                self._waited_s += wait
                self.sleep(wait)
                attempt += 1
                continue
            tries = f" after {attempt + 1} attempts" if attempt else ""
            raise FetchError(f"{status} from {short_url(url)}{tries}")

    def get_json(self, url: str, params: Mapping[str, str] | None = None) -> Any:
        return decode_json(self.get(url, params), url)

    def get_text(self, url: str) -> str:
        return self.get(url).text()


def decode_json(response: Fetched, url: str) -> Any:
    import json

    try:
        return json.loads(response.text())
    except ValueError as exc:
        first = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
        raise FetchError(f"malformed response from {short_url(url)}: not JSON ({first})") from None
