"""Developer and test tooling (never imported by the service at run time)."""
