"""The `flopopt` command line: parse, call the library, render."""
