"""Every setting is documented in the README's settings table, and read from its
environment variable."""

from monitor import settings

from .conftest import REPO


def test_every_setting_is_documented_in_the_readme():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for setting in settings.SETTINGS:
        assert f"`{setting.env}`" in readme, setting.env


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("MONITOR_TIMEZONE", "Europe/Berlin")
    assert settings.get("timezone") == "Europe/Berlin"
    monkeypatch.delenv("MONITOR_TIMEZONE")
    assert settings.get("timezone") == "Asia/Shanghai"
