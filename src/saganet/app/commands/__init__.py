"""One module per `saganet` subcommand of a feature: each defines `register(subparsers)`, which adds its parser
and sets `func=run` (`run(args) -> int`). Bad input is raised as `saganet.errors.InputError`; the CLI turns it
into one `saganet: error: ...` line and exit code 2."""
