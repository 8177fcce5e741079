"""Moved to ``edgekit.graph.names`` (the patch search resolves layer names below the lint layer);
kept so that existing imports work."""

from edgekit.graph.names import Location, ModuleTable, locations, primary  # noqa: F401
