"""Workers: claim queued runs from the store and execute them in child processes."""
