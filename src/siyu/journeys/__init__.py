"""Journeys: the lifecycle automation engine (triggers, steps, set-based ticks)."""
