"""The face: canonical face and head space, the personal ARKit rig, the closed head mesh, its
texture (unwrap, GAN completion, paint) and the expression rig (latent VAE)."""
