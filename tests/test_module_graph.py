"""The package's shape: no module-level import cycle, the error tree a leaf, one list of public
names, and every caller that ``retry.TABLE`` says rides an answer out exists."""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import snapshot_resources
import snapshot_resources.testing
from snapshot_resources.agora import retry

PACKAGE = Path(snapshot_resources.__file__).resolve().parent

# The public API as it was when __all__ became derived from the export table: derived or not, it
# stays this list (a name added or dropped is a deliberate change of this test).
PUBLIC_API = [
    "AgoraApiError", "AgoraClient", "AgoraError", "Change", "ChangeKind", "EmulatorOptions",
    "EmulatorServer", "ExtensionParams", "LocalDirectory", "MissingExtraError", "NcsEvent",
    "NotificationBodyError", "NotificationError", "Problem", "ProviderSettings",
    "RecordingConfigArgsDict", "ReplayError", "S3Bucket", "SeenNotices", "SessionSpec",
    "SignatureError", "SnapshotBucketArgs", "SnapshotBucketComponent", "SnapshotConfigArgsDict",
    "SnapshotName", "SnapshotSession", "SnapshotSessionArgs", "SnapshotSessionProvider",
    "SnapshotSourceError", "SpecError", "SqliteTaskJournal", "StackSessionSpec", "StackSpec",
    "StorageConfigError", "StorageSpec", "StorageTarget", "StorageTargetArgsDict", "TaskJournal",
    "bring_your_own", "build_event", "build_rtc_token", "classify_change", "dedup_key", "deploy",
    "format_snapshot_name", "list_snapshots", "parse_event", "parse_session",
    "parse_snapshot_name", "parse_stack", "parse_storage", "provision_storage",
    "read_stack_config", "rules", "scan_snapshots", "session_problems", "sign_headers",
    "snapshot_file", "snapshot_pattern", "stack_problems", "storage_component_for",
    "storage_target", "storage_target_problems", "verify_signature",
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _top_level_imports(path: Path) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports a module runs when it is imported: at top level, and inside top-level ``if``
    and ``try`` blocks, but not under ``if TYPE_CHECKING`` and not inside functions."""
    pending: list[ast.stmt] = list(ast.parse(path.read_text()).body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
            pending.extend([*node.body, *node.orelse])
        elif isinstance(node, ast.Try):
            pending.extend([*node.body, *node.orelse, *node.finalbody])
            pending.extend(stmt for handler in node.handlers for stmt in handler.body)


def _imported(name: str, path: Path) -> set[str]:
    """The package's modules that ``name`` imports at import time (a ``from package import
    module`` counts as the module; a parent package run on the way is not an edge)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _top_level_imports(path):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*anchor, *([node.module] if node.module else [])])
        submodules = {f"{base}.{alias.name}" for alias in node.names} & MODULES.keys()
        found.update(submodules)
        if len(submodules) < len(node.names):
            found.add(base)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imported(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            child = next(edges, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_no_module_level_import_cycle() -> None:
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_the_graph_sees_relative_and_package_imports() -> None:
    assert "snapshot_resources.agora.errors" in GRAPH["snapshot_resources.agora.retry"]
    assert "snapshot_resources.storage.policies" in GRAPH["snapshot_resources.storage.base"]


def test_the_error_tree_imports_nothing_of_the_package() -> None:
    # Not even inside a function (httpx's _exceptions.py): retry.py decides, errors.py is decided.
    tree = ast.parse(MODULES["snapshot_resources.agora.errors"].read_text())
    own = [ast.unparse(node) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
           and (node.level or (node.module or "").startswith("snapshot_resources"))]
    assert own == []


def test_all_is_the_public_api_it_was() -> None:
    assert snapshot_resources.__all__ == PUBLIC_API


@pytest.mark.parametrize("package", [snapshot_resources, snapshot_resources.testing],
                         ids=lambda p: p.__name__)
def test_type_checkers_see_the_export_table(package: ModuleType) -> None:
    """The imports under ``if TYPE_CHECKING`` are the export table, name for name."""
    exports: dict[str, str] = package._EXPORTS
    renames: dict[str, str] = getattr(package, "_RENAMES", {})
    tree = ast.parse(Path(str(package.__file__)).read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If)
                 and ast.unparse(node.test) == "TYPE_CHECKING")
    seen: dict[str, str] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom)
        for alias in node.names:
            public = alias.asname or alias.name
            assert renames.get(public, public) == alias.name
            as_module = f"{node.module}.{alias.name}"  # ``from package import module as module``
            seen[public] = as_module if exports.get(public) == as_module else str(node.module)
    assert seen == exports


@pytest.mark.parametrize("row", [r for r in retry.TABLE if r.ridden_out_by],
                         ids=lambda r: f"{r.status[0]}-{r.code}")
def test_a_row_ridden_out_above_the_client_names_a_caller_that_handles_it(row: retry.Row) -> None:
    module_name, _, qualified = str(row.ridden_out_by).partition(":")
    caller: object = importlib.import_module(module_name)
    for part in qualified.split("."):
        caller = getattr(caller, part)
    assert callable(caller)
    assert f"except errors.{row.error.__name__}" in inspect.getsource(caller)
