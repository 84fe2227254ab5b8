"""The project's own management commands: those about the database it does not have."""
