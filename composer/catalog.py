"""The assertion catalog: literal assertion calls found in template and SUT sources.

Antithesis reports assertions that were never hit because it catalogs them from
source; so does composer. ``catalog(paths)`` returns one ``antithesis_assert``-shaped
dict (``hit: False``) per call with a literal message, which ``PropertyTable`` takes
to report never-hit ``sometimes``/``reachable``/``always`` as unreached.

Python is read with ``ast`` (calls through ``sdk``, ``sdk.assertions`` or any
``*.assertions`` module such as ``antithesis.assertions``, under any alias); Go, Java
and Rust with small patterns over the official SDKs' call forms. Unreadable or
unparsable files are skipped: user code never makes this raise.

Imports the standard library only (no other composer module).
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path
from typing import Iterable, Iterator

from composer_sdk.assertions import ASSERTION_KINDS

__all__ = ["catalog"]

# canonical function -> (display_type, message position); the kind's assert_type and
# must_hit come from the SDK's table
_FUNCTIONS: dict[str, tuple[str, int]] = {
    "always": ("Always", 1),
    "always_or_unreachable": ("AlwaysOrUnreachable", 1),
    "sometimes": ("Sometimes", 1),
    "reachable": ("Reachable", 0),
    "unreachable": ("Unreachable", 0),
    "always_some": ("Always", 1),
    "sometimes_all": ("Sometimes", 1),
}
for _cmp in ("greater_than", "greater_than_or_equal_to", "less_than", "less_than_or_equal_to"):
    _FUNCTIONS[f"always_{_cmp}"] = ("Always", 2)
    _FUNCTIONS[f"sometimes_{_cmp}"] = ("Sometimes", 2)

_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages", "venv", "env"}
_MAX_BYTES = 4_000_000  # larger files are generated or data, not assertion sites


def catalog(paths: Iterable[Path]) -> list[dict]:
    """Return a ``hit: False`` assertion entry for every literal assertion call under ``paths``.

    Directories are walked recursively, skipping hidden ones (``.git``,
    ``.composer``, ``.venv``), ``__pycache__`` and virtualenvs. Entries come in path
    then line order; the same message at two call sites gives two entries.
    """
    found: list[dict] = []
    for path in paths:
        for file in _files(Path(path)):
            try:
                found.extend(_scan(file))
            except Exception:  # never let a user's source break a run
                continue
    return found


def _files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(
            d for d in dirs
            if not d.startswith(".") and d not in _SKIP_DIRS
            and not os.path.exists(os.path.join(dirpath, d, "pyvenv.cfg"))
        )
        for name in sorted(files):
            yield Path(dirpath, name)


def _scan(file: Path) -> list[dict]:
    suffix = file.suffix
    if suffix != ".py" and suffix not in _PATTERNS and (suffix or not _python_shebang(file)):
        return []
    if file.stat().st_size > _MAX_BYTES:
        return []
    text = file.read_bytes().decode("utf-8", "replace")
    if suffix in _PATTERNS:
        return _scan_pattern(text, str(file), _PATTERNS[suffix])
    return _scan_python(text, str(file))


def _python_shebang(file: Path) -> bool:
    """Whether an extensionless file (a driver command) is a Python script."""
    with open(file, "rb") as fh:
        first = fh.readline(256)
    return first.startswith(b"#!") and b"python" in first


def _entry(name: str, message: str, file: str, line: int, function: str = "", klass: str = "") -> dict:
    """One catalog entry, shaped as the official SDK's ``hit: false`` declaration."""
    display_type, _ = _FUNCTIONS[name]
    assert_type, must_hit = ASSERTION_KINDS[display_type]
    return {
        "condition": False,
        "must_hit": must_hit,
        "hit": False,
        "id": message,
        "message": message,
        "display_type": display_type,
        "assert_type": assert_type,
        "location": {"file": file, "function": function, "class": klass, "begin_line": line, "begin_column": 0},
    }


# --- Python -------------------------------------------------------------------------

#: composer's SDK package (drivers ``import composer_sdk as sdk``), and the flat ``sdk``
#: name an older driver or a user's own wrapper may give it
_SDK_PACKAGES = ("composer_sdk", "sdk")


def _is_assertions_module(module: str) -> bool:
    return module in (*_SDK_PACKAGES, "assertions") or module.endswith(".assertions")


