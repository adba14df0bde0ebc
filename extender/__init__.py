"""The kube-scheduler extender: GPU placement that avoids fragmentation.

`extender.core` holds the placement logic with no I/O; `extender.simulate` replays traces through it.
"""
