"""The crashed-agents soak, and the checks it shares with the race and outage tests."""
