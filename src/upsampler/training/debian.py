"""Fetch Debian packages with ``apt-get download`` and unpack them without installing them.

A ``.deb`` is an ``ar`` archive (``debian-binary``, ``control.tar.*``, ``data.tar.*``); the
files it would install are in ``data.tar.*``. :func:`unpack_deb` uses ``dpkg-deb -x`` where
it exists and reads the archive with Python's ``tarfile`` otherwise (xz, gzip, bzip2).
Both steps are resumable: a ``.deb`` already in the cache is not downloaded again, a folder
already unpacked is not unpacked again, and unpacking goes to a temporary folder that is
renamed into place, so an interrupted run leaves nothing half-unpacked.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

AR_MAGIC = b"!<arch>\n"
AR_HEADER_SIZE = 60  # name 16, mtime 12, uid 6, gid 6, mode 8, size 10, terminator 2
AR_NAME_SIZE, AR_SIZE_FIELD = 16, slice(48, 58)
DATA_MEMBER = "data.tar"
PACKAGE_PAGE = "https://packages.debian.org/bookworm/all/{package}/download"


class PackageError(RuntimeError):
    """A package could not be fetched or unpacked; the message says what to do by hand."""


def cached_deb(cache_dir: Path, package: str) -> Path | None:
    """The newest ``<package>_<version>_<arch>.deb`` in ``cache_dir``, or None."""
    found = sorted(cache_dir.glob(f"{package}_*.deb"))
    return found[-1] if found else None


def download_deb(package: str, cache_dir: str | os.PathLike[str]) -> Path:
    """``apt-get download <package>`` into ``cache_dir`` unless a ``.deb`` of it is there.

    Raises :class:`PackageError` (saying where to put a hand-downloaded file) when
    ``apt-get`` is missing or fails.
    """
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    existing = cached_deb(folder, package)
    if existing is not None:
        log.info("%s: using %s", package, existing)
        return existing
    by_hand = (
        f"download {package}_*.deb by hand (e.g. from {PACKAGE_PAGE.format(package=package)}, "
        f"or `apt-get download {package}` on any Debian or Ubuntu machine) and put it in "
        f"{str(folder.resolve())!r}, then run again"
    )
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        raise PackageError(f"apt-get is not available on this machine: {by_hand}")
    log.info("%s: apt-get download into %s", package, folder)
    result = subprocess.run([apt_get, "download", package], cwd=folder,
                            capture_output=True, text=True, check=False)
    fetched = cached_deb(folder, package)
    if result.returncode != 0 or fetched is None:
        detail = " ".join((result.stderr or result.stdout).split())[-400:]
        raise PackageError(
            f"`apt-get download {package}` failed (exit status {result.returncode}: {detail}); "
            f"if the package is unknown, run `apt-get update` first, or {by_hand}"
        )
    return fetched


def _ar_members(archive: bytes, source: Path) -> dict[str, bytes]:
    """The members of a System V ``ar`` archive (what a ``.deb`` is) by name."""
    if not archive.startswith(AR_MAGIC):
        raise PackageError(f"{str(source)!r} is not a .deb (no ar archive header)")
    members, position = {}, len(AR_MAGIC)
    while position + AR_HEADER_SIZE <= len(archive):
        header = archive[position:position + AR_HEADER_SIZE]
        name = header[:AR_NAME_SIZE].decode("ascii").strip().rstrip("/")
        size = int(header[AR_SIZE_FIELD].decode("ascii"))
        start = position + AR_HEADER_SIZE
        members[name] = archive[start:start + size]
        position = start + size + size % 2  # members are padded to an even offset
    return members


def _extract_data_tar(deb: Path, destination: Path) -> None:
    members = _ar_members(deb.read_bytes(), deb)
    names = [name for name in members if name.startswith(DATA_MEMBER)]
    if not names:
        raise PackageError(f"{str(deb)!r} holds no {DATA_MEMBER}.* member: {sorted(members)}")
    try:
        with tarfile.open(fileobj=io.BytesIO(members[names[0]]), mode="r:*") as tar:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: refuse unsafe paths
                tar.extractall(destination, filter="data")
            else:
                tar.extractall(destination)
    except tarfile.TarError as err:
        raise PackageError(
            f"cannot read {names[0]} of {str(deb)!r} with Python's tarfile ({err}); install "
            f"dpkg-deb (package dpkg) and run again"
        ) from err


def unpack_deb(deb: str | os.PathLike[str], destination: str | os.PathLike[str]) -> Path:
    """The files ``deb`` would install, under ``destination`` (skipped when it exists).

    Unpacks into a temporary folder beside ``destination`` and renames it into place.
    """
    deb, target = Path(deb), Path(destination)
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        dpkg_deb = shutil.which("dpkg-deb")
        if dpkg_deb is not None:
            result = subprocess.run([dpkg_deb, "-x", str(deb), str(temp)],
                                    capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise PackageError(f"`dpkg-deb -x {deb}` failed: {' '.join(result.stderr.split())}"
                                   f"; delete the file and run again to download it anew")
        else:
            log.info("dpkg-deb not found: reading %s with Python's tarfile", deb)
            _extract_data_tar(deb, temp)
        os.replace(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return target


__all__ = ["PackageError", "cached_deb", "download_deb", "unpack_deb"]
