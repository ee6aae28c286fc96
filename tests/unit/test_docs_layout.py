"""The docs' shape, without a database: the README stays a short front door whose links resolve,
every page is in mkdocs.yml's nav, every setting the code reads is documented, and the blocks
marked for tests/integration/test_docs_commands.py are well formed. (`make docs` builds the site
in strict mode, which checks the links and anchors between pages.)"""

from __future__ import annotations

import re

import yaml

from docs_blocks import DOCS, ROOT, all_marked_commands

README_MAX_LINES = 250
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _mkdocs_config() -> dict:
    """mkdocs.yml as mkdocs reads it; ``!!python/name:`` tags are kept as their dotted names."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/name:", lambda _loader, suffix, _node: suffix)
    return yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)


def _nav_pages(nav) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in _nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    return []


def test_readme_is_a_front_door_under_250_lines():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) < README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_readme_links_resolve_to_files():
    targets = LINK.findall((ROOT / "README.md").read_text())
    local = [t.split("#", 1)[0] for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    assert local, "the README links into docs/"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_every_docs_page_is_in_the_nav_and_every_nav_entry_exists():
    config = _mkdocs_config()
    assert config["strict"] is True and config["docs_dir"] == "docs"
    assert set(config["validation"].values()) == {"warn"}, "strict mode turns these warnings into failures"
    nav = _nav_pages(config["nav"])
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(set(pages) - set(nav)) == [], "pages missing from mkdocs.yml's nav"
    assert sorted(set(nav) - set(pages)) == [], "nav entries without a page"
    assert len(nav) == len(set(nav)), "a page is twice in the nav"


def test_every_setting_the_code_reads_is_in_the_configuration_reference():
    code = (ROOT / "include" / "models_core" / "settings.py").read_text()
    read = set(re.findall(r"conf\.get\w*\(\s*SECTION,\s*\"(\w+)\"", code))
    page = (DOCS / "reference" / "configuration.md").read_text()
    rows = [line.split("|")[1] for line in page.splitlines() if line.startswith("| `")]
    documented = {key for row in rows for key in re.findall(r"`(\w+)`", row)}
    assert read, 'settings.py reads its settings as conf.get*(SECTION, "key")'
    assert sorted(read - documented) == [], "settings read by the code but missing from the reference"
    assert sorted(documented - read) == [], "settings documented but never read"


def test_marked_doc_commands_are_well_formed():
    commands = all_marked_commands()  # raises on a marker without a bash block, or an unknown marker
    assert len(commands) >= 10
    for command in commands:
        assert "export AIRFLOW_HOME" not in command.script, f"{command}: the test sets the Airflow home"
