"""The benchmark campaign: shipped prompt sets through the real queue, and its tables."""
