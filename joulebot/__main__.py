from joulebot.cli import app

app()
