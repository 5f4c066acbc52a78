"""Server apps that tests run as subprocesses (so they can ``kill -9`` them)."""
