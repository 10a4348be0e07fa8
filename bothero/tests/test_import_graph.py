"""Imports flow one way: the first-party import graph has no cycles, lazy imports inside functions included.

Views → services/selectors → models; tasks call services; services queue work
through a `queueing` module that finds tasks by name. A lazy import that hides a
cycle counts here like any other, so the test reads every `import` statement in
the source, wherever it is, rather than what happens to be imported at start-up.
"""

import ast
from pathlib import Path

from django.conf import settings

BASE = Path(settings.BASE_DIR)
APPS = ("accounts", "analytics", "bothero", "bots", "conversations", "knowledge", "webhooks")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(BASE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def first_party_modules() -> dict[str, Path]:
    """Every module of the apps except tests, test helpers and migrations (they may import anything)."""
    modules = {}
    for app in APPS:
        for path in (BASE / app).rglob("*.py"):
            parts = path.relative_to(BASE).parts
            if any(part in ("tests", "testing", "migrations") for part in parts):
                continue
            modules[_module_name(path)] = path
    return modules


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module → the first-party modules it imports (`from package import module` names the module)."""
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.add(submodule if submodule in modules else base)
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_first_party_import_graph_has_no_cycles():
    modules = first_party_modules()
    graph = import_graph(modules)
    # The graph sees what it should: module imports, names from modules, and imports inside functions.
    assert graph["knowledge.tasks"] >= {"knowledge.services", "knowledge.queueing"}
    assert graph["webhooks.tasks"] >= {"webhooks.sweep", "webhooks.dispatch", "webhooks.attempt"}
    assert "bothero.embedded_postgres" in graph["bothero.settings"]  # imported inside an `else:` block
    assert cycles(graph) == []


def test_a_cycle_through_a_lazy_import_is_found():
    graph = {"a.services": {"a.queueing"}, "a.queueing": {"a.tasks"}, "a.tasks": {"a.services"}, "a.models": set()}
    assert cycles(graph) == [["a.queueing", "a.services", "a.tasks"]]


def test_services_never_import_tasks():
    graph = import_graph(first_party_modules())
    offenders = [
        (name, target)
        for name, targets in graph.items()
        for target in targets
        if target.endswith(".tasks") and not name.endswith(".tasks")
    ]
    assert offenders == []


def test_services_build_no_payloads_and_only_webhooks_writes_the_outbox():
    """Event payloads come from each app's `events.py`; the outbox statement (`webhooks.sql`) is webhooks' own."""
    graph = import_graph(first_party_modules())
    services = {name for name in graph if name.endswith(".services") or ".services." in name}
    assert {"knowledge.services.ingestion", "bots.services", "conversations.services"} <= services
    assert [(name, target) for name in services for target in graph[name] if target.endswith(".serializers")] == []
    outside = [
        name for name, targets in graph.items() if "webhooks.sql" in targets and not name.startswith("webhooks.")
    ]
    assert outside == []
