"""The client side of the queue: connecting to Redis, submitting a Request, following it to its
Result, the embedded stack, and what the worker publishes for front ends."""
