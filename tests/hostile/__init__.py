"""Hostile input, odd filesystems, signals, full disks and races: one module
per kind (test_faults.py holds load, kills and signals; new kinds get their own
module here), each case a test that failed before its fix."""
