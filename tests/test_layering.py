"""The core stays free of Twisted and Buildbot, and imports point one way."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# package -> packages of ours it may import
ALLOWED = {
    "eventstore": {"eventstore"},
    "projections": {"projections", "eventstore"},
    "commands": {"commands", "projections", "eventstore"},
}
OURS = {"eventstore", "projections", "commands", "mastertrail"}
#: Packages that use the log only through eventstore's public names.
LOG_USERS = ("projections", "commands", "mastertrail", "bench")


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def private_log_imports(source: str, public: set[str]) -> list[str]:
    """The imports in ``source`` (a module's text) that reach past eventstore's public
    API: of its modules (``import eventstore.x``, ``from eventstore.x import ...``, ``from
    eventstore import x`` for a module x), or of a name ``eventstore.__all__`` does not
    list."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("eventstore.")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("eventstore."):
                found.append(f"{node.module} ({', '.join(a.name for a in node.names)})")
            elif node.module == "eventstore":
                found += [f"eventstore.{a.name}" for a in node.names if a.name not in public]
    return found


class TestLayering:
    def test_imports_point_one_way(self) -> None:
        """eventstore imports none of ours; projections only eventstore; commands not
        mastertrail."""
        for package, allowed in ALLOWED.items():
            for path in (ROOT / package).rglob("*.py"):
                ours = imported_roots(path) & OURS
                assert ours <= allowed, f"{path.relative_to(ROOT)} imports {ours - allowed}"

    def test_only_the_adapter_imports_twisted_or_buildbot(self) -> None:
        """No module but mastertrail/buildbot.py and the dashboard glue it loads
        (mastertrail/buildbot_dashboard.py) names twisted or buildbot in an import."""
        offenders = [
            str(path.relative_to(ROOT))
            for package in OURS
            for path in (ROOT / package).rglob("*.py")
            if imported_roots(path) & {"twisted", "buildbot"}
            and path
            not in (
                ROOT / "mastertrail" / "buildbot.py",
                ROOT / "mastertrail" / "buildbot_dashboard.py",
            )
        ]
        assert offenders == []

    def test_core_runs_with_twisted_and_buildbot_blocked(self, tmp_path: Path) -> None:
        """The core and the Registry import and work when twisted and buildbot cannot be
        imported at all."""
        script = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("twisted", "buildbot"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import eventstore, projections, commands, mastertrail, mastertrail.web, mastertrail.cli
from mastertrail import Registry
reg = Registry("sqlite:///{tmp_path}/core.sqlite", clock=lambda: 1000.0)
reg.upgrade()
assert reg.set_master_state(reg.find_master_id("a:b"), True) is True
assert not any(m.split(".")[0] in ("twisted", "buildbot") for m in sys.modules)
print("ok")
"""
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False
        )
        assert result.stdout.strip().endswith("ok"), result.stderr


class TestEventstoreApi:
    def test_every_public_name_exists(self) -> None:
        """Every name in eventstore.__all__ is defined by the package."""
        import eventstore

        assert [name for name in eventstore.__all__ if not hasattr(eventstore, name)] == []

    def test_others_import_only_public_names(self) -> None:
        """projections, commands, mastertrail and bench import the log's names from
        eventstore itself, never from its modules: how the log is stored stays inside."""
        import eventstore

        public = set(eventstore.__all__)
        offenders = [
            f"{path.relative_to(ROOT)}: {offence}"
            for package in LOG_USERS
            for path in sorted((ROOT / package).rglob("*.py"))
            for offence in private_log_imports(path.read_text(), public)
        ]
        assert offenders == []

    def test_the_rule_sees_every_form_of_private_import(self) -> None:
        """The check finds a submodule imported, a name from a submodule, a module named
        from the package, and a name the package does not make public."""
        source = (
            "import eventstore\n"
            "import eventstore.reads\n"
            "from eventstore.schema import events\n"
            "from eventstore import reads, append, _private\n"
        )
        assert private_log_imports(source, {"append"}) == [
            "eventstore.reads",
            "eventstore.schema (events)",
            "eventstore.reads",
            "eventstore._private",
        ]
