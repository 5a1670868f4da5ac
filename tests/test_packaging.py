"""Optional parts are extras; asking for one that is not installed names the extra."""

from __future__ import annotations

import configparser

import pytest

from monitor.errors import MissingExtra, import_optional

from .conftest import REPO


def extras() -> dict[str, set[str]]:
    config = configparser.ConfigParser(interpolation=None)
    config.read(REPO / "setup.cfg", encoding="utf-8")
    return {name: {line.strip() for line in value.splitlines() if line.strip()}
            for name, value in config["options.extras_require"].items()}


def test_all_is_every_optional_part():
    found = extras()
    optional = {name for name in found if name not in ("all", "test")}
    assert optional >= {"openai", "cluster", "documents"}
    assert found["all"] == set().union(*(found[name] for name in optional))


def test_every_requirement_is_pinned():
    config = configparser.ConfigParser(interpolation=None)
    config.read(REPO / "setup.cfg", encoding="utf-8")
    lines = config["options"]["install_requires"].splitlines() + [
        line for value in config["options.extras_require"].values() for line in value.splitlines()]
    assert all("==" in line for line in lines if line.strip()), lines


def test_a_missing_optional_package_names_its_extra():
    with pytest.raises(MissingExtra, match=r"pip install 'collection-call-monitor\[cluster\]'") as caught:
        import_optional("a_package_that_is_not_installed", "running on a Dask cluster", "cluster")
    assert "running on a Dask cluster" in str(caught.value)


def test_an_installed_optional_package_is_returned():
    assert import_optional("json", "anything", "all").dumps([1]) == "[1]"
