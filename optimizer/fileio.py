"""Every file flopopt reads or writes goes through here: bounded reads, durable writes, locks.

Why one module: the guarantees (README "Guarantees") are only as good as the one writer
that forgets them. It sits at the bottom layer, next to ``errors.py``, so that both
``catalogs/`` and ``optimizer/`` can use it without an import cycle.

Reads
    Only regular files are read. A device (``/dev/zero``), FIFO, socket or directory is an
    InputError naming the file — opened with ``O_NONBLOCK`` so a FIFO without a writer
    cannot block. Each kind of file has a size cap (``SIZE_CAPS``), raised with an
    environment variable, so a 50 MB file is refused in milliseconds instead of parsed for
    half a minute.

Writes
    Temporary file in the target's folder (``.NAME.<pid>.<random>.tmp``), written, fsynced,
    renamed over the target, then the folder fsynced so the rename survives a power loss.
    Any OSError (no space, read-only file system, permission denied) becomes a WriteError
    naming the file and the reason; the temporary file is removed and the previous file is
    untouched. Temporary files left by killed runs (their pid is gone, or they are over an
    hour old) are removed by the next write to the same file.

Locks
    ``locked(folder)`` holds a filelock on ``folder/.flopopt.lock`` around a
    read-modify-write, so two concurrent ``catalog import`` or ``calibrate`` runs merge
    instead of one silently dropping the other's rows.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import FlopoptError, InputError

# ---------------------------------------------------------------------------
# errors


class WriteError(FlopoptError):
    """A file could not be written (no space, read-only, permission, wrong kind of path).

    The previous file, if any, is unchanged. ``str(err)`` is ``FILE: cannot write (REASON)``.
    """

    def __init__(self, file: str, reason: str) -> None:
        self.file, self.reason = file, reason
        super().__init__(f"{file}: cannot write ({reason})")


class LockTimeout(FlopoptError):
    """Another flopopt run held the lock for longer than the timeout."""


# ---------------------------------------------------------------------------
# bounded reads

KIB, MIB = 1024, 1024 * 1024


@dataclass(frozen=True)
class FileKind:
    """A kind of input file: how to name it in messages and how big it may be."""

    noun: str              # "job file" → "job file not found"
    wanted: str            # "a job YAML file" → "is a directory; give a job YAML file"
    default_cap_bytes: int
    env: str               # the setting that raises the cap


# Caps are ~100× the largest real file of each kind, and small enough that parsing a
# file at the cap takes about a second on a loaded laptop (a 50 MB offers CSV took 12-30 s).
SIZE_CAPS: dict[str, FileKind] = {
    "job": FileKind("job file", "a job YAML file", 64 * KIB, "FLOPOPT_MAX_JOB_BYTES"),
    "portfolio": FileKind("portfolio file", "a portfolio YAML file", 256 * KIB, "FLOPOPT_MAX_PORTFOLIO_BYTES"),
    "gpus.csv": FileKind("file", "a gpus.csv file", 1 * MIB, "FLOPOPT_MAX_GPUS_CSV_BYTES"),
    "offers.csv": FileKind("file", "an offers.csv file", 8 * MIB, "FLOPOPT_MAX_OFFERS_CSV_BYTES"),
    "attenuation.csv": FileKind("file", "an attenuation.csv file", 1 * MIB, "FLOPOPT_MAX_ATTENUATION_CSV_BYTES"),
    "models.csv": FileKind("file", "a models.csv file", 1 * MIB, "FLOPOPT_MAX_MODELS_CSV_BYTES"),
    "precision.csv": FileKind("file", "a precision.csv file", 1 * MIB, "FLOPOPT_MAX_PRECISION_CSV_BYTES"),
    "efficiency.csv": FileKind("file", "an efficiency.csv file", 1 * MIB, "FLOPOPT_MAX_EFFICIENCY_CSV_BYTES"),
    "quotes": FileKind("file", "a quotes CSV file", 4 * MIB, "FLOPOPT_MAX_QUOTES_BYTES"),
    "history": FileKind("file", "a history CSV file", 4 * MIB, "FLOPOPT_MAX_HISTORY_BYTES"),
}
_READ_CHUNK_BYTES = 256 * KIB

# Files read by this process, so a report is never written over one of its own inputs.
_inputs_read: dict[str, None] = {}


def size_cap_bytes(kind: str) -> int:
    """The cap for ``kind``: its environment variable if set (a whole number of bytes), else the default."""
    spec = SIZE_CAPS[kind]
    text = os.environ.get(spec.env, "").strip()
    if not text:
        return spec.default_cap_bytes
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise InputError.at(spec.env, "", f"must be a whole number of bytes > 0 (got {text!r})")
    return value


def _mode_name(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "directory"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISFIFO, "FIFO (named pipe)"),
                       (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def _not_regular(file: str, mode: int, spec: FileKind) -> InputError:
    name = _mode_name(mode)
    if name == "directory":
        return InputError.at(file, "", f"is a directory; give {spec.wanted}")
    return InputError.at(file, "", f"is a {name}, not a regular file; give {spec.wanted}")


def _too_big(file: str, size: int, cap: int, spec: FileKind) -> InputError:
    return InputError.at(file, "", f"file is {size:,} bytes, over the {cap:,}-byte cap for {spec.wanted}; "
                                   f"set {spec.env}=<bytes> to raise the cap")


def describe_os_error(exc: OSError) -> str:
    """A short reason for a failed file operation, the same words whatever the caller."""
    reasons = {errno.ENOSPC: "no space left on the device", errno.EROFS: "read-only file system",
               errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
               errno.EDQUOT: "disk quota exceeded", errno.EISDIR: "is a directory",
               errno.ENOTDIR: "a part of the path is not a folder", errno.ENOENT: "no such file or folder"}
    return reasons.get(exc.errno or 0) or exc.strerror or str(exc)


def read_bytes(path: str | Path, kind: str) -> bytes:
    """The whole file, if it is a regular file within the cap of ``kind``; else an InputError."""
    file = str(path)
    spec = SIZE_CAPS[kind]
    cap = size_cap_bytes(kind)
    try:
        before = os.stat(path)  # stat never blocks, even on a FIFO; open a socket would fail oddly
    except FileNotFoundError:
        raise InputError.at(file, "", f"{spec.noun} not found") from None
    except OSError as exc:
        raise InputError.at(file, "", f"cannot read ({describe_os_error(exc)})") from None
    if not stat.S_ISREG(before.st_mode):
        raise _not_regular(file, before.st_mode, spec)
    if before.st_size > cap:
        raise _too_big(file, before.st_size, cap, spec)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InputError.at(file, "", f"cannot read ({describe_os_error(exc)})") from None
    try:
        now = os.fstat(fd)  # the path may have been swapped between stat and open
        if not stat.S_ISREG(now.st_mode):
            raise _not_regular(file, now.st_mode, spec)
        chunks: list[bytes] = []
        total = 0
        while total <= cap:  # read at most cap + 1 bytes: the file may grow while we read
            chunk = os.read(fd, min(_READ_CHUNK_BYTES, cap + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise InputError.at(file, "", f"cannot read ({describe_os_error(exc)})") from None
    finally:
        os.close(fd)
    if total > cap:
        raise _too_big(file, total, cap, spec)
    _inputs_read[os.path.realpath(path)] = None
    return b"".join(chunks)


def read_text(path: str | Path, kind: str) -> str:
    """``read_bytes`` decoded as UTF-8; undecodable bytes are an InputError, not a traceback."""
    data = read_bytes(path, kind)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError.at(str(path), "", f"cannot read as UTF-8 text (byte {exc.start:,} is not UTF-8)") from None


def input_that_is(path: str | Path) -> str | None:
    """The input file this process read that ``path`` is (same file, by any name), if any."""
    for seen in list(_inputs_read):
        try:
            if os.path.samefile(seen, path):
                return seen
        except OSError:
            continue  # gone or unreachable: then it cannot be overwritten either
    return None


# ---------------------------------------------------------------------------
# text checks shared by every reader

# C0 and C1 control characters and DEL: invisible in a terminal, NUL truncates C strings,
# ESC drives the terminal. Tab, newline and carriage return are separators, never in a name.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Ids (offer_id, gpu, model and provider names): a letter or digit first — so no id can
# start a spreadsheet formula (= + - @) — then letters, digits and . _ - : / + @ ( ) # or
# space; at most 200 characters.
ID_PATTERN = re.compile(r"[^\W_][\w .:/+@()#-]{0,199}")
ID_RULE = ("an id: a letter or digit first, then letters, digits, space or . _ - : / + @ ( ) #; "
           "at most 200 characters")


def control_character(text: str) -> str | None:
    """The first control character in ``text`` as ``U+0000``, or None."""
    found = _CONTROL.search(text)
    return f"U+{ord(found.group()):04X}" if found else None


def is_valid_id(text: str) -> bool:
    return ID_PATTERN.fullmatch(text) is not None


def describe_value(text: str, limit: int = 60) -> str:
    """``repr`` of a cell, cut to ``limit`` characters: control characters show as escapes."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


