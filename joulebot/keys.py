"""Every Redis key joulebot writes, in one place (RQ's own keys are RQ's).

Kept light to import: front ends and the worker both read it.
"""

from __future__ import annotations

PREFIX = "joulebot"
JOB_FUNCTION = "joulebot.worker.job.run_request"


def box_status_key(queue_name: str) -> str:
    """Where the worker says what the box is doing, for users whose jobs still wait."""
    return f"{PREFIX}:box-status:{queue_name}"


def alive_key(queue_name: str) -> str:
    """Present while the queue's measurement worker process lives (it refreshes it on a thread)."""
    return f"{PREFIX}:worker-alive:{queue_name}"


def box_lock_key(box_name: str) -> str:
    """Held by the one measurement worker of a box while its heartbeat lives."""
    return f"{PREFIX}:box-lock:{box_name}"


def refused_jobs_key(queue_name: str) -> str:
    """How many jobs the worker refused to run (not joulebot's job function)."""
    return f"{PREFIX}:refused-jobs:{queue_name}"


def catalog_key(queue_name: str) -> str:
    """The models the queue's worker can run now, as it last looked them up."""
    return f"{PREFIX}:catalog:{queue_name}"


def history_outbox_key(queue_name: str) -> str:
    """Results the history database could not take yet, oldest first."""
    return f"{PREFIX}:history-outbox:{queue_name}"


def deliveries_key(platform: str) -> str:
    """Answers a chat platform still owes its users (a hash by request id)."""
    return f"{PREFIX}:deliveries:{platform}"


def user_deliveries_key(platform: str, user_id: str) -> str:
    """The request ids one user still waits for on a platform (a set)."""
    return f"{deliveries_key(platform)}:user:{user_id}"


def answer_stream_key(request_id: str) -> str:
    """The answer so far while the worker generates it: a stream of what it grew by (answer_stream.py)."""
    return f"{PREFIX}:answer-stream:{request_id}"


def conversation_key(platform: str, chat_id: str, user_id: str) -> str:
    """A chat user's current conversation (JSON: conversation id, last exchange); expires when idle."""
    return f"{PREFIX}:conversation:{platform}:{chat_id}:{user_id}"


def box_profiles_key() -> str:
    """Every box's profile (a hash: box name -> JSON), written by its worker's heartbeat."""
    return f"{PREFIX}:box-profiles"


def box_seen_key() -> str:
    """When each box's heartbeat last beat (a hash: box name -> Redis server time, seconds)."""
    return f"{PREFIX}:box-seen"


def box_profile_versions_key() -> str:
    """How often each box's profile changed (a hash: box name -> counter), so readers skip unchanged ones."""
    return f"{PREFIX}:box-profile-versions"


def box_states_key() -> str:
    """What each box does now (a hash: box name -> idle, generating, cooling down (…), stopped, …)."""
    return f"{PREFIX}:box-states"


def box_queues_key() -> str:
    """The queue each box serves (a hash: box name -> queue name)."""
    return f"{PREFIX}:box-queues"


def commands_key(platform: str, queue_name: str) -> str:
    """The digest of the slash commands last registered with the platform (Discord: 200 a day)."""
    return f"{PREFIX}:{platform}:commands:{queue_name}"


def preferences_version_key(platform: str, owner: str) -> str:
    """Written anew whenever a user's choices (or a group chat's system prompt: owner `chat:<id>`) change,
    so that front ends know their copy is old (chat/preference_cache.py)."""
    return f"{PREFIX}:preferences-version:{platform}:{owner}"


def rate_key(platform: str, user_id: str, minute: int) -> str:
    """Prompts one user sent in one calendar minute (expires after two)."""
    return f"{PREFIX}:rate:{platform}:{user_id}:{minute}"


def idle_baseline_key(box_name: str, source: str) -> str:
    """The last idle baseline one meter (source) of one box measured, with its meter's identity."""
    return f"{PREFIX}:idle-baseline:{box_name}:{source}"


def shared_conversation_key(platform: str, chat_id: str) -> str:
    """A chat that is one conversation for everyone in it (a Discord thread the bot started):
    JSON with the exchange its next message continues from (none yet: `{}`)."""
    return f"{PREFIX}:shared-conversation:{platform}:{chat_id}"


def web_session_key(session_hash: str) -> str:
    """One web chat session (JSON: whom it asks as, its CSRF token, its units), by the SHA-256 of the
    cookie's value: what Redis holds cannot be replayed as a cookie. Expires when idle."""
    return f"{PREFIX}:web-session:{session_hash}"
