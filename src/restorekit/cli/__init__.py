"""Command-line interface: ``restorekit <command>``; one module per subcommand."""
