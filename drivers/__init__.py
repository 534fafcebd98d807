"""Ready-made workloads, installed as ``composer_drivers``: driver commands that generate
seeded random operations, send them to the system through a client adapter the user
writes in any language, record what came back as a history (``composer_sdk.history``)
and name the checker that judges it. ``composer workload add`` puts one in a template.

Imports the standard library and ``composer_sdk`` only: a workload runs on driver nodes
(a container, a remote machine) where the rest of composer need not be.
"""
