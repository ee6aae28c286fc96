"""discover_models on small throw-away packages written under tmp_path."""

from __future__ import annotations

import importlib
import itertools
import sys
import textwrap

import pytest

from models_core.discovery import Discovery, ModelClass, discover_models, import_model_class, package_files
from models_core.errors import DuplicateModelIdError
from models_core.model import BaseDetectionModel

_counter = itertools.count()


@pytest.fixture
def make_package(tmp_path, monkeypatch):
    """Write a package of ``{relative_path: source}`` under tmp_path; return its unique name."""
    created: list[str] = []
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(files: dict[str, str]) -> str:
        name = f"discovery_pkg_{next(_counter)}_{tmp_path.name.replace('-', '_')}"
        root = tmp_path / name
        root.mkdir()
        (root / "__init__.py").write_text("")
        for relative, source in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        created.append(name)
        return name

    yield make
    for name in created:
        for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
            del sys.modules[module]


MODEL = """
from models_core import BaseDetectionModel

class {cls}(BaseDetectionModel):
    model_id = "{model_id}"
    depends_on = {depends_on!r}
"""


def model_source(cls: str, model_id: str, depends_on: list[str] | None = None) -> str:
    return MODEL.format(cls=cls, model_id=model_id, depends_on=depends_on or [])


def test_discovers_classes_in_submodules_and_nested_packages(make_package):
    pkg = make_package(
        {
            "ingest.py": model_source("Ingest", "ingest"),
            "scoring.py": model_source("Score", "score", ["ingest"]),
            "nested/__init__.py": "",
            "nested/deep.py": model_source("Deep", "deep", ["score", "ingest"]),
        }
    )
    found = discover_models(pkg)
    assert isinstance(found, Discovery)
    assert found.import_errors == ()
    assert list(found.classes) == ["deep", "ingest", "score"]
    assert found.classes["ingest"] == ModelClass("ingest", f"{pkg}.ingest:Ingest", ())
    assert found.classes["score"] == ModelClass("score", f"{pkg}.scoring:Score", ("ingest",))
    assert found.classes["deep"] == ModelClass("deep", f"{pkg}.nested.deep:Deep", ("score", "ingest"))


def test_classes_without_model_id_and_reexports_are_not_collected(make_package):
    pkg = make_package(
        {
            "base.py": """
            from models_core import BaseDetectionModel

            class SharedBase(BaseDetectionModel):
                pass

            class NotAModel:
                model_id = "nope"
        """,
            "concrete.py": """
            from .base import SharedBase

            class Concrete(SharedBase):
                model_id = "concrete"
        """,
            "reexport.py": "from .concrete import Concrete\n",
        }
    )
    found = discover_models(pkg)
    assert found.classes == {"concrete": ModelClass("concrete", f"{pkg}.concrete:Concrete", ())}


def test_model_in_package_init_is_discovered(make_package):
    pkg = make_package({"sub/__init__.py": model_source("InInit", "in_init")})
    found = discover_models(pkg)
    assert found.classes["in_init"].class_path == f"{pkg}.sub:InInit"


def test_duplicate_model_id_raises_naming_both_classes(make_package):
    pkg = make_package(
        {
            "first.py": model_source("First", "same_id"),
            "second.py": model_source("Second", "same_id"),
        }
    )
    with pytest.raises(DuplicateModelIdError) as info:
        discover_models(pkg)
    message = str(info.value)
    assert f"{pkg}.first:First" in message
    assert f"{pkg}.second:Second" in message
    assert "'same_id'" in message


def test_duplicate_model_id_is_also_a_value_error(make_package):
    pkg = make_package(
        {
            "a.py": model_source("A", "dup") + model_source("B", "dup"),
        }
    )
    with pytest.raises(ValueError, match="dup"):
        discover_models(pkg)


