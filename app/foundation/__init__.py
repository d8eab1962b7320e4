"""The foundations: what every other layer stands on and that stands on nothing of ours.

The refusal type and its sentences, interrupts, where the database and the scripts are,
the checks of a database file, the engines that lock it, reading it without writing, backups.
"""