class _Visitor(ast.NodeVisitor):
    """Tracks imports of the assertion functions, then records calls with literal messages."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.found: list[dict] = []
        self.modules: set[str] = set()  # dotted names that refer to an assertions module
        self.functions: dict[str, str] = {}  # local name -> canonical function
        self.function = Path(file).stem
        self.klass = ""

    def note_import(self, node: ast.Import) -> None:
        for alias in node.names:
            if _is_assertions_module(alias.name):
                # "import antithesis.assertions" binds the dotted name; "as x" binds x
                self.modules.add(alias.asname or alias.name)
            top = alias.name.split(".")[0]
            if alias.asname is None and top in _SDK_PACKAGES:
                self.modules.add(top)  # "import composer_sdk.assertions" binds composer_sdk too

    def note_import_from(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        for alias in node.names:
            if _is_assertions_module(module) and alias.name in _FUNCTIONS:
                self.functions[alias.asname or alias.name] = alias.name
            elif _is_assertions_module(module) and alias.name == "*":
                self.functions.update((name, name) for name in _FUNCTIONS)
            elif _is_assertions_module(f"{module}.{alias.name}" if module else alias.name):
                self.modules.add(alias.asname or alias.name)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        outer, self.klass = self.klass, node.name
        self.generic_visit(node)
        self.klass = outer

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        outer, self.function = self.function, node.name
        self.generic_visit(node)
        self.function = outer

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node: ast.Call) -> None:
        name = self._canonical(node.func)
        if name is not None:
            message = _literal_message(node, _FUNCTIONS[name][1])
            if message is not None:
                self.found.append(_entry(name, message, self.file, node.lineno, self.function, self.klass))
        self.generic_visit(node)

    def _canonical(self, func: ast.expr) -> str | None:
        if isinstance(func, ast.Name):
            return self.functions.get(func.id)
        if isinstance(func, ast.Attribute) and func.attr in _FUNCTIONS:
            owner = _dotted(func.value)
            if owner is not None and owner in self.modules:
                return func.attr
        return None


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _literal_message(node: ast.Call, position: int) -> str | None:
    for keyword in node.keywords:
        if keyword.arg == "message":
            value = keyword.value
            return value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else None
    if any(isinstance(arg, ast.Starred) for arg in node.args[: position + 1]) or position >= len(node.args):
        return None
    value = node.args[position]
    return value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else None


def _scan_python(text: str, file: str) -> list[dict]:
    try:
        tree = ast.parse(text, filename=file)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    visitor = _Visitor(file)
    for node in ast.walk(tree):  # imports first: one inside a function still counts
        if isinstance(node, ast.Import):
            visitor.note_import(node)
        elif isinstance(node, ast.ImportFrom):
            visitor.note_import_from(node)
    visitor.visit(tree)
    return visitor.found


# --- Go, Java, Rust -----------------------------------------------------------------

_NAMES = sorted(_FUNCTIONS, key=len, reverse=True)  # longest first, so alternation is greedy
_CAMEL = ["".join(w.capitalize() for w in n.split("_")) for n in _NAMES]
_PATTERNS = {
    # assert.Always(cond, "msg", details) / assert.Reachable("msg", details)
    ".go": re.compile(rf"\bassert\.({'|'.join(_CAMEL)})\s*\("),
    # Assert.always(cond, "msg", details)
    ".java": re.compile(rf"\bAssert\.({'|'.join(c[0].lower() + c[1:] for c in _CAMEL)})\s*\("),
    # assert_always!(cond, "msg", &details) / assert_reachable!("msg")
    ".rs": re.compile(rf"\bassert_({'|'.join(_NAMES)})!\s*\("),
}
_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


def _scan_pattern(text: str, file: str, pattern: re.Pattern) -> list[dict]:
    found = []
    for match in pattern.finditer(text):
        name = _SNAKE.sub("_", match.group(1)).lower()
        if name not in _FUNCTIONS:
            continue
        args = _split_args(text, match.end())
        position = _FUNCTIONS[name][1]
        if position < len(args):
            message = _string_literal(args[position])
            if message is not None:
                found.append(_entry(name, message, file, text.count("\n", 0, match.start()) + 1))
    return found


def _split_args(text: str, start: int, limit: int = 4000) -> list[str]:
    """Top-level comma-separated arguments of a call whose ``(`` ends just before ``start``."""
    args, depth, quote, i, begin = [], 0, "", start, start
    end = min(len(text), start + limit)
    while i < end:
        ch = text[i]
        if quote:
            if ch == "\\" and quote != "`":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                args.append(text[begin:i])
                return args
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(text[begin:i])
            begin = i + 1
        i += 1
    return args  # unterminated: what was read


def _string_literal(arg: str) -> str | None:
    """The value of a plain ``"..."`` (or Go raw ``` `...` ```) literal argument, else None."""
    arg = arg.strip()
    if len(arg) >= 2 and arg[0] == arg[-1] == "`":
        return arg[1:-1]
    if len(arg) >= 2 and arg[0] == arg[-1] == '"':
        try:
            value = json.loads(arg)
        except ValueError:
            return arg[1:-1]
        return value if isinstance(value, str) else None
    return None
