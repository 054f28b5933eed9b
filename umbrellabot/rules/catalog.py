"""Loading a set of YAML items — rules, detections — from files and folders.

A file holds one item (a mapping with `id`), a mapping with a list under the plural name, or
several YAML documents, one item each (a Sigma rule and its correlation).
Every problem in every file is collected and raised together, each line naming the file, the
item and the key; ids are unique across the set; nothing runs with half a set.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml

from umbrellabot.errors import ProblemsError

FILE_SUFFIXES = (".yaml", ".yml")
# Timestamps stay text, as CloudTrail writes them; booleans are redefined below.
_NOT_IMPLICIT = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML with 1.2 booleans: only true/false. In YAML 1.1 `NO` (Norway), `off` and
    `MFAUsed: No` would silently become booleans and never match CloudTrail's text."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _NOT_IMPLICIT]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
YAML_LOADER: Any = _Loader


class HasId(Protocol):
    @property
    def id(self) -> str: ...


Item = TypeVar("Item", bound=HasId)


def item_files(paths: Iterable[Path]) -> list[Path]:
    """Every YAML file under the given files and folders, in a stable order, once."""
    found: dict[Path, None] = {}
    for path in paths:
        if path.is_dir():
            found.update(
                dict.fromkeys(
                    sorted(p for p in path.rglob("*") if p.suffix in FILE_SUFFIXES and p.is_file())
                )
            )
        elif path.exists():
            found[path] = None
    return list(found)


def read_specs(path: Path, noun: str, plural: str) -> list[Any]:
    """The item mappings of one file; raises ProblemsError for a file that holds none."""
    try:
        documents = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=YAML_LOADER))
    except OSError as err:
        raise ProblemsError([f"{path}: cannot read: {err.strerror or err}"]) from None
    except yaml.YAMLError as err:
        raise ProblemsError([f"{path}: invalid YAML: {err}".replace("\n", " ")]) from None
    documents = [document for document in documents if document is not None]
    if len(documents) > 1:  # `---` between items (Sigma: rules and their correlation)
        return documents
    data = documents[0] if documents else None
    if isinstance(data, Mapping) and plural in data and "id" not in data:
        if not isinstance(data[plural], list):
            raise ProblemsError([f"{path}: {plural}: expected a list of {plural}"])
        return list(data[plural])
    if isinstance(data, Mapping):
        return [data]
    raise ProblemsError(
        [f"{path}: expected a {noun} (a mapping with id) or a mapping with a {plural} list"]
    )


def load_items(
    paths: Sequence[Path],
    *,
    noun: str,
    plural: str,
    parse: Callable[[Mapping[str, Any], Path], Item],
    problems_of: tuple[type[Exception], ...],
    error: type[ProblemsError],
) -> list[Item]:
    """Load and check every item under `paths`; `parse` raises one of `problems_of` (its text
    names the key) for a bad item. All problems are raised together as `error`."""
    problems: list[str] = []
    items: list[Item] = []
    seen: dict[str, Path] = {}
    files = item_files(paths)
    problems += [f"{path}: no such file or folder" for path in paths if not path.exists()]
    if not files and not problems:
        problems.append(f"{', '.join(map(str, paths))}: no {noun} files (*.yaml, *.yml) found")
    for path in files:
        try:
            specs = read_specs(path, noun, plural)
        except ProblemsError as err:
            problems.extend(err.problems)
            continue
        for index, spec in enumerate(specs):
            number = f"{noun} #{index + 1}"
            if not isinstance(spec, Mapping):
                problems.append(f"{path}: {number}: expected a mapping")
                continue
            item_id = spec.get("id")
            if item_id is not None and (not isinstance(item_id, str) or not item_id.strip()):
                problems.append(f"{path}: {number}: id: expected text")
                continue
            label = f"{noun} {item_id!r}" if item_id else number
            try:
                item = parse(spec, path)
            except problems_of as err:
                problems.append(f"{path}: {label}: {err}")
                continue
            if item.id in seen:
                problems.append(
                    f"{path}: {label}: id: duplicate id, first defined in {seen[item.id]}"
                )
                continue
            seen[item.id] = path
            items.append(item)
    if problems:
        raise error(problems)
    return items
