"""The users' side of the Discord stand-in's gateway: connecting, messages with their attachments,
slash commands and button presses, each dispatched to the bot as a gateway event. A mixin of
DiscordApiStandIn, whose state (channels, messages, interactions, dispatch) it changes."""

from __future__ import annotations


class DiscordUsers:
    def connect(self) -> None:
        """READY (the guild unavailable at first), then its GUILD_CREATE, as on a real connection."""
        ready = {
            "v": 10,
            "user": self.BOT,
            "guilds": [{"id": self.GUILD, "unavailable": True}],
            "session_id": "standin-session",
            "resume_gateway_url": "wss://gateway.invalid",
            "application": {"id": self.BOT["id"], "flags": 0},
        }
        self.dispatch("READY", ready)
        self.dispatch("GUILD_CREATE", self.guild())

    def say(
        self,
        user_id: int,
        text: str,
        channel: str | None = None,
        dm: bool = False,
        mention: bool = False,
        reply_to: str | None = None,
        ping: bool = True,
        attachments: list[tuple[str, str, bytes]] = (),
    ) -> dict:
        """A user's message (MESSAGE_CREATE). `mention` puts the bot's mention first; a reply
        (`reply_to`) mentions the replied-to author unless `ping` is off, as Discord's client does."""
        channel_id = self.dm_channel(user_id)["id"] if dm else channel or self.CHANNEL
        content = f"<@{self.BOT['id']}> {text}" if mention else text
        with self.cond:
            body: dict = {"content": content}
            if reply_to is not None:
                body["message_reference"] = {"message_id": reply_to, "channel_id": channel_id}
            message = self._message(channel_id, body, self.user(user_id), attachments=self.attach(attachments))
            replied = message.get("referenced_message")
            mentioned = [self.BOT] if mention else []
            if replied and ping and replied["author"]["id"] not in {u["id"] for u in mentioned}:
                mentioned.append(replied["author"])
            message["mentions"] = mentioned
            event = self._event(channel_id, message, self.member(user_id))
            visible = dm or self.message_content or any(u["id"] == self.BOT["id"] for u in mentioned)
            if not visible:
                event["content"] = ""
        self.dispatch("MESSAGE_CREATE", event)
        return message

    def attach(self, files: list[tuple[str, str, bytes]]) -> list[dict]:
        """Attachment objects for (file name, content type, bytes), each served from the stand-in's CDN path."""
        found = []
        for name, content_type, data in files:
            attachment_id = self.snowflake()
            path = f"/attachments/{self.CHANNEL}/{attachment_id}/{name}"
            self.cdn[path] = data
            url = f"{self.url}{path}"
            found.append(
                {
                    "id": attachment_id,
                    "filename": name,
                    "size": len(data),
                    "url": url,
                    "proxy_url": url,
                    "content_type": content_type,
                }
            )
        return found

    def _interaction(self, kind: int, user_id: int, channel_id: str, data: dict, permissions: int) -> dict:
        channel = self.channels[channel_id]
        token = f"interaction-token-{self.snowflake()}"
        payload = {
            "id": self.snowflake(),
            "application_id": self.BOT["id"],
            "type": kind,
            "data": data,
            "channel_id": channel_id,
            "channel": channel,
            "token": token,
            "version": 1,
            "app_permissions": str(self.EVERYONE_PERMISSIONS),
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if channel.get("guild_id"):
            payload.update(
                guild_id=self.GUILD,
                guild_locale="en-US",
                member={**self.member(user_id, permissions), "user": self.user(user_id)},
                context=0,
                authorizing_integration_owners={"0": self.GUILD},
            )
        else:
            payload.update(user=self.user(user_id), context=1, authorizing_integration_owners={"0": "0"})
        self.interactions[token] = {"channel": channel_id, "type": kind}
        return payload

    def command(
        self,
        user_id: int,
        name: str,
        channel: str | None = None,
        permissions: int | None = None,
        image: tuple[str, str, bytes] | None = None,
        **options: str,
    ) -> str:
        """A slash command (INTERACTION_CREATE type 2); returns its token."""
        data = {
            "id": "1",
            "name": name,
            "type": 1,
            "options": [{"name": k, "type": 3, "value": v} for k, v in options.items()],
        }
        if image is not None:  # an ATTACHMENT option (type 11): its value an id into `resolved`
            (attachment,) = self.attach([image])
            data["options"].append({"name": "image", "type": 11, "value": attachment["id"]})
            data["resolved"] = {"attachments": {attachment["id"]: attachment}}
        granted = self.EVERYONE_PERMISSIONS if permissions is None else permissions
        payload = self._interaction(2, user_id, channel or self.CHANNEL, data, granted)
        self.dispatch("INTERACTION_CREATE", payload)
        return payload["token"]

    def press(self, user_id: int, message_id: str, custom_id: str) -> str:
        """A button press on a message (INTERACTION_CREATE type 3); returns its token."""
        message = self.messages[message_id]
        data = {"custom_id": custom_id, "component_type": 2}
        payload = self._interaction(3, user_id, message["channel_id"], data, self.EVERYONE_PERMISSIONS)
        payload["message"] = message
        self.interactions[payload["token"]]["message"] = message_id
        self.dispatch("INTERACTION_CREATE", payload)
        return payload["token"]
