"""The vocabulary every layer shares: errors, the `Tracks` artifact and landmark names, the
`SkinnedMesh` type, model files and sample media (checksummed), colour conversions, overlays.
Imports nothing else of this project."""
