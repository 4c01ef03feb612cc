"""Learned models: the expression VAE and the texture completion GAN (definitions, training
loops, per-take fine-tuning, checkpoints). Imports only `pipeline.core` of this project; the
training commands that build data from media are `python -m pipeline.train_expression` and
`python -m pipeline.train_texture`."""
