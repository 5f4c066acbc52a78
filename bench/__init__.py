"""Benchmarks: runstream side by side with AgentOS and a bare WebSocket floor (see README.md)."""
