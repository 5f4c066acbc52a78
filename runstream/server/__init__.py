"""The server: WebSocket, SSE and REST adapters over the run manager."""

from runstream.server.app import Server

__all__ = ["Server"]
