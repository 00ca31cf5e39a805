"""Exceptions raised by modadd_interp.

Every error a user can trigger with bad input is a :class:`ModAddError`, so a
caller can catch one type. Each message names the problem and the fix.
"""

from __future__ import annotations


class ModAddError(Exception):
    """Base class for every error this package raises on bad input."""


class CheckpointError(ModAddError):
    """A file or directory could not be read as a supported checkpoint."""


class UnsafeCheckpointError(CheckpointError):
    """A file would need arbitrary unpickling (code execution) to load; it was refused."""


class ArchitectureError(ModAddError):
    """The model's architecture is not one this package can analyse."""


class TaskMismatchError(ModAddError):
    """The task (p, op, split) does not fit the model or the data."""


class InvalidWeightsError(ModAddError):
    """The weights contain NaN or inf, or have inconsistent shapes."""


class VizError(ModAddError):
    """A figure, view or page could not be built (e.g. an incompatible circuitsvis)."""


class BrowserNotFoundError(VizError):
    """Static image export needs a Chromium-family browser and none was found."""


class RecipeError(ModAddError, ValueError):
    """A training recipe value is invalid (e.g. ``steps=0`` or an unknown field)."""


class RunLockedError(ModAddError):
    """Another process is already training in the same run directory."""


class GroupError(ModAddError, ValueError):
    """A Cayley table is not a group's (not square, not a Latin square, no identity, not associative, ...),
    or a group name, irrep or element cannot be resolved (modadd_interp.groups)."""
