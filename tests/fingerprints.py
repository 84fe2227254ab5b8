"""A library function's body, as a syntax tree, to compare with the one a project function was
written from: comments, docstrings and line breaks do not count, a changed statement does."""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
from typing import Any


def statements(function: Any) -> list[str]:
    """A function's body as syntax trees, without its docstring."""
    (definition,) = ast.parse(textwrap.dedent(inspect.getsource(function))).body
    assert isinstance(definition, ast.FunctionDef | ast.AsyncFunctionDef)
    body = definition.body
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return [ast.dump(statement) for statement in body]


def fingerprint(function: Any) -> str:
    """A function's body as a syntax tree, without its docstring, hashed."""
    return hashlib.sha256("\n".join(statements(function)).encode()).hexdigest()[:16]
