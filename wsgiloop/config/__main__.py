"""``python -m wsgiloop.config > docs/settings.md``: print the settings reference."""

from .docs import render_settings_doc

print(render_settings_doc(), end="")
