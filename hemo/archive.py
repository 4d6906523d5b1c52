"""Zipped studies: PACS and viewers export a study as a .zip; its files are read in memory, within limits.

A zip is opened only when it really is one (its signature, and not a DICOM whose preamble happens to
start like one). Its size is counted as it is read, not taken from its headers, so an archive that
claims little and unpacks to much (a "zip bomb") stops at the limit. Nothing is written to disk, so
member names such as ``../x`` cannot reach outside it.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import PurePosixPath

from hemo.datasets import ignored
from hemo.errors import HemoInputError

MAX_BYTES = 1 << 30  # 1 GiB unpacked: several thin-slice series, well under this machine's memory
MAX_FILES = 10_000
MAX_DEPTH = 2  # a zip of zipped studies is opened; a zip inside that is not
_CHUNK = 1 << 20

Entry = tuple[str, str, bytes]  # name (the zip's name / the member's path), folder (groups a study), bytes


def is_zip(data: bytes) -> bool:
    """A zip's local-file signature, and no DICOM marker where a DICOM file has it (offset 128)."""
    return data[:4] == b"PK\x03\x04" and data[128:132] != b"DICM"


def expand(name: str, data: bytes, folder: str = "", max_bytes: int = MAX_BYTES,
           max_files: int = MAX_FILES, depth: int = 1) -> list[Entry]:
    """The file itself, or every file in it when it is a zip (hidden files, macOS forks and DICOMDIR left out).

    A member's folder is the zip's name and the member's folder inside it, so the slices of one folder
    of one archive form a study when they carry no DICOM study identifiers. A zip inside the zip (several
    studies, each exported as a zip, sent as one) is opened too, within the same limits. Raises
    :class:`HemoInputError` for a zip that cannot be read whole within the limits.
    """
    if not is_zip(data):
        return [(name, folder, data)]
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist()
                   if not m.is_dir() and not ignored(PurePosixPath(m.filename.replace("\\", "/")))]
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise HemoInputError(f"{name}: this zip archive is damaged and cannot be read.") from None
    if not members:
        raise HemoInputError(f"{name}: this zip archive holds no files.")
    if len(members) > max_files:
        raise HemoInputError(f"{name}: this zip archive holds {len(members):,} files, more than the {max_files:,} "
                             "read at once; upload its series one by one.")
    entries, left = [], max_bytes
    for member in members:
        content = _read(archive, member, name, left)
        if content is None:
            shared = (f" (what is left of the {MAX_BYTES / 2**30:.0f} GiB one session may unpack)"
                      if max_bytes < MAX_BYTES else "")
            raise HemoInputError(f"{name}: this zip archive unpacks to more than {max_bytes / 2**20:,.0f} MiB"
                                 f"{shared}; unzip it and upload the series folder, or fewer zips at once.")
        left -= len(content)
        path = member.filename.replace("\\", "/")  # some Windows tools write backslashes; folders must still part
        if depth < MAX_DEPTH and is_zip(content):
            found = expand(f"{name}/{path}", content, folder, left, max_files, depth + 1)
            left -= sum(len(inner) for _, _, inner in found)
        else:
            inside = str(PurePosixPath(path).parent)
            found = [(f"{name}/{path}", "/".join(p for p in (folder, name, inside) if p not in ("", ".")), content)]
        entries += found
        if len(entries) > max_files:  # the zips inside it hold too many, together
            raise HemoInputError(f"{name}: the zip archives in this one hold more than the {max_files:,} files "
                                 "read at once; upload its studies one by one.")
    return entries


def _read(archive: zipfile.ZipFile, member: zipfile.ZipInfo, name: str, budget: int) -> bytes | None:
    """One member's bytes, or None as soon as they pass ``budget`` (whatever its header claims)."""
    parts, size = [], 0
    try:
        with archive.open(member) as stream:
            while size <= budget and (chunk := stream.read(min(_CHUNK, budget - size + 1))):
                size += len(chunk)
                parts.append(chunk)
    except RuntimeError:  # zipfile's word for a password-protected member
        raise HemoInputError(f"{name}: this zip archive is password-protected; unzip it and upload the "
                             "series folder.") from None
    except (zipfile.BadZipFile, NotImplementedError, EOFError, OSError, ValueError):
        raise HemoInputError(f"{name}: a file in this zip archive is damaged or packed in a way that cannot "
                             "be read.") from None
    return None if size > budget else b"".join(parts)
