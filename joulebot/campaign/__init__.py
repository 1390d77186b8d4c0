"""The benchmark campaign: shipped prompt sets through the real queue, scored against references; its tables."""
