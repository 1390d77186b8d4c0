"""Settings (environment and `.env`) and the data tables shipped with joulebot."""

from joulebot.config.settings import Settings, SettingsError, get_settings

__all__ = ["Settings", "SettingsError", "get_settings"]
