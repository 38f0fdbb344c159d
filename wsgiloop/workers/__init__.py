"""Pre-forked workers under a supervising master (see :mod:`.arbiter`, :mod:`.worker`).

This layer knows processes, signals and heartbeats, not HTTP or WSGI: the master is given
a function that runs one worker, and never imports the application layers.
"""
