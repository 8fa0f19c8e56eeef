"""The apps build on each other one way: accounts <- notifications <- rooms <- {ticketing, moderation}.

Every module of every app is parsed and each import it makes, at module level or inside a function,
is checked against that order. A lower app lets a higher one react through hooks and signals
(docs/architecture.md), never by importing it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# An app may import itself and the apps listed for it, nothing else of the project's.
MAY_IMPORT = {
    "accounts": set(),
    "notifications": {"accounts"},
    "rooms": {"accounts", "notifications"},
    "ticketing": {"accounts", "notifications", "rooms"},
    "moderation": {"accounts", "notifications", "rooms"},
}
# Project packages that no app may import: `spaces_project` wires the apps together, so it sits above them.
ABOVE_EVERY_APP = {"spaces_project"}


def imported_packages(source: str, *, module: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in `source`, wherever it stands; relative imports
    are resolved against `module` (dotted)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".")[: -node.level]
                target = ".".join([*package, node.module] if node.module else package)
            else:
                target = node.module or ""
            found.append((node.lineno, target.split(".")[0]))
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            found.append((node.lineno, node.args[0].value.split(".")[0]))
    return sorted(found)


def _is_dynamic_import(node: ast.Call) -> bool:
    """`import_module("x.y")` / `import_string("x.y")` / `__import__("x")` with a literal name."""
    name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
    return (
        name in {"import_module", "import_string", "__import__"}
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def violations(app: str, source: str, module: str) -> list[str]:
    project = set(MAY_IMPORT) | ABOVE_EVERY_APP
    allowed = MAY_IMPORT[app] | {app}
    return [
        f"{module}:{line} imports {package}"
        for line, package in imported_packages(source, module=module)
        if package in project and package not in allowed
    ]


def app_modules(app: str):
    for path in sorted((ROOT / app).rglob("*.py")):
        relative = path.relative_to(ROOT).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1] + ["__init__"]  # relative imports resolve from the package itself
        yield path, ".".join(parts)


@pytest.mark.parametrize("app", list(MAY_IMPORT))
def test_an_app_imports_only_itself_and_the_apps_below_it(app):
    found = []
    for path, module in app_modules(app):
        found += violations(app, path.read_text(), module)
    assert found == [], "imports against the layer order:\n" + "\n".join(found)


def test_the_check_sees_imports_inside_functions_and_relative_ones():
    source = (
        "import accounts.models\n"
        "from notifications import services\n"
        "def later():\n"
        "    from ticketing.selectors import x\n"
        "    import moderation\n"
        "class Thing:\n"
        "    def method(self):\n"
        "        from ...ticketing import y\n"
        "hook = import_string('moderation.services.audit')\n"
    )
    assert violations("rooms", source, "rooms.sub.module") == [
        "rooms.sub.module:4 imports ticketing",
        "rooms.sub.module:5 imports moderation",
        "rooms.sub.module:8 imports ticketing",
        "rooms.sub.module:9 imports moderation",
    ]
    assert violations("accounts", "from spaces_project.settings import X\n", "accounts.x") == [
        "accounts.x:1 imports spaces_project"
    ]
    assert violations("ticketing", source, "ticketing.views") == [
        "ticketing.views:5 imports moderation",
        "ticketing.views:9 imports moderation",
    ]


def test_a_package_init_resolves_relative_imports_from_itself():
    assert imported_packages("from . import engine\n", module="rooms.captions.__init__") == [(1, "rooms")]


def test_no_model_points_at_a_model_of_an_app_above_its_own():
    """The schema follows the layers too: a relation from a lower app to a higher one would make the
    lower app's tables (and migrations) need the higher app's."""
    from django.apps import apps

    found = []
    for model in apps.get_models():
        app = model._meta.app_label  # Options is Django's public model API (the `_meta` API)
        if app not in MAY_IMPORT:
            continue
        for field in model._meta.get_fields():
            target = field.related_model
            if not field.is_relation or target is None or not (field.many_to_one or field.one_to_one):
                continue
            if field.auto_created:  # the reverse side of a relation another model declares
                continue
            other = target._meta.app_label
            if other in MAY_IMPORT and other != app and other not in MAY_IMPORT[app]:
                found.append(f"{model.__name__}.{field.name} -> {other}.{target.__name__}")
    assert found == []
