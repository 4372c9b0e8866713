"""Benchmarks of trust-console against the embedded hub on 127.0.0.1.

Run them with `python -m bench`; `python -m bench --help` lists the options.
Nothing here is part of the test suite, and every request goes to loopback.
"""
