"""Local mode: a folder in CloudTrail's S3 key layout stands in for the bucket.

`LocalStore` answers the same calls as `s3.S3Bucket` (listings with and without delimiter,
download, upload), reading CloudTrail files under one folder (`CLOUDTRAIL_LOCAL_PATH`) and writing
enriched copies under another (`ENRICHED_LOCAL_PATH`) at the same relative key, which is what the
DuckDB engine reads. Uploads are a rename of a finished temporary file: complete or absent.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from umbrellabot.storage.ports import ObjectInfo


def _etag(path: Path) -> str:
    status = path.stat()
    return f"{status.st_size:x}-{status.st_mtime_ns:x}"


class LocalStore:
    def __init__(self, source_root: Path, output_root: Path) -> None:
        self.source_root = source_root.resolve()
        self.output_root = output_root.resolve()
        self.bucket = str(source_root)  # what logs and reports call the place
        self.requests: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()  # a folder is not throttled

    def _path(self, key: str) -> Path:
        path = (self.source_root / key).resolve()
        if not path.is_relative_to(self.source_root.resolve()):
            raise ValueError(f"key {key!r} leaves {self.source_root}")
        return path

    def _folders(self, prefix: str) -> list[str]:
        folder = self._path(prefix) if prefix else self.source_root
        if not folder.is_dir():
            return []
        return sorted(f"{prefix}{child.name}/" for child in folder.iterdir() if child.is_dir())

    def _objects(self, prefix: str) -> list[ObjectInfo]:
        folder = self._path(prefix) if prefix else self.source_root
        if not folder.is_dir():
            return []
        found = []
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                key = path.relative_to(self.source_root).as_posix()
                stat = path.stat()
                found.append(ObjectInfo(key, _etag(path), stat.st_size, stat.st_mtime))
        return found

    def location(self, key: str) -> str:
        return str(self.source_root / key)

    async def list_folders(self, prefix: str) -> list[str]:
        self.requests["folder listings"] += 1
        return await asyncio.to_thread(self._folders, prefix)

    async def list_objects(self, prefix: str) -> list[ObjectInfo]:
        self.requests["file listings"] += 1
        return await asyncio.to_thread(self._objects, prefix)

    async def download(self, key: str, target: Path) -> str | None:
        self.requests["files read"] += 1
        source = self._path(key)
        await asyncio.to_thread(shutil.copyfile, source, target)
        return _etag(source)

    async def upload(self, source: Path, key: str) -> None:
        self.requests["files written"] += 1
        await asyncio.to_thread(self._write, source, key)

    def _write(self, source: Path, key: str) -> None:
        target = (self.output_root / key).resolve()
        if not target.is_relative_to(self.output_root.resolve()):
            raise ValueError(f"key {key!r} leaves {self.output_root}")
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=".partial-", dir=target.parent)
        os.close(handle)
        try:
            shutil.copyfile(source, temp_name)
            Path(temp_name).replace(target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise

    async def read(self, key: str) -> bytes:
        """An enriched copy, by the key the state index stores (relative to the output root)."""
        target = (self.output_root / key).resolve()
        if not target.is_relative_to(self.output_root.resolve()):
            raise FileNotFoundError(key)
        return await asyncio.to_thread(target.read_bytes)
