"""The live take: camera threads, time grouping, the tracker workers, the console and window
monitors, the take's export, and VMC streaming."""
