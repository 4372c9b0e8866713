"""Process exit codes of the agent."""

EXIT_OK = 0
EXIT_CONFIGURATION = 2
"""A configuration or identity error: restarting the agent cannot fix it."""
