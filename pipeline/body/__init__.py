"""The body: the humanoid skeleton, its kinematics, the body solve (tracks -> joint rotations
and root motion) and the skinned body mesh."""
