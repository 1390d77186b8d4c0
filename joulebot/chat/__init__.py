"""The chat front ends (Telegram, Discord) and what they share: turning a message into a Request,
following it to its Result, and the reply and footer text."""
