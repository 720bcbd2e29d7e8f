"""bench/ is a package of benchmarks run as ``python -m bench.<name>`` (issue #14):
no ``sys.path`` edits, nothing imported from ``tests`` or by a sibling's bare
name, and each benchmark has a ``main``. Imports only: no benchmark runs here."""

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
# The benchmarks; the other modules of bench/ are their shared parts.
BENCHES = ("claim", "dashboard", "export", "ingest", "pages", "profile_ingest", "run_all", "trail")
MODULES = sorted(path.stem for path in BENCH.glob("*.py") if path.stem != "__init__")


def tree(name: str) -> ast.Module:
    path = BENCH / f"{name}.py"
    return ast.parse(path.read_text(), str(path))


def imports(module: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_bench_is_a_package():
    assert (BENCH / "__init__.py").exists()
    assert set(BENCHES) <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_no_sys_path_edits(name):
    edits = [
        node.lineno
        for node in ast.walk(tree(name))
        if isinstance(node, ast.Attribute)
        and node.attr == "path"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    ]
    assert edits == [], f"bench/{name}.py touches sys.path at lines {edits}"


@pytest.mark.parametrize("name", MODULES)
def test_imports_nothing_from_tests_nor_a_sibling_by_bare_name(name):
    imported = imports(tree(name))
    from_tests = sorted(n for n in imported if n.split(".")[0] == "tests")
    bare = sorted(n for n in imported if n.split(".")[0] in MODULES)
    assert from_tests == [], f"bench/{name}.py imports {from_tests}"
    assert bare == [], f"bench/{name}.py imports {bare}: import bench.<module>"


def runs_main_as_script(module: ast.Module) -> bool:
    """``if __name__ == "__main__":`` whose body calls ``main()``."""
    for node in module.body:
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name)
            and node.test.left.id == "__name__"
            and any(
                isinstance(c, ast.Constant) and c.value == "__main__" for c in node.test.comparators
            )
        ):
            return any(
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id == "main"
                for call in ast.walk(node)
            )
    return False


@pytest.mark.parametrize("name", BENCHES)
def test_each_bench_has_a_main_run_by_python_m(name):
    module = importlib.import_module(f"bench.{name}")
    assert callable(getattr(module, "main", None)), f"bench.{name} has no main()"
    assert runs_main_as_script(tree(name)), f"python -m bench.{name} would not call main()"


def test_percentile_is_written_once():
    defined = [
        name
        for name in MODULES
        for node in ast.walk(tree(name))
        if isinstance(node, ast.FunctionDef) and node.name == "percentile"
    ]
    assert defined == ["harness"]
