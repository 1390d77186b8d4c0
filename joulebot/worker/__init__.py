"""The measurement worker: one per metered box, running only joulebot's job, with its station
(models, meters, carbon, history) and heartbeat."""
