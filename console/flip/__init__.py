"""FLIP stand-in: encrypted payloads, FLIP's seven task types, and the trust's health snapshot.

Each concept has its own module: `crypto` (the AES-GCM envelope), `payloads`
(the task payload models), `local_services` (calls to data-access-api and
imaging-api), `cohort_results` (counts sent to the hub), `handlers` (the task
types) and `health` (the heartbeat's health snapshot).
"""
