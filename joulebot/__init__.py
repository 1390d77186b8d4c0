"""joulebot: every LLM answer comes with its energy bill."""

import os

__version__ = "0.1.0"

# Pydantic looks for plugins (observability hooks; joulebot uses none) in every installed
# distribution's entry points when the first model class is made: 5-20 ms of each `joulebot ask`
# and every start. Set PYDANTIC_DISABLE_PLUGINS="" to have them found again.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
