"""Faust agents: each wires one input topic to pure logic in ``streams`` and to output topics."""
