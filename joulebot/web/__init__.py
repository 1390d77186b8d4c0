"""The read-only dashboard (`joulebot web`) and the Prometheus metrics: they read history and Redis, write nothing."""
