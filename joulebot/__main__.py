from joulebot.bots.cli import main

main()
