from joulebot.cli import main

main()
