"""The render core: events, the planner, the memory model, level buffers, checkpoint records, level runners and the engine."""
