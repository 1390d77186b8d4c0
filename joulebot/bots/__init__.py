"""Front ends (terminal, Telegram, Discord) and the platform-neutral core they share."""
