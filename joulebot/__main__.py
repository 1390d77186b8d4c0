from joulebot.bots.cli import app

app()
