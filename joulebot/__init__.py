"""joulebot: every LLM answer comes with its energy bill."""

__version__ = "0.1.0"
