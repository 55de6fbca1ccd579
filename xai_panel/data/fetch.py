"""Download Imagenette, the freely licensed 10-class ImageNet subset, on request.

Nothing here runs implicitly: the app and tests work with the demo gallery and
local folders, and a user calls :func:`fetch_imagenette` when they want more.
Downloads are treated as untrusted until proven whole and harmless: streamed to
a temporary file, checked against Content-Length and for a readable archive,
and extracted only if no member could land outside the destination. Each step
finishes with a rename, so an interrupted run never leaves something that a
later run mistakes for a finished one.
"""

from __future__ import annotations

import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath, PureWindowsPath

from .datasets import DatasetError

__all__ = ["IMAGENETTE_URL", "FetchError", "default_data_dir", "fetch_imagenette"]

IMAGENETTE_URL = "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-{size}.tgz"
_CHUNK = 1 << 20


class FetchError(DatasetError):
    """A download or its archive failed a check; nothing half-done was kept."""


def default_data_dir() -> Path:
    """Per-user data folder, where downloads survive across sessions and venvs."""
    import platformdirs

    return platformdirs.user_data_path("xai-panel")


def fetch_imagenette(
    size: int = 160,
    dest: str | os.PathLike | None = None,
    url: str | None = None,
    progress: bool = True,
) -> Path:
    """Download and extract Imagenette once; return its root for ``open_dataset``.

    ``size`` picks the variant whose shorter side is 160 or 320 pixels (about
    94 MB and 325 MB to download). Calling again returns the extracted folder
    without network access. ``url`` replaces the fast.ai address (mirrors, tests).
    """
    if size not in (160, 320):
        raise ValueError(f"Imagenette comes in sizes 160 and 320, not {size!r}")
    name = f"imagenette2-{size}"
    dest = Path(dest).expanduser() if dest is not None else default_data_dir()
    target = dest / name
    if target.is_dir():
        return target  # only ever created by the final rename of a full extraction
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / f"{name}.tgz"
    if not archive.is_file():  # an archive is only renamed into place once verified
        _download(url or IMAGENETTE_URL.format(size=size), archive, progress)
    try:
        _extract(archive, target)
    except FetchError:
        archive.unlink(missing_ok=True)  # a bad archive must not be reused next time
        raise
    archive.unlink()
    return target


def _download(url: str, archive: Path, progress: bool) -> None:
    from tqdm import tqdm

    handle, partial = tempfile.mkstemp(dir=archive.parent, prefix=f".{archive.name}.", suffix=".part")
    received, expected = 0, None
    try:
        with os.fdopen(handle, "wb") as file, urllib.request.urlopen(url, timeout=60) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            with tqdm(
                total=expected, unit="B", unit_scale=True, unit_divisor=1024, desc=archive.name, disable=not progress
            ) as bar:
                # read(n) returns b"" when the server stops early, without raising:
                # the byte count below is what catches a truncated transfer.
                while chunk := response.read(_CHUNK):
                    file.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if expected is not None and received != expected:
            raise FetchError(
                f"Download of {url} is incomplete: received {received:,} of {expected:,} bytes. "
                "Try again; the partial file was discarded."
            )
        _check_archive(Path(partial))
        os.replace(partial, archive)
    except http.client.IncompleteRead as exc:
        raise FetchError(
            f"Download of {url} was cut off after {received + len(exc.partial):,} bytes. Try again."
        ) from exc
    except urllib.error.HTTPError as exc:
        raise FetchError(f"Could not download {url}: the server answered {exc.code} {exc.reason}.") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise FetchError(f"Could not download {url}: {reason}.") from exc
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def _check_archive(archive: Path) -> None:
    """Read the whole archive: a damaged gzip stream fails here, not mid-extraction."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            _checked_members(tar)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise FetchError(f"The downloaded file is not a complete tar archive ({exc}).") from exc


def _extract(archive: Path, target: Path) -> None:
    """Extract into a hidden staging folder, then rename it to ``target``."""
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".extracting"))
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = _checked_members(tar)
            if hasattr(tarfile, "data_filter"):
                # Belt and braces: the stdlib filter also strips setuid bits and the like.
                tar.extractall(staging, members=members, filter="data")
            else:  # Python < 3.11.4; our own checks above still apply
                tar.extractall(staging, members=members)
        entries = list(staging.iterdir())
        # Archives usually wrap everything in one top folder ("imagenette2-160/").
        content = entries[0] if len(entries) == 1 and entries[0].is_dir() else staging
        try:
            content.rename(target)
        except OSError:
            if not target.is_dir():  # else another process finished first: use its copy
                raise
    except (tarfile.TarError, EOFError) as exc:
        raise FetchError(f"Could not extract {archive} ({exc}).") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _checked_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """All members, after refusing any that could write outside the extraction folder."""
    members = tar.getmembers()
    for member in members:
        problem = _member_problem(member)
        if problem:
            raise FetchError(f"Refusing the archive: member {member.name!r} {problem}.")
    return members


def _member_problem(member: tarfile.TarInfo) -> str | None:
    if _is_absolute(member.name):
        return "has an absolute path"
    if _escapes(member.name):
        return "uses '..' to point outside the destination"
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        return "is a device, FIFO or other special file"
    if member.issym():
        # A symlink's target is relative to the folder holding the link.
        target = str(PurePosixPath(member.name).parent / member.linkname)
        if _is_absolute(member.linkname) or _escapes(target):
            return f"is a link to {member.linkname!r}, outside the destination"
    if member.islnk() and _escapes(member.linkname):
        return f"is a hard link to {member.linkname!r}, outside the destination"
    return None


def _is_absolute(name: str) -> bool:
    return PurePosixPath(name).is_absolute() or bool(PureWindowsPath(name).drive) or PureWindowsPath(name).is_absolute()


def _escapes(name: str) -> bool:
    """True when an archive path is absolute or climbs above the extraction folder."""
    if _is_absolute(name):
        return True
    depth = 0
    for part in name.replace("\\", "/").split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False
