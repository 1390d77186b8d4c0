"""`joulebot keys`: the OpenAI-compatible API's keys. A key is printed once, when it is made; the
history database keeps only its hash."""

from __future__ import annotations

from joulebot.cli.console import fail, say
from joulebot.cli.store import open_store
from joulebot.config import get_settings


def keys_create(name: str) -> None:
    """Print a new key for NAME (once); requests with it are the user api:NAME."""
    from joulebot.history.api_keys import KeyNameError, create_key

    store = open_store(get_settings())
    try:
        key = create_key(store.engine, name)
    except KeyNameError as exc:
        raise fail(str(exc), 2) from None
    if key is None:
        raise fail(f"{name} already has a key that works; `joulebot keys revoke {name}` first to replace it", 2)
    say(key)
    say(f"the key of {name} (user api:{name}); it is shown only now: keep it where the client reads it", stderr=True)


def keys_list() -> None:
    """Every key's name, when it was made, and whether it was revoked (never a key)."""
    from joulebot.history.api_keys import list_keys

    keys = list_keys(open_store(get_settings()).engine)
    if not keys:
        say("no API keys yet (joulebot keys create NAME)")
    for key in keys:
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M} UTC" if key.revoked_at else "works"
        say(f"{key.name} · made {key.created_at:%Y-%m-%d %H:%M} UTC · {state}")


def keys_revoke(name: str) -> None:
    """Stop NAME's key from working at once; its history stays (joulebot history --forget api:NAME)."""
    from joulebot.history.api_keys import revoke_key

    if not revoke_key(open_store(get_settings()).engine, name):
        raise fail(f"{name} has no key that works (joulebot keys list)", 2)
    say(f"revoked the key of {name}")