def test_module_that_fails_to_import_is_reported_and_other_models_still_load(make_package):
    pkg = make_package(
        {
            "good.py": model_source("Good", "good"),
            "broken.py": "import this_module_does_not_exist_anywhere\n",
            "exploding.py": "raise RuntimeError('boom at import')\n",
            "zz_last.py": model_source("Last", "last"),
        }
    )
    found = discover_models(pkg)
    assert sorted(found.classes) == ["good", "last"]
    assert len(found.import_errors) == 2
    broken = next(e for e in found.import_errors if f"{pkg}.broken" in e)
    exploding = next(e for e in found.import_errors if f"{pkg}.exploding" in e)
    assert "ModuleNotFoundError" in broken
    assert "RuntimeError" in exploding and "boom at import" in exploding


def test_subpackage_that_fails_to_import_is_reported_and_other_models_still_load(make_package):
    pkg = make_package(
        {
            "good.py": model_source("Good", "good"),
            "badpkg/__init__.py": "raise RuntimeError('broken package')\n",
        }
    )
    found = discover_models(pkg)
    assert list(found.classes) == ["good"]
    assert len(found.import_errors) == 1
    assert f"{pkg}.badpkg" in found.import_errors[0]


def test_import_model_class_round_trips_the_class_path(make_package):
    pkg = make_package(
        {
            "ingest.py": model_source("Ingest", "ingest"),
            "nested/__init__.py": "",
            "nested/deep.py": model_source("Deep", "deep"),
        }
    )
    found = discover_models(pkg)
    for model_id, model_class in found.classes.items():
        loaded = import_model_class(model_class.class_path)
        assert isinstance(loaded, type) and issubclass(loaded, BaseDetectionModel)
        assert loaded.model_id == model_id
        assert f"{loaded.__module__}:{loaded.__qualname__}" == model_class.class_path


def test_import_model_class_resolves_nested_qualname(make_package):
    pkg = make_package(
        {
            "holder.py": """
            from models_core import BaseDetectionModel

            class Outer:
                class Inner(BaseDetectionModel):
                    model_id = "inner"
        """,
        }
    )
    loaded = import_model_class(f"{pkg}.holder:Outer.Inner")
    assert loaded.model_id == "inner"


def test_discovering_a_missing_package_raises_module_not_found():
    with pytest.raises(ModuleNotFoundError):
        discover_models("no_such_models_package_for_discovery_tests")


def test_a_process_rediscovers_a_package_only_when_its_files_change_or_a_module_failed(make_package, tmp_path):
    pkg = make_package({"a.py": model_source("A", "a")})
    root = tmp_path / pkg
    first = discover_models(pkg)
    assert discover_models(pkg) is first  # the files are those it was made from: kept

    (root / "b.py").write_text(textwrap.dedent(model_source("B", "b")))
    importlib.invalidate_caches()
    added = discover_models(pkg)
    assert list(added.classes) == ["a", "b"]
    (root / "b.py").unlink()
    assert list(discover_models(pkg).classes) == ["a"]  # removed: gone, though b was imported

    (root / "c.py").write_text("raise RuntimeError('not yet')\n")
    importlib.invalidate_caches()
    broken = discover_models(pkg)
    assert len(broken.import_errors) == 1
    again = discover_models(pkg)  # never kept: each call tries the module again
    assert again is not broken and len(again.import_errors) == 1
    (root / "c.py").write_text(textwrap.dedent(model_source("C", "c")))
    assert list(discover_models(pkg).classes) == ["a", "c"]


def test_modules_behind_a_symlinked_folder_count_and_a_dangling_file_is_no_error(make_package, tmp_path):
    pkg = make_package({"a.py": model_source("A", "a")})
    root = tmp_path / pkg
    (root / ".#a.py").symlink_to(tmp_path / "nowhere")  # an editor's lock file: a dangling link
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "__init__.py").write_text("")
    (root / "linked").symlink_to(elsewhere)
    assert list(discover_models(pkg).classes) == ["a"]

    (elsewhere / "b.py").write_text(textwrap.dedent(model_source("B", "b")))
    importlib.invalidate_caches()
    assert list(discover_models(pkg).classes) == ["a", "b"]  # found through the link: rediscovered

    (elsewhere / "loop").symlink_to(elsewhere)  # a link back up the tree: each real folder listed once
    listed = [path.removeprefix(str(root)) for path, _size, _mtime in package_files(pkg)]
    assert listed == ["/__init__.py", "/a.py", "/linked/__init__.py", "/linked/b.py"]
