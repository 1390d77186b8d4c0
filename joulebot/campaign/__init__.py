"""The benchmark campaign's scoring: references for the shipped prompts, checkers, and scores in history."""
