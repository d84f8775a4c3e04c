"""The coordinator: agent registry from heartbeats, health scores, and the system status API."""
