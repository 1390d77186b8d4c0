"""The benchmark campaign: shipped prompt sets through the real queue, scored against references.

Its text tables are `joulebot.tables`, which `joulebot stats` prints too."""
