"""What users run: the command line and the web viewer (its page in `static/`)."""
