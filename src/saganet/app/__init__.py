"""The application layer: the `saganet` command line, the web UI, batch runs, outputs and the demo."""
