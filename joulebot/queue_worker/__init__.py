"""The queue contract: a Request goes in, a Result comes out, through RQ on Redis."""