# ---------------------------------------------------------------------------
# CSV output

# OWASP "CSV Injection": a cell starting with one of these is run as a formula by
# spreadsheets; a leading apostrophe makes it text.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, object]], text_columns: Iterable[str]) -> str:
    """Rows as CSV text (missing cells empty); text cells neutralised against formula injection.

    Numeric columns are left alone: ``-0.5`` must stay a number (the schemas reject
    negatives anyway, so no number cell can start a formula that survives validation).
    """
    import csv
    import io

    texts = set(text_columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    # csv quotes a cell only for the line terminator's characters: a bare CR would end the
    # record for every reader, so a row holding one is written fully quoted.
    quoted = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(columns)
    for row in rows:
        cells = ["" if row.get(c) is None else str(row.get(c)) for c in columns]
        cells = [neutralise_formula(v) if c in texts else v for c, v in zip(columns, cells)]
        (quoted if any("\r" in v for v in cells) else writer).writerow(cells)
    return buffer.getvalue()


# ---------------------------------------------------------------------------
# durable writes

STALE_TEMP_AGE_S = 3600.0  # a temp file this old is left over whatever its pid says


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists but is someone else's
    return True


def remove_stale_temps(folder: Path, name: str) -> list[Path]:
    """Remove ``.NAME.*.tmp`` files left by killed writers of ``folder/NAME``; return them.

    A temp file is stale when its writer's pid no longer runs or it is over an hour old,
    so a concurrent writer's file in flight is never removed.
    """
    removed: list[Path] = []
    prefix = f".{name}."
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if not (entry.name.startswith(prefix) and entry.name.endswith(".tmp")):
            continue
        middle = entry.name[len(prefix):-len(".tmp")]
        pid_text = middle.split(".", 1)[0]
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        alive = pid_text.isdigit() and _pid_alive(int(pid_text))
        if alive and age < STALE_TEMP_AGE_S:
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass  # another run removed it first, or we may not: it does no harm where it is
    return removed


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable. File systems that cannot sync a folder are skipped."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def ensure_folder(folder: Path) -> None:
    """Create ``folder`` and its parents; an OSError becomes a WriteError."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise WriteError(str(folder), "exists and is not a folder (a dangling symlink or a file)") from None
    except OSError as exc:
        raise WriteError(str(folder), describe_os_error(exc)) from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _write_special(path: Path, data: bytes, mode: int) -> None:
    """A character device (/dev/null) or FIFO is written in place: renaming over it would
    replace the device node. A FIFO is opened non-blocking, so no reader means an error, not a hang."""
    file = str(path)
    if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
        raise WriteError(file, f"is a {_mode_name(mode)}; give a file name")
    try:
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        reason = "a FIFO with no reader" if exc.errno == errno.ENXIO else describe_os_error(exc)
        raise WriteError(file, reason) from None
    try:
        os.set_blocking(fd, True)
        _write_all(fd, data)
    except OSError as exc:
        raise WriteError(file, describe_os_error(exc)) from None
    finally:
        os.close(fd)


def write_bytes(path: str | Path, data: bytes, *, report: bool = False) -> Path:
    """Replace ``path`` with ``data`` atomically and durably; return the file written.

    A symlink is followed (its target is replaced, the link kept); a dangling one is an
    error, so no folders are created wherever it points. Missing parent folders of the
    path as given are created. ``report=True`` (``--output``, ``--plot``) refuses to
    overwrite a file this process read as input — a report over the job file loses the job.
    """
    file = str(path)
    given = Path(path)
    if report:
        clash = input_that_is(given)
        if clash is not None:
            raise WriteError(file, f"it is an input of this command ({clash}); give another output path")
    if given.is_symlink() and not given.exists():
        raise WriteError(file, f"a symlink to {os.readlink(given)}, which does not exist")
    try:
        mode = os.stat(given).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise WriteError(file, describe_os_error(exc)) from None
    if mode is not None and not stat.S_ISREG(mode):
        _write_special(given, data, mode)
        return given
    # mkdir on the path as given: a dangling symlink among its folders fails here
    # instead of having its target's folders created.
    ensure_folder(given.parent)
    target = Path(os.path.realpath(given))
    folder = target.parent
    remove_stale_temps(folder, target.name)
    tmp = folder / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        # 0o666 & ~umask like a plain open(); an existing file keeps its own mode
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as exc:
        raise WriteError(file, describe_os_error(exc) + "; nothing was changed") from None
    try:
        try:
            if mode is not None:
                os.fchmod(fd, stat.S_IMODE(mode))
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            kept = "the previous file is unchanged" if mode is not None else "nothing was written"
            raise WriteError(file, f"{describe_os_error(exc)}; {kept}") from None
        raise
    try:
        fsync_folder(folder)
    except OSError as exc:
        raise WriteError(file, f"written, but the folder could not be synced ({describe_os_error(exc)})") from None
    return target


def write_text(path: str | Path, text: str, *, report: bool = False) -> Path:
    return write_bytes(path, text.encode("utf-8"), report=report)


@contextmanager
def scratch_folder(prefix: str = "flopopt-") -> Iterator[Path]:
    """A private temporary folder for validating a would-be file; a full or read-only
    temp folder is a WriteError naming it, not a traceback."""
    import tempfile

    try:
        with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
            yield Path(scratch)
    except OSError as exc:
        where = exc.filename if isinstance(exc.filename, str) else tempfile.gettempdir()
        raise WriteError(where, f"{describe_os_error(exc)}; needed for a scratch copy, nothing was changed") from None


# ---------------------------------------------------------------------------
# locks

LOCK_NAME = ".flopopt.lock"
LOCK_TIMEOUT_ENV = "FLOPOPT_LOCK_TIMEOUT_S"
DEFAULT_LOCK_TIMEOUT_S = 60.0  # an import or calibrate holds the lock ~1 s; a minute means stuck


def lock_timeout_s() -> float:
    text = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise InputError.at(LOCK_TIMEOUT_ENV, "", f"must be a number of seconds ≥ 0 (got {text!r})")
    return value


@contextmanager
def locked(folder: Path, what: str) -> Iterator[None]:
    """Hold ``folder/.flopopt.lock`` for a read-modify-write of ``what`` in ``folder``.

    Waits up to ``FLOPOPT_LOCK_TIMEOUT_S`` (default 60 s) for another run to finish, then
    gives up with a LockTimeout that names the lock file. The lock is released when the
    holder exits, even when it is killed (the OS drops the flock with the process).
    """
    from filelock import FileLock, Timeout

    ensure_folder(folder)
    lock_file = folder / LOCK_NAME
    timeout = lock_timeout_s()
    lock = FileLock(str(lock_file), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:  # before OSError: filelock's Timeout is a TimeoutError
        raise LockTimeout(f"{lock_file}: another flopopt run is changing {what} and held the lock for "
                          f"{timeout:g} s; wait for it to finish, or set {LOCK_TIMEOUT_ENV} to wait longer"
                          ) from None
    except OSError as exc:
        raise WriteError(str(lock_file), f"{describe_os_error(exc)}; nothing was changed") from None
    try:
        yield
    finally:
        lock.release()
