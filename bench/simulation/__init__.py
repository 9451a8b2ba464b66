"""Simulations in virtual time: the quota of an organization of many nodes (org.py), on
a scheduler that runs thousands of simulated processes in one real one (clock.py)."""
