"""Reading ``warden.yaml`` safely: whatever the file holds, the answer is a parsed tree or a
ConfigError that says what is wrong, within bounded time and memory.

A config file is small, human-written YAML, so anything else is refused before it can cost much:

- not a regular file (a directory, a FIFO that would block the reader forever, a device);
- larger than ``MAX_BYTES``; not UTF-8 text; holding NUL bytes (a binary file);
- nested deeper than ``MAX_DEPTH`` (the YAML composer recurses once per level);
- more than ``MAX_ALIASES`` aliases (``*name``), or a tree that would count more than
  ``MAX_NODES`` values once its aliases are expanded: a few hundred bytes of nested aliases
  (a "billion laughs" file) expand to billions of values in every walk of the tree;
- an alias inside its own anchor (a recursive structure, which no setting can hold).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode

from warden.errors import ConfigError

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 256
MAX_NODES = 200_000


def read_text(path: Path) -> str:
    """The text of the config file at ``path``; ConfigError when it is not a readable, small,
    regular UTF-8 text file."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; pass --config with a valid "
                          "path") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, not a config file; pass the path of "
                          "warden.yaml") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ConfigError(f"{path} is a directory, not a config file; pass the path of "
                              "warden.yaml")
        if not stat.S_ISREG(mode):
            raise ConfigError(f"{path} is not a regular file (a pipe, socket or device); "
                              "write the config to a file and pass its path")
        raw = _read_bounded(fd, path)
    finally:
        os.close(fd)
    if b"\x00" in raw:
        raise ConfigError(f"{path} holds NUL bytes: it is a binary file, not YAML text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (invalid byte at offset {exc.start}); "
                          "save it as UTF-8") from None


def _read_bounded(fd: int, path: Path) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError as exc:
            if exc.errno == errno.EISDIR:
                raise ConfigError(f"{path} is a directory, not a config file") from None
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_BYTES:
            raise ConfigError(f"{path} is larger than {MAX_BYTES // (1024 * 1024)} MiB; a config "
                              "file is a few kilobytes: is it the right file?")
        chunks.append(chunk)


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses deep nesting and too many aliases while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise ConfigError(f"more than {MAX_ALIASES} aliases (*name); write the values "
                                  "out, or use fewer anchors")
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise ConfigError(f"nested more than {MAX_DEPTH} levels deep (line {mark.line + 1}); "
                              "a config is a few levels deep")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def parse_yaml(text: str) -> Any:
    """The tree of one YAML document; ConfigError for invalid YAML and for the bounds above."""
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}") from None
    except ValueError as exc:
        # A value YAML reads but Python will not make, e.g. an integer of over 4,300 digits.
        raise ConfigError(f"a value in the file cannot be read: {exc}") from None
    finally:
        loader.dispose()


def _check_expansion(root: Node) -> None:
    """Refuse a node graph with a cycle, or one counting more than MAX_NODES values once its
    aliases (shared nodes) are expanded. Iterative, so any depth is safe."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            on_path.discard(key)
            total = 1 + sum(size[id(c)] for c in children)
            if total > MAX_NODES:
                raise ConfigError(f"the file's aliases (*name) expand to more than {MAX_NODES} "
                                  "values; write the values out, or use fewer nested aliases")
            size[key] = total
            continue
        if key in size:
            continue
        if key in on_path:
            mark = node.start_mark
            raise ConfigError(f"an alias refers to its own anchor (line {mark.line + 1}): a "
                              "recursive structure cannot be a setting")
        on_path.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in on_path:
                mark = child.start_mark
                raise ConfigError(f"an alias refers to its own anchor (line {mark.line + 1}): "
                                  "a recursive structure cannot be a setting")
            if id(child) not in size:
                stack.append((child, False))


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []
