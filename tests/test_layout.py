"""The package's shape, read from its source: which module may import which,
no import cycle, functions and classes short enough to read, and a command
line that parses without TensorFlow."""

import ast
import io
import json
import subprocess
import sys
import tokenize

from tests.conftest import REPO, checkout_env

PACKAGE = "keras_vae"
ROOT = REPO / PACKAGE

# The lower layers (the model, its parts, the data, the file formats) import
# nothing of the upper ones (training, distribution, evaluation, the command
# line, the TF1 comparison), not even through another module.
LOWER = ("keras_vae.model", "keras_vae.losses", "keras_vae.optimizers", "keras_vae.metrics",
         "keras_vae.replicas", "keras_vae.checks", "keras_vae._compat", "keras_vae.execution",
         "keras_vae.keras_model", "keras_vae.data", "keras_vae.saving")
UPPER = ("keras_vae.training", "keras_vae.distribute", "keras_vae.evaluation", "keras_vae.cli",
         "keras_vae.parity")

MAX_FUNCTION, EXPLAINED_FUNCTION, MAX_CLASS = 60, 80, 200


# The import graph.

def _module_name(path):
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules():
    """{module name: path} of every module of the package, packages included."""
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _is_package(name, modules):
    return (REPO / name.replace(".", "/") / "__init__.py") == modules.get(name)


def _imports(name, source, modules):
    """(line, imported module, as written) for each import of the package's
    modules in module `name`'s `source`, function-level ones included,
    relative ones resolved. `from P import n` imports `P.n` when that is a
    module, else `P` itself."""
    tree = ast.parse(source, filename=name)
    here = name if _is_package(name, modules) else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, f"import {alias.name}") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")[:len(here.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                written = f"from {'.' * node.level}{node.module or ''} import {alias.name}"
                sub = f"{base}.{alias.name}"
                found.append((node.lineno, sub if sub in modules else base, written))
    return [(line, target, written) for line, target, written in found
            if target == PACKAGE or target.startswith(PACKAGE + ".")]


def _ancestors(name):
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _graph():
    """{module: {imported module: line}}, and the imports of the root package
    (which re-exports the public names, so imports most of the package).

    Importing `keras_vae.a.b` runs `keras_vae/a/__init__.py` too: an edge to
    each such package, except the packages the importer is itself inside
    (already imported before it runs; the root is one of them)."""
    modules = _modules()
    graph, root_imports = {name: {} for name in modules}, []
    for name, path in modules.items():
        for line, target, written in _imports(name, path.read_text(), modules):
            if target == PACKAGE:
                root_imports.append(f"{path.relative_to(REPO)}:{line} {written}")
                continue
            inside = set(_ancestors(name)) | {name}
            for imported in [*_ancestors(target), target]:
                if imported not in inside and imported != PACKAGE:
                    graph[name].setdefault(imported, line)
    return graph, root_imports


