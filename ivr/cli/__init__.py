"""The `ivr` command line: `main` (ivr.cli.main) and one module per command family. Kept
free of imports so that `ivr.cli.staffing` can be read without loading every command."""
