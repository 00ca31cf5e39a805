"""A docs-build-only Griffe extension that adapts the package's docstrings to Markdown.

Two habits of the package's docstrings render badly with mkdocstrings' Google parser:

* examples are titled ``Example:`` (singular). Griffe only knows ``Examples:`` as the
  examples section and renders ``Example:`` as an admonition, where ``>>>`` prompts
  become Markdown block quotes. The heading is renamed to ``Examples:``;
* Sphinx roles (``:func:`train```, ``:class:`~modadd_interp.task.ModularTask```) are not
  Markdown. They are rendered as inline code of the target (its last component after ``~``).

Only the docs build sees these changes; the package's files are not touched. When the
docstrings say ``Examples:`` and use plain backticks, delete this file and its line in
mkdocs.yml.
"""

from __future__ import annotations

import re

import griffe

_HEADING = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const):`(~?)([^`]+)`")


def _role_to_code(match: re.Match) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


class ExampleSections(griffe.Extension):
    """Rename ``Example:`` headings to ``Examples:``; turn Sphinx roles into inline code."""

    def on_object(self, *, obj: griffe.Object, **kwargs: object) -> None:  # noqa: ARG002
        if obj.docstring is not None:
            value = _HEADING.sub(r"\1Examples:", obj.docstring.value)
            obj.docstring.value = _ROLE.sub(_role_to_code, value)
