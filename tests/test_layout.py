"""The package's layout, as rules a test can hold: one home a concern, no cycles, no reach-ins.

Every ``import`` of every module under ``src/unrolled`` (those inside functions too) is
read from its source, resolved to the module it loads, and checked:

- no import cycle among the package's modules;
- no module takes a ``_private`` name from another module (``from m import _x``, or
  ``m._x`` through an imported module), except between modules of ``engine/``;
- the engine imports no model, block, task, estimator, file format or command line;
  ``models/`` and ``blocks.py`` import nothing from ``io.py``, ``tasks/`` or ``cli.py``;
- in the engine no function is longer than 80 lines and no class longer than 400.
"""

import ast
import os

import pytest

import unrolled

ROOT = os.path.dirname(os.path.abspath(unrolled.__file__))
PACKAGE = "unrolled"


def _modules():
    """module name -> (path, parsed tree) of every module of the package."""
    found = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            module = ".".join([PACKAGE] + parts)
            with open(path, encoding="utf-8") as f:
                found[module] = (path, ast.parse(f.read(), path))
    return found


MODULES = _modules()


def _is_package(module):
    return MODULES[module][0].endswith("__init__.py")


def _imports(module):
    """``(target module, names taken from it, line)`` for every import in ``module``, and
    the private attributes read through names bound to imported modules."""
    tree = MODULES[module][1]
    here = module if _is_package(module) else module.rpartition(".")[0]
    out, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    out.append((alias.name, [], node.lineno))
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == PACKAGE:
                target = node.module
            else:
                continue
            names = []
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:                      # ``from pkg import module``
                    out.append((sub, [], node.lineno))
                    aliases[alias.asname or alias.name] = sub
                else:
                    names.append(alias.name)
            if names:
                out.append((target, names, node.lineno))
    private_reads = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            private_reads.append((aliases[node.value.id], node.attr, node.lineno))
    return out, private_reads


def _in(module, *prefixes):
    return any(module == f"{PACKAGE}.{p}" or module.startswith(f"{PACKAGE}.{p}.") for p in prefixes)


def test_no_import_cycle():
    graph = {m: sorted({t for t, _, _ in _imports(m)[0] if t in MODULES and t != m}) for m in MODULES}
    state, path = {}, []

    def visit(m):
        state[m] = 1
        path.append(m)
        for t in graph[m]:
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(t):] + [t]))
            if t not in state:
                visit(t)
        path.pop()
        state[m] = 2

    for m in sorted(MODULES):
        if m not in state:
            visit(m)


def test_no_private_name_crosses_modules_outside_the_engine():
    bad = []
    for m in MODULES:
        imports, reads = _imports(m)
        taken = [(t, n, line) for t, names, line in imports for n in names if n.startswith("_")]
        for target, name, line in taken + reads:
            if not (_in(m, "engine") and _in(target, "engine")):
                bad.append(f"{m}:{line} takes {name} from {target}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("layer,forbidden", [
    ("engine", ("models", "blocks", "columns", "tasks", "cli", "io", "estimators", "interop", "train", "optim",
                "divergences", "generate", "analysis", "datasets")),
    ("models", ("io", "tasks", "cli", "estimators")),
    ("blocks", ("io", "tasks", "cli", "estimators", "models")),
])
def test_nothing_imports_upward(layer, forbidden):
    bad = [f"{m}:{line} imports {t}" for m in MODULES if _in(m, layer)
           for t, _, line in _imports(m)[0] if _in(t, *forbidden)]
    assert not bad, "\n".join(bad)


def test_the_engine_reads_in_pieces_a_newcomer_can_hold():
    long = []
    for m, (path, tree) in MODULES.items():
        if not _in(m, "engine"):
            continue
        for node in ast.walk(tree):
            limit = {ast.FunctionDef: 80, ast.ClassDef: 400}.get(type(node))
            if limit and node.end_lineno - node.lineno + 1 > limit:
                long.append(f"{m}.{node.name}: {node.end_lineno - node.lineno + 1} lines (at most {limit})")
    assert not long, "\n".join(long)


def test_the_rules_see_the_imports_they_check():
    """The reader finds relative imports, imports inside functions and module-level ones."""
    imports, _ = _imports("unrolled.engine.network")
    targets = {t for t, _, _ in imports}
    assert {"unrolled.engine.reference", "unrolled.engine.fast", "unrolled.engine.program",
            "unrolled._checks", "unrolled.registry"} <= targets
    assert "unrolled.engine.kernels.compiled" in {t for t, _, _ in _imports("unrolled.engine.backend")[0]}
