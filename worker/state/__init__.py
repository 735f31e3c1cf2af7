"""The seed API: StateManager on PostgreSQL, LocalStateManager on JSON files, and the
final save on SIGTERM/SIGINT."""
