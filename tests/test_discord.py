"""The Discord commands with test interaction objects, the real queue, worker and SmolLM2 behind them.

dpytest cannot simulate slash commands; the callbacks are awaited with an object that
records what the bot sent, as discord.py's Interaction would carry it to Discord.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from discord_interactions import RecordedInteraction, run
from waiting import day_start

from joulebot.chat.discord_bot import ChannelTarget, DiscordBot, WebhookTarget
from joulebot.history import HistoryStore
from joulebot.queueing.deliveries import Delivery

pytestmark = pytest.mark.e2e


@pytest.fixture
def bot(embedded):
    return DiscordBot(embedded)


def test_ask_defers_at_once_and_answers_with_the_footer_in_an_embed(bot, embedded):
    interaction = run(bot, "ask", RecordedInteraction(601), prompt="What is a joule?")
    names = [name for name, _ in interaction.log.calls]
    assert names[0] == "defer" and interaction.named("defer")[0]["thinking"] is True
    final = interaction.named("edit")[-1]
    (embed,) = final["embeds"]
    assert embed.description and "J total" in embed.footer.text and "estimated" in embed.footer.text
    assert final["allowed_mentions"].everyone is False
    (row,) = HistoryStore.open(embedded.sqlalchemy_url).recent("discord", "601")
    assert row.answer == embed.description


def test_compare_shows_both_footers_and_the_ratio(bot):
    interaction = run(bot, "compare", RecordedInteraction(602), model_a="smollm2", model_b="smollm2-135m", prompt="Hi.")
    final = interaction.named("edit")[-1]
    assert [e.title for e in final["embeds"]] == ["A: smollm2-135m", "B: smollm2-135m"]
    assert all("J total" in e.footer.text for e in final["embeds"])
    assert "used" in final["content"] and "× the energy of" in final["content"]


def test_refusals_are_ephemeral_and_queue_nothing(bot, embedded):
    interaction = run(bot, "ask", RecordedInteraction(603), prompt="Hi", model="gpt-17")
    assert [n for n, _ in interaction.log.calls] == ["defer", "delete", "followup"]
    refusal = interaction.named("followup")[0]
    assert refusal["ephemeral"] is True and "unknown model 'gpt-17'" in refusal["content"]
    assert bot.chat.deliveries.pending_for("603") == 0


def test_a_used_up_energy_budget_is_an_ephemeral_refusal_and_the_footer_shows_the_day(embedded):
    day_start()  # the day the budget counts must not end mid-test
    bot = DiscordBot(embedded.model_copy(update={"daily_energy_budget_wh": 0.000001}))  # one answer spends it
    interaction = run(bot, "ask", RecordedInteraction(605), prompt="What is a joule?")
    (embed,) = interaction.named("edit")[-1]["embeds"]
    assert "\n🔋 Today: " in embed.footer.text and " (estimated) of your energy budget; it resets at 00:00 UTC" in (
        embed.footer.text
    )
    refused = run(bot, "ask", RecordedInteraction(605), prompt="And a watt?")
    assert [n for n, _ in refused.log.calls] == ["defer", "delete", "followup"]
    refusal = refused.named("followup")[0]
    assert refusal["ephemeral"] is True and refusal["content"].startswith("Today's energy budget is used: ")
    assert len(HistoryStore.open(embedded.sqlalchemy_url).recent("discord", "605")) == 1
    stats = run(bot, "stats", RecordedInteraction(605))
    assert stats.named("send_message")[0]["content"].startswith("🔋 Today: ")


def test_preferences_history_and_forget_are_private(bot, embedded):
    run(bot, "units", RecordedInteraction(604), value="watts")
    asked = run(bot, "ask", RecordedInteraction(604), prompt="Name a colour.")
    assert "W avg over" in asked.named("edit")[-1]["embeds"][0].footer.text
    history = run(bot, "history", RecordedInteraction(604))
    (sent,) = history.named("send_message")
    assert sent["ephemeral"] is True and "Name a colour." in sent["content"]
    other = run(bot, "history", RecordedInteraction(699))
    assert "Name a colour." not in other.named("send_message")[0]["content"]
    warn = run(bot, "forget", RecordedInteraction(604))
    assert "confirm:True" in warn.named("send_message")[0]["content"]
    assert HistoryStore.open(embedded.sqlalchemy_url).recent("discord", "604")
    done = run(bot, "forget", RecordedInteraction(604), confirm=True)
    assert done.named("send_message")[0]["content"].startswith("Deleted the prompts and answers of 1")
    assert HistoryStore.open(embedded.sqlalchemy_url).recent("discord", "604") == []


def test_model_autocomplete_and_choice(bot):
    interaction = RecordedInteraction(605)
    interaction.client = bot
    # the public Command.get_parameter("model").autocomplete only says whether a callback is set;
    # the callback itself is on the internal CommandParameter (`_params`), where Discord's request lands
    choices = asyncio.run(bot.tree.get_command("ask")._params["model"].autocomplete(interaction, "smol"))
    assert [c.value for c in choices] == ["smollm2-135m"]
    chosen = run(bot, "model", RecordedInteraction(605), name="smollm2")
    assert chosen.named("send_message")[0]["content"].startswith("Your default model is now smollm2-135m")


def test_an_answer_after_the_token_expired_goes_to_the_channel_mentioning_the_user(bot):
    sent = []

    class Channel:
        async def send(self, **kwargs):
            sent.append(kwargs)

    bot.get_channel = lambda channel_id: Channel() if channel_id == 900 else None
    late = RecordedInteraction(606, age=timedelta(minutes=16))
    run(bot, "ask", late, prompt="Say hi.")
    shown = [edit.get("content") for edit in late.named("edit")]
    assert shown == ["⏳ queued"], "only the status shown at once: no edit once the token expired"
    assert sent[0]["content"].startswith("<@606> here is your answer.")
    assert [u.id for u in sent[0]["allowed_mentions"].users] == [606]


def test_a_restarted_bot_resumes_through_the_webhook_or_the_channel(bot):
    recent = Delivery(
        request_ids=["r1"], platform="discord", user_id="1", chat_id="900", units="joules", reply_to="1234:tok"
    )
    old = recent.model_copy(update={"created_at": datetime.now(UTC) - timedelta(minutes=20)})
    assert isinstance(bot.resumed_target(recent), ChannelTarget), "no reply of its own to edit"
    replied = recent.model_copy(update={"status_message_id": "555"})
    assert isinstance(bot.resumed_target(replied), WebhookTarget)
    assert isinstance(bot.resumed_target(old), ChannelTarget)


def test_allow_lists(embedded):
    bot = DiscordBot(embedded.model_copy(update={"discord_allowed_channels": "901", "discord_allowed_roles": "42"}))
    refused = RecordedInteraction(607, channel_id=900)
    assert asyncio.run(bot.tree.interaction_check(refused)) is False
    assert refused.named("send_message")[0] == {
        "content": "joulebot does not answer in this channel.",
        "ephemeral": True,
    }
    assert asyncio.run(bot.tree.interaction_check(RecordedInteraction(607, channel_id=901))) is True


def test_commands_are_registered_only_when_they_change(bot):
    synced = []

    async def sync():  # stands in for the HTTP call that registers commands with Discord
        synced.append(True)

    bot.chat.asking.ensure_queue()
    assert asyncio.run(bot.commands.sync(sync=sync)) is True
    assert asyncio.run(bot.commands.sync(sync=sync)) is False
    assert asyncio.run(bot.commands.sync(force=True, sync=sync)) is True
    assert len(synced) == 2
