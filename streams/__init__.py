"""Stream processors: pure logic for normalize, dedupe, identity, links, echo detection,
routing, mapping and conflicts. Agents in ``app.agents`` wire them to topics and tables."""
