"""What the adjustments in ``servers/`` rely on in the libraries beneath them, read from the code.

The classes of ``servers/`` that subclass a class of daphne, autobahn, Twisted, uvicorn or
websockets are found by import; what each one overrides, adds, sets and reads is read from the
class and the syntax tree of its source, and compared with the library classes it derives from
(their attributes and the ``self.`` attributes their source assigns). Nothing is listed by hand
here, so a new override, a new name or a new read is seen the moment it is written:
``tests/test_server_contracts.py`` holds each to a contract, and ``tools/rename_internals.py``
renames each in a copy of its library to show the tests notice.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from collections.abc import Iterator
from functools import cache

# The libraries the adjustments subclass, by top-level package.
LIBRARIES = ("daphne", "autobahn", "twisted", "uvicorn", "websockets")
# The modules that adjust them. Importing servers.daphne needs Django's settings.
ADJUSTMENT_MODULES = (
    "servers.daphne",
    "servers.uvicorn",
    "servers.management.commands.runserver",
)
# What Python puts in every class's namespace.
BOOKKEEPING = {
    *("__module__", "__doc__", "__qualname__", "__annotations__", "__dict__", "__weakref__"),
    *("__slots__", "__parameters__", "__orig_bases__", "__firstlineno__"),
    *("__static_attributes__", "__abstractmethods__", "_abc_impl"),
}


def library_of(cls: type) -> str | None:
    """The library that defines ``cls``, or None for the project's and Python's classes."""
    top = cls.__module__.split(".")[0]
    return top if top in LIBRARIES else None


@cache
def adjusted_classes() -> tuple[type, ...]:
    """Every class of ``servers/`` that derives from a library's class."""
    found = []
    for module_name in ADJUSTMENT_MODULES:
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and value.__module__ == module_name
                and any(library_of(base) for base in value.__mro__)
            ):
                found.append(value)
    return tuple(found)


def library_bases(cls: type) -> list[type]:
    return [base for base in cls.__mro__ if library_of(base)]


def project_bases(cls: type) -> list[type]:
    return [base for base in cls.__mro__ if base.__module__ in ADJUSTMENT_MODULES]


@cache
def class_tree(cls: type) -> ast.ClassDef | None:
    """The syntax tree of a class's source; None where there is none (a class built in C)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return None
    tree = ast.parse(source).body[0]
    return tree if isinstance(tree, ast.ClassDef) else None


def self_attributes(cls: type, context: type[ast.expr_context]) -> set[str]:
    """The ``self.name`` attributes the methods of ``cls`` itself assign (``ast.Store``) or
    read (``ast.Load``); ``super().name`` counts as a read."""
    tree = class_tree(cls)
    if tree is None:
        return set()
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not isinstance(node.ctx, context):
            continue
        target = node.value
        is_self = isinstance(target, ast.Name) and target.id == "self"
        is_super = (
            isinstance(target, ast.Call)
            and isinstance(target.func, ast.Name)
            and target.func.id == "super"
        )
        if is_self or (is_super and context is ast.Load):
            names.add(node.attr)
    return names


def defined_names(cls: type) -> set[str]:
    """What the body of ``cls`` defines: methods, class attributes and annotations."""
    names = set(vars(cls)) | set(vars(cls).get("__annotations__", {}))
    return names - BOOKKEEPING


def named_in_strings(cls: type) -> set[str]:
    """Attribute names ``cls`` sets by name: in a list or tuple of names in its class body
    (autobahn's ``CONFIG_ATTRS``, whose options it copies to each connection with
    ``setattr``), or as the name given to ``setattr``."""
    tree = class_tree(cls)
    if tree is None:
        return set()
    strings: list[ast.expr] = []
    for statement in tree.body:
        if isinstance(statement, ast.Assign | ast.AnnAssign) and isinstance(
            statement.value, ast.List | ast.Tuple
        ):
            strings.extend(statement.value.elts)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "setattr"
            and len(node.args) > 1
        ):
            strings.append(node.args[1])
    return {
        node.value
        for node in strings
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def library_names(cls: type) -> dict[str, type]:
    """Each name the library classes of ``cls`` define, assign on ``self`` or set by name,
    with the first of them (in method resolution order) that does."""
    owners: dict[str, type] = {}
    for base in reversed(library_bases(cls)):
        for name in (
            defined_names(base) | self_attributes(base, ast.Store) | named_in_strings(base)
        ):
            owners[name] = base
    return owners


def project_names(cls: type) -> set[str]:
    """What ``cls`` itself defines, or assigns on ``self``."""
    return defined_names(cls) | self_attributes(cls, ast.Store)


def overlaps(cls: type) -> dict[str, type]:
    """The names ``cls`` defines or sets that its library also has: overrides, and the
    library's own attributes set by the project, each with the library class that has it."""
    owners = library_names(cls)
    return {name: owners[name] for name in project_names(cls) if name in owners}


def additions(cls: type) -> set[str]:
    """The names ``cls`` brings that its library does not have (yet)."""
    return project_names(cls) - set(library_names(cls))


def reads(cls: type) -> set[str]:
    """What the methods of ``cls`` read on ``self`` or ``super()`` that the project's classes
    do not define: the library must provide each one."""
    own = set().union(*(project_names(base) for base in project_bases(cls)))
    return {name for name in self_attributes(cls, ast.Load) - own if not is_dunder(name)}


def is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def replacements(cls: type) -> Iterator[str]:
    """The library methods ``cls`` overrides without calling the original: whatever the
    original does, the replacement must do itself."""
    for name, owner in overlaps(cls).items():
        method = vars(cls).get(name)
        if not inspect.isfunction(method) or not inspect.isfunction(vars(owner).get(name)):
            continue
        if name not in super_calls(method):
            yield name


def super_calls(function: object) -> set[str]:
    """The methods a function calls on ``super()``."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))  # type: ignore[arg-type]
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id == "super"
    }


def imported_names(module_name: str) -> dict[str, str]:
    """The names (not modules) a module imports from the libraries, each with its library."""
    module = importlib.import_module(module_name)
    tree = ast.parse(inspect.getsource(module))
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            library = node.module.split(".")[0]
            if library in LIBRARIES:
                for alias in node.names:
                    if not inspect.ismodule(getattr(module, alias.asname or alias.name)):
                        names[alias.name] = library
    return names


def relied_on() -> dict[str, set[str]]:
    """Every name of a library's that the adjustments override, set, read or import, by the
    library: what a release of that library may not rename."""
    names: dict[str, set[str]] = {library: set() for library in LIBRARIES}
    for cls in adjusted_classes():
        for name, owner in overlaps(cls).items():
            if not is_dunder(name):
                names[library_of(owner) or ""].add(name)
        owners = library_names(cls)
        for name in reads(cls):
            owner = owners.get(name)
            for library in [library_of(owner)] if owner else libraries_of(cls):
                names[library or ""].add(name)
    for module_name in ADJUSTMENT_MODULES:
        for name, library in imported_names(module_name).items():
            names[library].add(name)
    names.pop("", None)
    return names


def libraries_of(cls: type) -> list[str]:
    """The libraries ``cls`` derives from, nearest first: where a name it reads that no class
    statement shows (an attribute a library sets dynamically) can come from."""
    found: list[str] = []
    for base in library_bases(cls):
        library = library_of(base)
        if library and library not in found:
            found.append(library)
    return found
