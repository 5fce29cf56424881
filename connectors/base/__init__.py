"""The contract every platform connector implements."""