def _cycles(graph):
    """One cycle (a list of modules, the first repeated last) per strongly
    connected component of `graph` that has one (Tarjan's algorithm)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_in(graph, component) for component in components]


def _cycle_in(graph, component):
    start = min(component)
    return _path(graph, start, lambda node: node == start, within=component, first_step=True)


def _path(graph, start, is_goal, within=None, first_step=False):
    """The shortest path from `start` to a module for which `is_goal` holds
    (breadth first), as a list of modules, or None; with `first_step`, `start`
    itself may be the goal (a cycle)."""
    parents, frontier = {}, [start]
    seen = set() if first_step else {start}
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(graph.get(node, ())):
                if within is not None and succ not in within:
                    continue
                if is_goal(succ):
                    path = [succ, node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return path[::-1]
                if succ not in seen:
                    seen.add(succ)
                    parents[succ] = node
                    following.append(succ)
        frontier = following
    return None


def _in(name, packages):
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_no_import_cycle_and_no_import_of_the_root_package():
    graph, root_imports = _graph()
    assert not root_imports, (
        "a module of the package imports the root package keras_vae, whose __init__ "
        "imports most of the package; import the module that defines the name instead:\n"
        + "\n".join(root_imports))
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_lower_layers_import_nothing_of_the_upper_ones():
    graph, _ = _graph()
    offences = []
    for name in sorted(n for n in graph if _in(n, LOWER)):
        path = _path(graph, name, lambda n: _in(n, UPPER))
        if path:
            offences.append(f"{path[-2]} -> {path[-1]} (line {graph[path[-2]][path[-1]]} of "
                            f"{path[-2]}), so {' -> '.join(path)}")
    assert not offences, "a lower layer imports an upper one:\n" + "\n".join(offences)


def test_the_graph_sees_function_level_submodule_and_relative_imports():
    """The graph's own check: a few edges it must have, and relative imports
    resolved as in keras_vae/data/__init__.py."""
    graph, _ = _graph()
    assert "keras_vae.training.run" in graph["keras_vae.cli.train"]  # inside run()
    assert "keras_vae.training" in graph["keras_vae.cli.train"]  # its package's __init__
    assert "keras_vae._compat" in graph["keras_vae.model"]  # from keras_vae import _compat
    assert "keras_vae.data" not in graph["keras_vae.data.batches"]  # its own package
    source = ("from . import idx\nfrom .idx import DataError\nfrom ..saving import atomic\n"
              "def f():\n    import keras_vae.evaluation.grid\n")
    targets = [target for _, target, _ in _imports("keras_vae.data", source, _modules())]
    assert targets == ["keras_vae.data.idx", "keras_vae.data.idx", "keras_vae.saving.atomic",
                       "keras_vae.evaluation.grid"], targets


def test_legacy_tf1_imports_nothing_of_keras_vae():
    found = []
    for path in sorted((REPO / "legacy_tf1").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            found += [f"{path.relative_to(REPO)}:{node.lineno} {n}" for n in names
                      if n == PACKAGE or n.startswith(PACKAGE + ".")]
    assert not found, "legacy_tf1 is the original, standing alone:\n" + "\n".join(found)


# Sizes.

def _comment_lines(source):
    """The line numbers of lines that are a `# Longer: <why>` comment."""
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if (token.type == tokenize.COMMENT and token.string.startswith("# Longer:")
                and token.string[len("# Longer:"):].strip()
                and not token.line[:token.start[1]].strip()):
            lines.add(token.start[0])
    return lines


def _definitions(tree):
    """(qualified name, node) of every function and class, nested ones included."""
    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                yield name, child
                yield from walk(child, name + ".")
            else:
                yield from walk(child, prefix)
    return list(walk(tree, ""))


def test_functions_and_classes_are_short():
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        source = path.read_text()
        explained = _comment_lines(source)
        for name, node in _definitions(ast.parse(source, filename=str(path))):
            length = node.end_lineno - node.lineno + 1  # from `def`/`class`, no decorators
            where = f"{path.relative_to(REPO)}:{node.lineno} {name} ({length} lines)"
            if isinstance(node, ast.ClassDef):
                if length > MAX_CLASS:
                    offenders.append(f"{where}: a class of over {MAX_CLASS}")
            elif length > EXPLAINED_FUNCTION:
                offenders.append(f"{where}: over {EXPLAINED_FUNCTION}")
            elif length > MAX_FUNCTION and not any(
                    node.lineno <= line <= node.end_lineno for line in explained):
                offenders.append(f"{where}: over {MAX_FUNCTION} without a '# Longer: <why>' "
                                 "comment line inside")
    assert not offenders, "too long:\n" + "\n".join(offenders)


# Parsing flags without TensorFlow.

NO_TENSORFLOW = """
import json, sys
import keras_vae_cli
keras_vae_cli._held_back("keras_vae")  # as the command does: the real __init__ imports TF
import keras_vae.cli
import keras_vae.training.config
from keras_vae.cli.flags import run_config
args = keras_vae.cli.build_parser().parse_args(["train", "--iters", "3"])
assert run_config(args).iters == 3, args
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))))
"""


def test_the_command_line_and_run_config_import_no_tensorflow():
    run = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, str(ROOT)], capture_output=True,
                         text=True, cwd=REPO, env=checkout_env(), timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    loaded = json.loads(run.stdout.strip().splitlines()[-1])
    assert "tensorflow" not in loaded and "keras" not in loaded, loaded
    assert not loaded, loaded
