"""Weekly key-worker allocation: an OR-Tools proposal (HiGHS + CP-SAT) managers can trust.

See docs/allocation.md for the model exactly as implemented.
"""

from allocation._compare import compare_proposals, what_if
from allocation._inputs import read_locks
from allocation._instances import AllocationInstance, random_instance
from allocation._io import read_proposal, write_proposal
from allocation._propose import greedy_allocation, propose_allocation
from allocation._settings import AllocationInputError, AllocationSettings, Proposal

__all__ = [
    "AllocationInputError",
    "AllocationInstance",
    "AllocationSettings",
    "Proposal",
    "compare_proposals",
    "greedy_allocation",
    "propose_allocation",
    "random_instance",
    "read_locks",
    "read_proposal",
    "what_if",
    "write_proposal",
]
