"""`starpunk-db`, the operators' command line: arguments, printing, and the call into the commands."""
