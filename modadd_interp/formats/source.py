"""What a format is asked about: a path (a file or a directory) or an object already in memory.

A :class:`Source` reads lazily and at most once: :attr:`Source.head` reads a few bytes, :attr:`Source.content`
loads the file (a safetensors file with :func:`~modadd_interp.storage.load_tensors`, anything else with
:func:`~modadd_interp.storage.torch_load_safely`: never arbitrary unpickling). A file that cannot be loaded has
``content`` None and keeps the error, which the registry raises when no format claims the file, so a format's
``sniff`` never raises.

Examples:
    >>> src = Source.of_object({"embed.W_E": torch.zeros(3, 2)}, "my dict")
    >>> src.path is None, sorted(src.content), src.metadata
    (True, ['embed.W_E'], {})
"""

from __future__ import annotations

from pathlib import Path

import torch  # noqa: F401  (the doctest)

from ..errors import CheckpointError
from ..storage import load_tensors, torch_load_safely

_UNLOADED = object()
SAFETENSORS_SUFFIX = ".safetensors"


class Source:
    """A path or an object, with what the formats' ``sniff`` functions look at, loaded once.

    Attributes:
        path: the file or directory, or None for an object in memory.
        origin: how messages name it: the path, or what the caller calls the object.
        name: how notices name it: the file name, or ``origin``.
        file: the file it is, or the file it was found in (the state dict under a paper file's ``"model"``), or
            None for an object the caller passed.
    """

    def __init__(self, path: Path | None, origin: str, content: object = _UNLOADED, file: Path | None = None) -> None:
        self.path = path
        self.origin = origin
        self.name = path.name if path is not None else origin
        self.file = path if path is not None else file
        self._content = content
        self._metadata: dict = {}
        self._head: bytes | None = None
        self.error: CheckpointError | None = None

    @classmethod
    def of_path(cls, path: str | Path) -> Source:
        """A file or directory on disk (nothing is read yet)."""
        path = Path(path)
        return cls(path, str(path))

    @classmethod
    def of_object(cls, obj: object, origin: str = "the object", file: Path | None = None) -> Source:
        """An object already in memory: a state dict, a paper-style dict, ...

        ``origin`` names it in messages (``"this state dict"``, ``"state_dicts[3]"``); ``file`` is the file it was
        found in, if any.
        """
        return cls(None, origin, obj, file)

    @property
    def is_dir(self) -> bool:
        """True for a directory."""
        return self.path is not None and self.path.is_dir()

    @property
    def is_file(self) -> bool:
        """True for a regular file."""
        return self.path is not None and self.path.is_file()

    @property
    def head(self) -> bytes:
        """The file's first 16 bytes (``b""`` for an object, a directory or an unreadable file)."""
        if self._head is None:
            self._head = b""
            if self.is_file:
                try:
                    with open(self.path, "rb") as f:
                        self._head = f.read(16)
                except OSError as e:
                    self.error = CheckpointError(f"cannot read {self.path}: {e.strerror or e}.")
        return self._head

    @property
    def is_safetensors(self) -> bool:
        """A safetensors file: named ``*.safetensors``, or an 8-byte header length followed by ``{``."""
        return self.is_file and (self.path.suffix == SAFETENSORS_SUFFIX or self.head[8:9] == b"{")

    @property
    def content(self) -> object | None:
        """The loaded object: a safetensors file's tensors (a ``model.`` prefix removed), a torch file's object,
        or the object itself; None when the file cannot be loaded (:attr:`error` says why)."""
        if self._content is _UNLOADED:
            self._content = None
            if self.is_file and self.error is None:
                try:
                    if self.is_safetensors:
                        tensors, self._metadata = load_tensors(self.path)
                        if any(k.startswith("model.") for k in tensors):
                            tensors = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
                        self._content = tensors
                    else:
                        self._content = torch_load_safely(self.path)
                except CheckpointError as e:
                    self.error = e
        return self._content

    @property
    def metadata(self) -> dict:
        """A safetensors file's metadata (our header entry, or its JSON sidecar), else ``{}``; never loads a torch
        file."""
        if self.is_safetensors:
            _ = self.content
        return self._metadata

    def load(self) -> object:
        """:attr:`content`, or the error that kept the file from loading."""
        content = self.content
        if content is None and self.error is not None:
            raise self.error
        return content
